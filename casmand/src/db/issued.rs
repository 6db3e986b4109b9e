//! The issued part numbers kept in state.db (table `issued_numbers`), and the
//! numbers a parts.db or assembled_casm.db file mentions. state.db is never
//! restored, pulled, merged or cleared, so what it knows stays known.

use std::{path::Path, str::FromStr};

use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};

use super::{ASSEMBLED_DB, Db, PARTS_DB};
use crate::{
    error::{Error, Result},
    inventory::{Issued, PartType, Polarization},
};

/// Every issued number state.db knows.
pub async fn load(state: &Db) -> Result<Issued> {
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT part_type, polarization, first, last FROM issued_numbers")
            .fetch_all(&*state.reader().await)
            .await?;
    let mut set = Issued::new();
    for (t, p, a, b) in rows {
        if let (Ok(t), Ok(p)) = (PartType::parse(&t), Polarization::parse(&p)) {
            set.add_run(t, p, a.clamp(0, 99_999) as u32, b.clamp(0, 99_999) as u32);
        }
    }
    Ok(set)
}

/// Adds `more` to what state.db knows (one transaction; nothing is ever
/// removed). Returns everything now known.
pub async fn record(state: &Db, more: &Issued) -> Result<Issued> {
    let pool = state.writer().await;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT part_type, polarization, first, last FROM issued_numbers")
            .fetch_all(&mut *tx)
            .await?;
    let mut known = Issued::new();
    for (t, p, a, b) in rows {
        if let (Ok(t), Ok(p)) = (PartType::parse(&t), Polarization::parse(&p)) {
            known.add_run(t, p, a.clamp(0, 99_999) as u32, b.clamp(0, 99_999) as u32);
        }
    }
    if known.covers(more) {
        tx.rollback().await?;
        return Ok(known);
    }
    known.extend(more);
    sqlx::query("DELETE FROM issued_numbers").execute(&mut *tx).await?;
    for (t, p, runs) in known.iter() {
        for &(a, b) in runs {
            sqlx::query(
                "INSERT INTO issued_numbers (part_type, polarization, first, last) VALUES (?, ?, ?, ?)",
            )
            .bind(t.name())
            .bind(p.as_str())
            .bind(i64::from(a))
            .bind(i64::from(b))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(known)
}

/// Canonical part ids (`ANT00001P1`): the rest is parsed in Rust.
const CANONICAL: &str = "id GLOB '[A-Z][A-Z][A-Z][0-9][0-9][0-9][0-9][0-9]P[12]'";

/// Adds to `set` every part id the one-column query `source` (column `id`)
/// yields. SQLite turns the canonical ids into runs of numbers (gaps and
/// islands), so a few rows cross over instead of one per id; other spellings
/// come over one by one and are parsed here.
async fn add_ids_of(conn: &mut SqliteConnection, source: &str, set: &mut Issued) -> Result<()> {
    let runs_sql = format!(
        "WITH ids AS (SELECT DISTINCT id FROM ({source}) WHERE {CANONICAL}),
              n AS (SELECT substr(id, 1, 3) AS t, substr(id, 10, 1) AS p, CAST(substr(id, 4, 5) AS INTEGER) AS k
                    FROM ids),
              g AS (SELECT t, p, k, k - ROW_NUMBER() OVER (PARTITION BY t, p ORDER BY k) AS grp FROM n)
         SELECT t, p, MIN(k), MAX(k) FROM g GROUP BY t, p, grp"
    );
    let runs: Vec<(String, String, i64, i64)> =
        sqlx::query_as(sqlx::AssertSqlSafe(runs_sql)).fetch_all(&mut *conn).await?;
    for (t, p, a, b) in runs {
        let pol = if p == "1" { Polarization::P1 } else { Polarization::P2 };
        if let (Some(t), Ok(a), Ok(b)) = (PartType::from_abbreviation(&t), u32::try_from(a), u32::try_from(b))
        {
            set.add_run(t, pol, a, b);
        }
    }
    let others_sql = format!("SELECT DISTINCT id FROM ({source}) WHERE id IS NOT NULL AND NOT ({CANONICAL})");
    let others: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(others_sql)).fetch_all(&mut *conn).await?;
    for id in &others {
        set.add_id(id);
    }
    Ok(())
}

/// The numbers of the part rows of a parts.db connection.
async fn part_rows(conn: &mut SqliteConnection) -> Result<Issued> {
    let mut set = Issued::new();
    add_ids_of(conn, "SELECT part_number AS id FROM parts", &mut set).await?;
    Ok(set)
}

/// The numbers a parts.db connection mentions: its part rows and its
/// `part_sequences` marks.
pub async fn in_parts(conn: &mut SqliteConnection) -> Result<Issued> {
    let mut set = part_rows(conn).await?;
    let has_sequences: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'part_sequences')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if has_sequences {
        let marks: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT part_type, polarization, highest FROM part_sequences")
                .fetch_all(&mut *conn)
                .await?;
        for (t, p, n) in marks {
            if let (Ok(t), Ok(p)) = (PartType::parse(&t), Polarization::parse(&p))
                && let Ok(n) = u32::try_from(n)
            {
                set.add_run(t, p, n, n);
            }
        }
    }
    Ok(set)
}

