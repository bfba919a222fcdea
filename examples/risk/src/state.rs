//! An account's risk state and how each field is decoded from the bytes
//! Redis returns.

use std::fmt;

/// What the risk checks need to know about an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskState {
    /// Open exposure, in cents.
    pub exposure: i64,
    /// Orders sent and not yet filled or cancelled.
    pub open_orders: i64,
    /// The account's exposure limit, in cents.
    pub limit: i64,
}

impl RiskState {
    /// Cents of exposure the account may still take on.
    pub fn headroom(&self) -> i64 {
        self.limit - self.exposure
    }
}

/// A field whose bytes are not in the format its writer promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` {}", self.field, self.reason)
    }
}

/// Decodes one field of `risk:{account}` into `state`; unknown fields are
/// left alone (writers add fields before readers know them).
pub fn decode_field(state: &mut RiskState, field: &[u8], value: &[u8]) -> Result<(), DecodeError> {
    let slot = match field {
        b"exposure" => &mut state.exposure,
        b"open_orders" => &mut state.open_orders,
        b"limit" => &mut state.limit,
        _ => return Ok(()),
    };
    let field = String::from_utf8_lossy(field).into_owned();
    *slot = if cfg!(feature = "bug-decode-assumes-strings") {
        // The incident: every value was taken for decimal text, as
        // `redis-cli` shows counters, so the binary limit cannot be read.
        decimal(value)
    } else if field == "limit" {
        big_endian(value)
    } else {
        decimal(value)
    }
    .map_err(|reason| DecodeError { field, reason })?;
    Ok(())
}

/// A counter kept by `HINCRBY`: decimal text.
fn decimal(value: &[u8]) -> Result<i64, String> {
    let text =
        std::str::from_utf8(value).map_err(|error| format!("is not UTF-8 text ({error})"))?;
    text.parse()
        .map_err(|error| format!("is not a decimal integer ({error}): {text:?}"))
}

/// A value in the limits service's wire format: 8 bytes, big-endian.
fn big_endian(value: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("holds {} bytes, not the 8 of a big-endian i64", value.len()))?;
    Ok(i64::from_be_bytes(bytes))
}
