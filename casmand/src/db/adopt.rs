//! Adoption of database files written by the Python CAsMan (spec/DECISIONS.md,
//! "Adoption"). On first open, in one transaction per file: missing tables and
//! columns are added, legacy values normalised (`1` -> `P1`, local times ->
//! UTC ISO, 0-based grid columns shifted), every changed value recorded in
//! `legacy_values`, historic part ids kept and reported. Before anything is
//! written the original file is copied byte for byte next to the data.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Row, SqliteConnection};

use super::{Db, DbError, adopt_tables};

/// Tables the Python tool created; a file holding any of them, without
/// casman's `casman_meta`, is a CAsMan file to adopt.
const CASMAN_TABLES: [&str; 5] = ["parts", "antenna_positions", "snap_boards", "grid_positions", "assembly"];

/// Key of the adoption report in `casman_meta`.
pub const REPORT_KEY: &str = "adoption_report";

/// What adoption will need: the zone of legacy local times and where the
/// original was copied.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Zone of the Python tool's local timestamps.
    pub tz: TimeZone,
    /// Byte-for-byte copy of the file as it was before adoption.
    pub original_copy: PathBuf,
}

/// Rows of one table before and after adoption (always equal: nothing is deleted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableRows {
    /// Table name.
    pub table: String,
    /// Rows before.
    pub before: i64,
    /// Rows after.
    pub after: i64,
}

/// How many values of one column were changed, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeCount {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Why (e.g. "polarization 1/2 -> P1/P2").
    pub reason: String,
    /// Number of values changed.
    pub count: i64,
}

/// What adoption did to one file; stored as JSON in `casman_meta`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// File name.
    pub database: String,
    /// When adoption ran (UTC ISO).
    pub adopted_at: String,
    /// Where the original was copied.
    pub original_copy: String,
    /// Zone legacy local times were read in.
    pub timezone: String,
    /// Row counts per table.
    pub tables: Vec<TableRows>,
    /// Tables that were missing and were created.
    pub added_tables: Vec<String>,
    /// Columns that were missing and were added (`table.column`).
    pub added_columns: Vec<String>,
    /// Values changed, per (table, column, reason).
    pub changes: Vec<ChangeCount>,
    /// Part ids in historic formats, kept as they are.
    pub historic_ids: Vec<String>,
    /// Anything else worth a person's attention.
    pub notes: Vec<String>,
}

/// Collects the changes of one adoption and writes them to `legacy_values`.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) at: String,
    pub(super) counts: BTreeMap<(String, String, String), i64>,
}

impl Recorder {
    /// Records one changed value in `legacy_values`: where, old, new, why.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record(
        &mut self,
        conn: &mut SqliteConnection,
        table: &str,
        row_id: i64,
        column: &str,
        old: Option<&str>,
        new: Option<&str>,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO legacy_values (table_name, row_id, column_name, old_value, new_value, reason, adopted_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(table)
        .bind(row_id)
        .bind(column)
        .bind(old)
        .bind(new)
        .bind(reason)
        .bind(&self.at)
        .execute(conn)
        .await?;
        *self.counts.entry((table.to_owned(), column.to_owned(), reason.to_owned())).or_default() += 1;
        Ok(())
    }
}

/// Decides whether the file at `path` needs adopting, reading it only. When it
/// does, copies the original aside and returns the plan.
pub async fn plan(path: &Path, tz: &TimeZone) -> Result<Option<Plan>, DbError> {
    if std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true) {
        return Ok(None);
    }
    let err = |e: sqlx::Error| DbError::Open { path: path.to_path_buf(), reason: e.to_string() };
    let mut conn = super::preflight::read_only(path).await.map_err(err)?;
    let tables = table_names(&mut conn).await.map_err(err)?;
    let _ = conn.close().await;
    if tables.iter().any(|t| t == "casman_meta")
        || !tables.iter().any(|t| CASMAN_TABLES.contains(&t.as_str()))
    {
        return Ok(None);
    }
    let original_copy = copy_original(path)?;
    tracing::info!(
        file = %path.display(),
        original = %original_copy.display(),
        "adopting a database written by the Python CAsMan; original copied aside"
    );
    Ok(Some(Plan { tz: tz.clone(), original_copy }))
}

