//! `casmanctl sync list` for people: each version's key on a line of its own
//! (to copy into `sync restore`), its details indented below, so the listing
//! fits 100 columns; `--wide` prints the full table.

use casman_proto::v1::BackupVersion;

use crate::output;

fn records(v: &BackupVersion) -> String {
    let main = if v.database == "parts.db" { "parts" } else { "assembly" };
    v.record_counts.get(main).map(|n| format!("{n} {main}")).unwrap_or_else(|| "-".into())
}

fn reason(v: &BackupVersion) -> String {
    if v.branch { format!("{} (branch)", v.reason) } else { v.reason.clone() }
}

fn short_sha(v: &BackupVersion) -> String {
    if v.sha256.len() > 16 { format!("{}...", &v.sha256[..16]) } else { v.sha256.clone() }
}

/// The listing of `versions` (newest first), without the heading.
pub fn render(versions: &[BackupVersion], wide: bool) -> String {
    if wide {
        let mut t = output::table(["key", "time", "size", "records", "reason", "site", "checksum"]);
        for v in versions {
            t.add_row([
                v.key.clone(),
                v.created_at.clone(),
                output::bytes(v.stored_bytes),
                records(v),
                reason(v),
                v.site.clone(),
                short_sha(v),
            ]);
        }
        return t.to_string();
    }
    let mut out = String::new();
    for v in versions {
        out.push_str(&v.key);
        out.push('\n');
        out.push_str(&format!(
            "  {}  {:>10}  {:<16}  {:<24}  {}\n",
            v.created_at,
            output::bytes(v.stored_bytes),
            records(v),
            reason(v),
            short_sha(v)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest line the default listing may print.
    const WIDTH: usize = 100;

    fn version(db: &str, site: &str, reason: &str, rows: i64) -> BackupVersion {
        BackupVersion {
            key: format!("backups/{db}/20261201_212528_{site}_123_{db}.zst"),
            database: db.into(),
            created_at: "2026-12-01T21:25:28Z".into(),
            site: site.into(),
            sha256: "ab".repeat(32),
            stored_bytes: 123_456_789,
            reason: reason.into(),
            branch: true,
            record_counts: [(if db == "parts.db" { "parts" } else { "assembly" }.to_owned(), rows)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_listing_fits_100_columns_and_keeps_whole_keys() {
        let versions = [
            version("assembled_casm.db", "array-site-laptop", "parts-generated", 1_234_567),
            version("parts.db", "lab", "pre-restore", 99_999),
        ];
        let text = render(&versions, false);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{} columns: {line}", line.chars().count());
        }
        // Each key is a line of its own, ready to paste into `sync restore`.
        for v in &versions {
            assert!(text.lines().any(|l| l == v.key), "{text}");
        }
        assert!(text.contains("1234567 assembly"), "{text}");
        assert!(text.contains("parts-generated (branch)"), "{text}");
        assert!(text.contains("abababababababab..."), "{text}");
    }

    #[test]
    fn the_wide_listing_is_one_table_row_per_version() {
        let versions = [version("parts.db", "lab", "manual", 3)];
        let text = render(&versions, true);
        let row = text.lines().find(|l| l.contains(&versions[0].key)).unwrap_or_default();
        for cell in ["2026-12-01T21:25:28Z", "3 parts", "manual (branch)", "lab", "abababababababab..."] {
            assert!(row.contains(cell), "{cell} not in {row}");
        }
    }
}
