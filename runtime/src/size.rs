//! Byte sizes as people write them in attributes: `512KB`, `20MB`, `1GB`
//! (powers of 1024, as `ps` and `/proc` count them).

use std::fmt;

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeError {
    input: String,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid size `{}`; expected a whole number with a unit, such as `512KB`, `20MB` or `1GB`",
            self.input
        )
    }
}

impl std::error::Error for SizeError {}

/// Parses `512B`, `512KB`, `20MB`, `1GB` (KiB, MiB, GiB spelled either way).
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let error = || SizeError {
        input: input.to_owned(),
    };
    let text = input.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(error());
    }
    let amount: u64 = text[..digits].parse().map_err(|_| error())?;
    let unit: u64 = match text[digits..].trim() {
        "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        _ => return Err(error()),
    };
    amount.checked_mul(unit).ok_or_else(error)
}

/// `31.2 MB`: one decimal, the largest unit that keeps the number above 1.
pub fn format_size(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes >= (1u64 << 30) as f64 {
        format!("{:.1} GB", bytes / (1u64 << 30) as f64)
    } else if bytes >= (1u64 << 20) as f64 {
        format!("{:.1} MB", bytes / (1u64 << 20) as f64)
    } else if bytes >= 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("20MB"), Ok(20 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("3B"), Ok(3));
        assert!(parse_size("20").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("1.5GB").is_err());
        assert_eq!(format_size(31 << 20), "31.0 MB");
        assert_eq!(format_size(10), "10 B");
    }
}
