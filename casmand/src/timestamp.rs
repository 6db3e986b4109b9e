//! Timestamps as casman stores them: UTC, ISO 8601, second resolution, `Z`
//! (`2025-01-15T10:30:00Z`, the documented form). Fixed width, so string order
//! is time order; same-second events are ordered by row id.

use std::time::Duration;

use jiff::{Timestamp, civil::DateTime, tz::TimeZone};

/// The stored format.
pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Now, in the stored format.
pub fn now() -> String {
    format(Timestamp::now())
}

/// `ts` in the stored format (fractions of a second dropped).
pub fn format(ts: Timestamp) -> String {
    ts.strftime(FORMAT).to_string()
}

/// The instant `ago` before now, in the stored format (for `--since 7d`).
pub fn ago(ago: Duration) -> String {
    let ts = jiff::SignedDuration::try_from(ago)
        .ok()
        .and_then(|d| Timestamp::now().checked_sub(d).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    format(ts)
}

/// Converts a Python CAsMan local timestamp (`YYYY-MM-DD HH:MM:SS`, optionally
/// with fractional seconds) written in zone `tz` to the stored UTC form.
/// Returns `None` for anything else (already ISO, empty, garbage).
pub fn legacy_local_to_utc(s: &str, tz: &TimeZone) -> Option<String> {
    let s = s.trim();
    if s.len() < 19 || s.as_bytes().get(10) != Some(&b' ') {
        return None;
    }
    let civil: DateTime = s.replacen(' ', "T", 1).parse().ok()?;
    let zoned = civil.to_zoned(tz.clone()).ok()?;
    Some(format(zoned.timestamp()))
}

/// Normalises a timestamp the Python tool wrote: local `YYYY-MM-DD HH:MM:SS`
/// via `tz`, and RFC 3339 with a numeric offset (`+00:00`), to the stored form.
/// `None` when it is already UTC with `Z` (with or without fractions, which are
/// kept: nothing is lost) or cannot be read (then it is left alone).
pub fn normalise_legacy(s: &str, tz: &TimeZone) -> Option<String> {
    if s.trim().ends_with('Z') {
        return None;
    }
    if let Some(v) = legacy_local_to_utc(s, tz) {
        return Some(v);
    }
    s.trim().parse::<Timestamp>().ok().map(format)
}

/// True when `s` is exactly in the stored form.
pub fn is_stored_form(s: &str) -> bool {
    s.len() == 20 && jiff::fmt::strtime::parse(FORMAT, s).is_ok()
}

/// Reads an instant given by a person or a script (`--at`, `--since`,
/// `as_of`): RFC 3339 (`2025-01-15T10:30:00Z`, `2025-01-15T10:30:00+02:00`,
/// fractions allowed), or `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DD HH:MM:SS` (a `T` in place of the space too), which are UTC.
/// The error names the value and the forms accepted.
pub fn parse_instant(s: &str) -> Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = t.replacen(' ', "T", 1);
    let civil = match civil.len() {
        10 => Some(format!("{civil}T00:00:00")),
        16 => Some(format!("{civil}:00")),
        19 => Some(civil),
        _ => None,
    };
    civil
        .and_then(|c| c.parse::<DateTime>().ok())
        .and_then(|dt| dt.to_zoned(TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            format!(
                "time {s:?} is not understood: give RFC 3339 (2025-01-15T10:30:00Z, or with an offset such as +02:00) \
                 or YYYY-MM-DD[ HH:MM[:SS]] (UTC)"
            )
        })
}

/// `s` read by [`parse_instant`], in the stored format: the bound an as-of
/// question compares stored times with (fractions of a second dropped, so
/// everything stored within that second counts as at or before it).
pub fn instant_bound(s: &str) -> Result<String, String> {
    parse_instant(s).map(format)
}

/// The UTC month (`YYYY-MM`) of `ts`.
pub fn month_of(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m").to_string()
}

/// This UTC month.
pub fn current_month() -> String {
    month_of(jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_utc() {
        let la = TimeZone::get("America/Los_Angeles").unwrap_or(TimeZone::UTC);
        assert_eq!(legacy_local_to_utc("2025-11-21 17:52:47", &la).as_deref(), Some("2025-11-22T01:52:47Z"));
        assert_eq!(legacy_local_to_utc("2025-07-01 12:00:00", &la).as_deref(), Some("2025-07-01T19:00:00Z"));
        assert_eq!(legacy_local_to_utc("2025-11-21T17:52:47Z", &la), None);
    }

    #[test]
    fn iso_with_fractions_and_offsets_are_normalised() {
        let utc = TimeZone::UTC;
        assert_eq!(normalise_legacy("2025-11-25T20:05:32.489557Z", &utc), None);
        assert_eq!(
            normalise_legacy("2025-12-17T10:00:00.5+00:00", &utc).as_deref(),
            Some("2025-12-17T10:00:00Z")
        );
        assert_eq!(normalise_legacy("2025-01-15T10:30:00Z", &utc), None);
        assert_eq!(normalise_legacy("not a time", &utc), None);
    }

    #[test]
    fn stored_form_sorts_as_time() {
        let a = format(Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH));
        let b = format(Timestamp::from_second(1_700_000_001).unwrap_or(Timestamp::UNIX_EPOCH));
        assert!(a < b);
        assert!(is_stored_form(&a));
    }

    #[test]
    fn instants_in_every_accepted_form() {
        let ok = |s: &str| instant_bound(s).unwrap_or_else(|e| e);
        assert_eq!(ok("2025-01-15T10:30:00Z"), "2025-01-15T10:30:00Z");
        assert_eq!(ok("2025-01-15T12:30:00+02:00"), "2025-01-15T10:30:00Z");
        assert_eq!(ok("2025-01-15T10:30:00.9Z"), "2025-01-15T10:30:00Z");
        assert_eq!(ok("2025-01-15"), "2025-01-15T00:00:00Z");
        assert_eq!(ok("2025-01-15 10:30"), "2025-01-15T10:30:00Z");
        assert_eq!(ok(" 2025-01-15 10:30:05 "), "2025-01-15T10:30:05Z");
        assert_eq!(ok("2025-01-15T10:30:05"), "2025-01-15T10:30:05Z");
        for bad in ["", "yesterday", "2025-13-01", "2025-01-15 25:00", "15/01/2025"] {
            let e = instant_bound(bad).err().unwrap_or_default();
            assert!(e.contains("not understood") && e.contains(bad.trim()), "{bad}: {e}");
        }
    }
}
