//! The run's databases on a server: a template migrated once and a
//! database per test cloned from it (`template`), reset for reuse
//! (`reset`), within the server's connection limit (`budget`), with dead
//! runs' leftovers swept (`sweep`); or, for the processes of a nextest run
//! that share one server, the same shared across them (`shared`).

pub(crate) mod budget;
pub(crate) mod reset;
pub mod shared;
pub(crate) mod sweep;
pub mod template;
