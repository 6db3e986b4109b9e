//! Checks of values typed or scanned by people, shared by every front end
//! (gRPC, the web scanner and admin pages).

use super::{GridCode, GridLayout, base_antenna};
use crate::error::Error;

/// The base antenna number (`ANT00001`) of `input`, which may carry a P1/P2 suffix.
pub fn antenna_base(input: &str) -> Result<String, Error> {
    let base = base_antenna(input.trim());
    let ok =
        base.len() == 8 && base.starts_with("ANT") && base.as_bytes()[3..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(base)
    } else {
        Err(Error::invalid(format!(
            "antenna {input:?}: expected ANT<5 digits> with an optional P1/P2 suffix, e.g. ANT00001 or ANT00001P1"
        )))
    }
}

/// A grid code, checked against the core layout's bounds.
pub fn core_grid_code(input: &str) -> Result<GridCode, Error> {
    let code = GridCode::parse(input)?;
    GridLayout::validate_in(&[GridLayout::core()], code)?;
    Ok(code)
}

/// `YYYY-MM-DD`, or today (UTC) when blank.
pub fn date_or_today(s: &str) -> Result<jiff::civil::Date, Error> {
    if s.trim().is_empty() {
        return Ok(jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date());
    }
    s.trim().parse().map_err(|e| Error::invalid(format!("date {s:?}: {e}; expected YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antennas_grid_codes_and_dates() {
        assert_eq!(antenna_base(" ant00001p2 ").ok().as_deref(), Some("ANT00001"));
        assert!(antenna_base("LNA00001P1").is_err());
        assert!(core_grid_code("CN002E03").is_ok());
        assert!(core_grid_code("CN002").is_err());
        assert_eq!(date_or_today("2026-01-02").ok().map(|d| d.to_string()).as_deref(), Some("2026-01-02"));
        assert!(date_or_today("2026-13-02").is_err());
        assert!(date_or_today(" ").is_ok());
    }
}
