//! Compile-fail cases of verily's attributes live in `ui/`; see `tests/ui.rs`.