/// The numbers the assembly log of an assembled_casm.db connection mentions
/// (both columns; each query answered from its column's index).
pub async fn in_assembly(conn: &mut SqliteConnection) -> Result<Issued> {
    let mut set = Issued::new();
    for source in ["SELECT part_number AS id FROM assembly", "SELECT connected_to AS id FROM assembly"] {
        add_ids_of(conn, source, &mut set).await?;
    }
    Ok(set)
}

/// The numbers the database file `name` at `path` mentions (opened read-only).
pub async fn in_file(path: &Path, name: &str) -> Result<Issued> {
    let opts = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|e| Error::internal("opening a copy", e))?
        .filename(path)
        .read_only(true);
    let mut conn =
        SqliteConnection::connect_with(&opts).await.map_err(|e| Error::internal("opening a copy", e))?;
    let set = match name {
        PARTS_DB => in_parts(&mut conn).await,
        ASSEMBLED_DB => in_assembly(&mut conn).await,
        _ => Ok(Issued::new()),
    };
    let _ = conn.close().await;
    set
}

/// The numbers the live database `db` mentions.
pub async fn in_live(db: &Db) -> Result<Issued> {
    let pool = db.reader().await;
    let mut conn = pool.acquire().await?;
    match db.name {
        PARTS_DB => in_parts(&mut conn).await,
        ASSEMBLED_DB => in_assembly(&mut conn).await,
        _ => Ok(Issued::new()),
    }
}

/// The state.db `meta` key noting that the assembly log was read once.
const ASSEMBLY_SEEDED: &str = "issued_numbers.assembly_log_read";

/// On start: records every number the live parts.db mentions (this carries
/// its old `part_sequences` marks, adopted CAsMan rows and parts written by
/// other programs into state.db), and, the first time only, those of the
/// assembly log. Later assembly events name parts that parts.db held when
/// they were scanned, whose numbers state.db already knows; restores, pulls
/// and merges read the log again.
pub async fn absorb_live(parts: &Db, assembled: &Db, state: &Db) -> Result<Issued> {
    let mut set = in_live(parts).await?;
    let seeded: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(ASSEMBLY_SEEDED)
        .fetch_optional(&*state.reader().await)
        .await?;
    if seeded.is_none() {
        set.extend(&in_live(assembled).await?);
    }
    let known = record(state, &set).await?;
    if seeded.is_none() {
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
            .bind(ASSEMBLY_SEEDED)
            .bind(crate::timestamp::now())
            .execute(&*state.writer().await)
            .await?;
    }
    Ok(known)
}

/// The part numbers the assembly log references that parts.db does not hold
/// (SNAP ports excluded: they need no row), sorted.
pub async fn missing_parts(parts: &Db, assembled: &Db) -> Result<Vec<String>> {
    let referenced = {
        let pool = assembled.reader().await;
        let mut conn = pool.acquire().await?;
        in_assembly(&mut conn).await?
    };
    let held = {
        let pool = parts.reader().await;
        let mut conn = pool.acquire().await?;
        part_rows(&mut conn).await?
    };
    let mut missing: Vec<String> = referenced
        .not_in(&held)
        .into_iter()
        .filter(|n| n.part_type() != PartType::Snap)
        .map(|n| n.to_string())
        .collect();
    missing.sort();
    Ok(missing)
}
