//! What generated tests verify beyond running a body: that a write reached
//! the database (`#[persists]`), that an enum is known everywhere
//! (`#[enum_complete]`).

pub mod enums;
pub mod persist;
