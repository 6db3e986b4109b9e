//! The report of a restore in place on the parts the assembly log references
//! that parts.db no longer holds. A log ten years long can name hundreds of
//! thousands of such parts: the answer, the log line and the audit entry name
//! the first [`LISTED`]; the whole list is written to a file beside the local
//! copy of the replaced database, one part number a line.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use crate::inventory::PartNumber;

/// How many missing parts a restore's answer names.
pub const LISTED: usize = 100;

/// The missing parts of a restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissingParts {
    /// The first [`LISTED`], sorted as text.
    pub listed: Vec<String>,
    /// How many there are in all.
    pub total: usize,
    /// The file listing all of them, when they are more than [`LISTED`].
    pub file: Option<PathBuf>,
}

impl MissingParts {
    /// The report of `sorted` (sorted as text): when they are more than
    /// [`LISTED`], the whole list is written to `file` (made durable: it is
    /// named in an answer). A file that cannot be written is left out of the
    /// report, with a warning: the restore itself is done.
    pub fn report(sorted: &[PartNumber], file: &Path) -> MissingParts {
        let listed = sorted.iter().take(LISTED).map(ToString::to_string).collect();
        let file = (sorted.len() > LISTED)
            .then(|| match write_list(sorted, file) {
                Ok(()) => Some(file.to_path_buf()),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "could not write the list of missing parts");
                    None
                }
            })
            .flatten();
        MissingParts { listed, total: sorted.len(), file }
    }
}

fn write_list(sorted: &[PartNumber], path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for n in sorted {
        writeln!(out, "{n}")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{PartType, Polarization};

    fn numbers(n: u32) -> Vec<PartNumber> {
        (1..=n).map(|i| PartNumber::new(PartType::Antenna, i, Polarization::P1).unwrap()).collect()
    }

    #[test]
    fn a_short_list_is_named_whole_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list.txt");
        let r = MissingParts::report(&numbers(3), &file);
        assert_eq!(r.listed, ["ANT00001P1", "ANT00002P1", "ANT00003P1"]);
        assert_eq!((r.total, r.file), (3, None));
        assert!(!file.exists());
    }

    #[test]
    fn a_long_list_names_the_first_and_writes_all_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list.txt");
        let all = numbers(LISTED as u32 + 5);
        let r = MissingParts::report(&all, &file);
        assert_eq!(r.listed.len(), LISTED);
        assert_eq!(r.listed[0], "ANT00001P1");
        assert_eq!(r.total, LISTED + 5);
        assert_eq!(r.file.as_deref(), Some(file.as_path()));
        let written: Vec<String> =
            std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(written, all.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
}
