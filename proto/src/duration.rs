//! Durations written the way casman's README and configuration write them
//! (`90s`, `24h`, `7d`, `30d`), shared by casmand (`casmanctl config`) and
//! casmanctl (status output), so that what is printed can be pasted back into
//! the configuration.

use std::time::Duration;

const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];

/// `d` as one number and unit when that is exact: the largest of days,
/// hours and minutes that divides it, except that one day is written `24h`
/// (as the README does), and seconds under two minutes (`90s`); otherwise
/// the parts from days down, `1d 2h 3m 4s`. Milliseconds are kept (`1500ms`
/// under two seconds, else a last part `500ms`); zero is `0s`.
pub fn format(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let secs = d.as_secs();
    let ms = d.subsec_millis();
    if ms == 0 {
        if secs == 86_400 {
            return "24h".into();
        }
        if let Some((size, unit)) = UNITS[..3].iter().find(|(size, _)| secs.is_multiple_of(*size)) {
            return format!("{}{unit}", secs / size);
        }
        if secs < 120 {
            return format!("{secs}s");
        }
    } else if secs < 2 {
        return format!("{millis}ms");
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in UNITS {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if ms != 0 {
        parts.push(format!("{ms}ms"));
    }
    parts.join(" ")
}

/// [`format`] of a number of seconds.
pub fn format_secs(secs: u64) -> String {
    format(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_forms() {
        assert_eq!(format_secs(90), "90s");
        assert_eq!(format_secs(86_400), "24h");
        assert_eq!(format_secs(7 * 86_400), "7d");
        assert_eq!(format_secs(30 * 86_400), "30d");
        assert_eq!(format_secs(3_600), "1h");
        assert_eq!(format_secs(30), "30s");
        assert_eq!(format_secs(10), "10s");
        assert_eq!(format_secs(120), "2m");
        assert_eq!(format_secs(5_400), "90m");
        assert_eq!(format_secs(36 * 3_600), "36h");
        assert_eq!(format_secs(2 * 86_400), "2d");
        assert_eq!(format_secs(0), "0s");
    }

    #[test]
    fn inexact_durations_list_their_parts() {
        assert_eq!(format_secs(86_400 + 2 * 3_600 + 3 * 60 + 4), "1d 2h 3m 4s");
        assert_eq!(format_secs(3 * 3_600 + 12 * 60 + 5), "3h 12m 5s");
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format(Duration::from_millis(61_500)), "1m 1s 500ms");
    }

    #[test]
    fn what_is_printed_parses_back_to_the_same_duration() {
        for ms in
            [1_000, 59_000, 90_000, 1_500, 61_500, 3_600_000, 5_400_000, 86_400_000, 93_784_000, 604_800_000]
        {
            let d = Duration::from_millis(ms);
            let back = humantime::parse_duration(&format(d)).ok();
            assert_eq!(back, Some(d), "{ms} ms: {}", format(d));
        }
    }
}
