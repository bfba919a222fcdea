//! Example service: the risk-state reader of a trading system. Other
//! services keep each account's risk counters in a Redis hash,
//! `risk:{account}`:
//!
//! - `exposure` (cents) and `open_orders`: bumped by the order gateway with
//!   `HINCRBY`, so Redis holds them as decimal text (`"125000"`);
//! - `limit` (cents): written by the limits service in its wire format,
//!   8 bytes, a big-endian `i64`.
//!
//! The reader asks for bytes and decodes each field by its format.

pub mod reader;
pub mod state;

pub use reader::{RiskError, RiskReader};
pub use state::RiskState;
