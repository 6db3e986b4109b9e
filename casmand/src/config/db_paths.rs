//! `CASMAN_PARTS_DB` / `CASMAN_ASSEMBLED_DB`: the full file paths the Python
//! CAsMan reads (as variables or as config.yaml keys). casman keeps both
//! databases side by side in one data directory under their standard names,
//! so the two paths become `data_dir` when they agree with that layout, and
//! start-up is refused with a message saying what to do when they do not
//! (never an empty `./database` while a site's variables point elsewhere).

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// The standard file names casman opens in its data directory.
pub const PARTS: &str = "parts.db";
/// See [`PARTS`].
pub const ASSEMBLED: &str = "assembled_casm.db";

/// The data directory named by the Python tool's database paths, if any is
/// set. Relative paths are resolved against `base` (the working directory
/// for variables, the config.yaml's directory for its keys). `origin` says
/// where the values came from, for messages (`"environment"`, `"config.yaml
/// /srv/casman/config.yaml"`).
pub fn data_dir(
    parts: Option<&str>,
    assembled: Option<&str>,
    base: &Path,
    origin: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    let parts = parts.map(str::trim).filter(|p| !p.is_empty());
    let assembled = assembled.map(str::trim).filter(|p| !p.is_empty());
    let mut dirs: Vec<(&str, &str, PathBuf)> = Vec::new();
    for (var, value, want) in
        [("CASMAN_PARTS_DB", parts, PARTS), ("CASMAN_ASSEMBLED_DB", assembled, ASSEMBLED)]
    {
        let Some(value) = value else { continue };
        let path = base.join(value);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name != want {
            return Err(ConfigError::Invalid(format!(
                "{var} = {value:?} ({origin}): casman opens the file named {want} in its data directory, \
                 so this file would not be used. Rename it to {want} (or link it: ln -s {name} {want}) \
                 and point {var} at that, or set CASMAN_DATABASE_DIR to the directory and unset {var}"
            )));
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| base.to_path_buf());
        dirs.push((var, value, std::path::absolute(&dir).unwrap_or(dir)));
    }
    match dirs.as_slice() {
        [] => Ok(None),
        [(_, _, dir)] => Ok(Some(dir.clone())),
        [(v1, p1, d1), (v2, p2, d2), ..] => {
            if d1 == d2 {
                Ok(Some(d1.clone()))
            } else {
                Err(ConfigError::Invalid(format!(
                    "{v1} = {p1:?} and {v2} = {p2:?} ({origin}) are in different directories: casman keeps \
                     {PARTS} and {ASSEMBLED} side by side in one data directory. Move both files into one \
                     directory and point both variables there (or set CASMAN_DATABASE_DIR to it and unset them)"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_names_in_one_directory_give_the_data_dir() -> Result<(), ConfigError> {
        let base = Path::new("/srv/site");
        assert_eq!(data_dir(None, None, base, "environment")?, None);
        assert_eq!(
            data_dir(Some("database/parts.db"), Some("database/assembled_casm.db"), base, "environment")?,
            Some(PathBuf::from("/srv/site/database"))
        );
        assert_eq!(
            data_dir(None, Some("/data/assembled_casm.db"), base, "environment")?,
            Some(PathBuf::from("/data"))
        );
        assert_eq!(data_dir(Some(""), None, base, "environment")?, None);
        Ok(())
    }

    #[test]
    fn other_layouts_are_refused_with_what_to_do() {
        let base = Path::new("/srv");
        let e = data_dir(Some("/a/parts.db"), Some("/b/assembled_casm.db"), base, "environment")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("different directories") && e.contains("/a/parts.db"), "{e}");
        let e = data_dir(Some("/a/inventory.db"), None, base, "environment")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("CASMAN_PARTS_DB") && e.contains("inventory.db") && e.contains("Rename"), "{e}");
    }
}
