//! Compile-fail cases of groundtruth's attributes live in `ui/`; see `tests/ui.rs`.
