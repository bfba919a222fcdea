//! The framework's own suite, run by its own harness.

groundtruth::main!();
