//! Code 128 symbols, encoded by the `barcoders` crate.

use barcoders::sym::code128::Code128;

use crate::LabelError;

/// Longest id printed on a label.
pub const MAX_TEXT: usize = 32;

/// The modules (1 = bar, 0 = space) of `text` in Code 128 code set B: start
/// character, data, modulo-103 check character and stop pattern, without the
/// quiet zones. Set B holds every printable ASCII character; part numbers
/// (`ANT00001P1`) have no run of digits long enough for set C to shorten them.
pub fn modules(text: &str) -> Result<Vec<bool>, LabelError> {
    let bad = |rule: &str| LabelError::Text { text: text.to_owned(), rule: rule.to_owned() };
    if text.is_empty() {
        return Err(bad("is empty"));
    }
    if text.len() > MAX_TEXT {
        return Err(bad(&format!("is longer than {MAX_TEXT} characters")));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("only printable ASCII letters, digits and signs can be encoded (no spaces)"));
    }
    let symbol = Code128::new(format!("\u{0181}{text}")).map_err(|e| bad(&e.to_string()))?;
    Ok(symbol.encode().into_iter().map(|m| m == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_number_has_start_data_check_and_stop() {
        let m = modules("ANT00001P1").unwrap_or_default();
        // 11 modules per character (start, 10 data, check) + 13 for the stop.
        assert_eq!(m.len(), 11 * 12 + 13);
        // Start B is 11010010000; the stop pattern ends 1100011101011.
        let start: String = m[..11].iter().map(|&b| if b { '1' } else { '0' }).collect();
        assert_eq!(start, "11010010000");
        let stop: String = m[m.len() - 13..].iter().map(|&b| if b { '1' } else { '0' }).collect();
        assert_eq!(stop, "1100011101011");
    }

    #[test]
    fn bad_text_is_named() {
        for bad in ["", "ANT 1", "ANTÉ", &"A".repeat(33)] {
            let err = modules(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("label text"), "{bad:?}: {err}");
        }
    }
}