/// Copies `path` (and a hot journal, if any) to `<dir>/adopted-originals/`.
fn copy_original(path: &Path) -> Result<PathBuf, DbError> {
    let err = |e: std::io::Error| DbError::Adopt {
        path: path.to_path_buf(),
        reason: format!("copying the original aside: {e}"),
    };
    let dir = path.parent().unwrap_or(Path::new(".")).join("adopted-originals");
    std::fs::create_dir_all(&dir).map_err(err)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let dest = dir.join(format!("{name}.{stamp}.orig"));
    std::fs::copy(path, &dest).map_err(err)?;
    std::fs::File::open(&dest).and_then(|f| f.sync_all()).map_err(err)?;
    for suffix in ["-journal", "-wal"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::copy(&side, format!("{}{suffix}", dest.display())).map_err(err)?;
        }
    }
    Ok(dest)
}

/// Runs the adoption of `db` in one transaction.
pub async fn run(db: &Db, plan: Plan) -> Result<Report, DbError> {
    let err = |reason: String| DbError::Adopt { path: db.path.clone(), reason };
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await.map_err(|e| err(e.to_string()))?;
    let mut rec = Recorder { at: crate::timestamp::now(), counts: BTreeMap::new() };
    let mut report = Report {
        database: db.name.to_owned(),
        adopted_at: rec.at.clone(),
        original_copy: plan.original_copy.display().to_string(),
        timezone: plan.tz.iana_name().unwrap_or("local").to_owned(),
        ..Report::default()
    };
    let before = row_counts(&mut tx).await.map_err(|e| err(e.to_string()))?;
    let result = if db.name == super::ASSEMBLED_DB {
        adopt_tables::assembled(&mut tx, &plan.tz, &mut rec, &mut report).await
    } else {
        adopt_tables::parts(&mut tx, &plan.tz, &mut rec, &mut report).await
    };
    result.map_err(|e| err(e.to_string()))?;
    let after = row_counts(&mut tx).await.map_err(|e| err(e.to_string()))?;
    for (table, n_before) in &before {
        let n_after = after.get(table).copied().unwrap_or(0);
        if n_after != *n_before {
            return Err(err(format!("table {table} had {n_before} rows and would have {n_after}")));
        }
        report.tables.push(TableRows { table: table.clone(), before: *n_before, after: n_after });
    }
    report.changes = rec
        .counts
        .iter()
        .map(|((table, column, reason), count)| ChangeCount {
            table: table.clone(),
            column: column.clone(),
            reason: reason.clone(),
            count: *count,
        })
        .collect();
    let json = serde_json::to_string(&report).map_err(|e| err(e.to_string()))?;
    for (key, value) in [(REPORT_KEY, json.as_str()), ("adopted_at", rec.at.as_str())] {
        sqlx::query("INSERT OR REPLACE INTO casman_meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    tx.commit().await.map_err(|e| err(e.to_string()))?;
    let changed: i64 = report.changes.iter().map(|c| c.count).sum();
    tracing::info!(
        database = db.name,
        values_changed = changed,
        historic_ids = report.historic_ids.len(),
        "adoption complete; every row kept"
    );
    Ok(report)
}

/// Reads the adoption report of `db`, if it was adopted.
pub async fn report(db: &Db) -> Result<Option<Report>, sqlx::Error> {
    let json: Option<String> = sqlx::query_scalar("SELECT value FROM casman_meta WHERE key = ?")
        .bind(REPORT_KEY)
        .fetch_optional(&*db.reader().await)
        .await?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

pub(super) async fn table_names(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(conn)
    .await
}

async fn row_counts(conn: &mut SqliteConnection) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for table in table_names(conn).await? {
        if !CASMAN_TABLES.contains(&table.as_str()) {
            continue;
        }
        let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
        out.insert(table, row.try_get::<i64, _>(0)?);
    }
    Ok(out)
}

/// Appends `notes` to the adoption report of `db` (which must have one).
pub async fn add_notes(db: &Db, notes: &[String]) -> Result<(), sqlx::Error> {
    let Some(mut r) = report(db).await? else { return Ok(()) };
    r.notes.extend(notes.iter().cloned());
    let json = serde_json::to_string(&r).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    sqlx::query("UPDATE casman_meta SET value = ? WHERE key = ?")
        .bind(json)
        .bind(REPORT_KEY)
        .execute(&*db.writer().await)
        .await?;
    Ok(())
}
