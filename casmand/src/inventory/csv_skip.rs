//! Loading what is good in a CSV file and reporting the rest
//! (`load-coordinates --skip-bad-rows`): the bad lines are blanked and the
//! file parsed again, so the good rows keep their line numbers.

use super::{CsvError, CsvErrors, CsvFile};

/// Parses `text` with `parse`; on errors, blanks every line that has one and
/// parses again (a few rounds at most). Returns the good rows and the errors
/// of the rows left out. A header problem is still an error.
pub fn parse_skipping_bad_rows<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<CsvFile<T>, CsvErrors>,
) -> Result<(CsvFile<T>, Vec<CsvError>), CsvErrors> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let mut skipped: Vec<CsvError> = Vec::new();
    for _ in 0..4 {
        let current = lines.join("\n");
        match parse(&current) {
            Ok(file) => {
                skipped.sort_by_key(|e| e.line);
                return Ok((file, skipped));
            }
            Err(CsvErrors(errors)) => {
                if errors.iter().any(|e| e.line <= 1) {
                    return Err(CsvErrors(errors));
                }
                for e in &errors {
                    let blank = usize::try_from(e.line - 1).ok().and_then(|i| lines.get_mut(i));
                    match blank {
                        Some(l) if !l.trim().is_empty() => *l = "",
                        _ => return Err(CsvErrors(errors)),
                    }
                }
                skipped.extend(errors);
            }
        }
    }
    Err(CsvErrors(skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::parse_grid_positions;

    #[test]
    fn good_rows_load_and_bad_rows_are_reported() {
        let text = "grid_code,latitude,longitude,height\nCC000E01,37.2,-118.2,1183\nBOGUS,1,2,3\n\
                    CN001E01,abc,-118.2,1183\nCN001E02,37.3,-118.2,1183\nCC000E01,37.2,-118.2,1183\n  \n";
        let (file, errors) = parse_skipping_bad_rows(text, parse_grid_positions).unwrap();
        let codes: Vec<String> = file.rows.iter().map(|r| r.row.grid_code.to_string()).collect();
        assert_eq!(codes, ["CC000E01", "CN001E02"]);
        assert_eq!(file.rows[1].line, 5);
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 6]);
        assert_eq!(file.skipped_lines, [7]);
        // A header problem still fails.
        assert!(parse_skipping_bad_rows("code,lat\nX,1\n", parse_grid_positions).is_err());
    }
}
