//! The issued part numbers kept in state.db (table `issued_numbers`), and the
//! numbers a parts.db or assembled_casm.db file mentions. state.db is never
//! restored, pulled, merged or cleared, so what it knows stays known.

use std::path::Path;

use sqlx::SqliteConnection;

use super::{ASSEMBLED_DB, Db, PARTS_DB};
use crate::{
    error::{Error, Result},
    inventory::{Issued, PartNumber, PartSet, PartType, Polarization},
};

/// Every issued number state.db knows, once every pending file ([`defer`])
/// is read.
pub async fn load(state: &Db) -> Result<Issued> {
    settle(state).await?;
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

/// Reading pending files: one at a time in the process, so that a
/// generation waiting for [`settle`] finds the work done, not done twice.
static SETTLING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Notes in state.db that the numbers of the database file `name` at `path`
/// are to be read (by [`settle`]): written before a restore swaps the live
/// file away to `path`, so that it need not be read before the swap and
/// none of its numbers is ever issued again, also after a crash.
pub async fn defer(state: &Db, path: &Path, name: &str) -> Result<()> {
    sqlx::query("INSERT OR REPLACE INTO issued_pending (path, db_name, added_at) VALUES (?, ?, ?)")
        .bind(path.display().to_string())
        .bind(name)
        .bind(crate::timestamp::now())
        .execute(&*state.writer().await)
        .await?;
    Ok(())
}

/// Reads every pending file ([`defer`]) and records its numbers. A file
/// that is not there was never swapped away (the restore stopped before its
/// swap: the live file still holds those numbers) and its note is dropped.
/// A file that cannot be read stops generation, naming it.
pub async fn settle(state: &Db) -> Result<()> {
    let _one = SETTLING.lock().await;
    let pending: Vec<(String, String)> =
        sqlx::query_as("SELECT path, db_name FROM issued_pending ORDER BY added_at")
            .fetch_all(&*state.reader().await)
            .await?;
    for (path, name) in pending {
        let file = Path::new(&path);
        if file.exists() {
            let read = read_file(file, &name).await.map_err(|e| {
                Error::Unavailable(format!(
                    "the part numbers of {path}, the {name} a restore replaced, could not be read ({e}); \
                     no number is issued until they are"
                ))
            })?;
            record(state, &read.issued).await?;
            tracing::debug!(file = %path, database = %name, "the replaced file's part numbers are recorded");
        } else {
            tracing::info!(file = %path, database = %name, "no replaced file to read part numbers from: it was not replaced");
        }
        sqlx::query("DELETE FROM issued_pending WHERE path = ?")
            .bind(&path)
            .execute(&*state.writer().await)
            .await?;
    }
    Ok(())
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

/// The numbers a parts.db connection mentions: its part rows and its
/// `part_sequences` marks.
pub async fn in_parts(conn: &mut SqliteConnection) -> Result<Issued> {
    let mut set = Issued::new();
    let ids: Vec<String> = sqlx::query_scalar(PART_IDS).fetch_all(&mut *conn).await?;
    for id in &ids {
        set.add_id(id);
    }
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
            add_mark(&mut set, &t, &p, n);
        }
    }
    Ok(set)
}

/// The part ids an assembly log's rows with `id` in `?1..=?2` mention, both
/// ends in one pass over the table (two queries, one per end, read every
/// page twice; duplicates are left to the reader: DISTINCT doubled the
/// walk's time).
const ASSEMBLY_IDS: &str = "SELECT part_number, connected_to FROM assembly WHERE id BETWEEN ?1 AND ?2";
/// [`ASSEMBLY_IDS`] for every row.
const ALL_ASSEMBLY_IDS: &str = "SELECT part_number, connected_to FROM assembly";

/// The part ids of parts.db's `parts` rows.
const PART_IDS: &str = "SELECT part_number FROM parts WHERE part_number IS NOT NULL";

/// The numbers the assembly log of an assembled_casm.db connection mentions.
pub async fn in_assembly(conn: &mut SqliteConnection) -> Result<Issued> {
    let mut set = Issued::new();
    // DISTINCT here: sqlx allocates every row it hands over.
    for sql in [
        "SELECT DISTINCT part_number FROM assembly WHERE part_number IS NOT NULL",
        "SELECT DISTINCT connected_to FROM assembly WHERE connected_to IS NOT NULL",
    ] {
        let ids: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *conn).await?;
        ids.iter().for_each(|id| set.add_id(id));
    }
    Ok(set)
}

/// What one read of a parts.db or assembled_casm.db file tells of part
/// numbers.
#[derive(Debug, Default)]
pub struct FileParts {
    /// Every number the file mentions (rows, `part_sequences` marks, log ends).
    pub issued: Issued,
    /// The part numbers its parts hold (parts.db) or its log's ends name
    /// (assembled_casm.db).
    pub parts: PartSet,
}

/// The numbers the database file `name` at `path` mentions: a closed copy or
/// a live file (read by a read-only connection of its own, in one read
/// transaction; WAL readers never wait for writers).
pub async fn in_file(path: &Path, name: &str) -> Result<Issued> {
    Ok(read_file(path, name).await?.issued)
}

/// Reads the file `name` at `path` once (like [`in_file`]), keeping its part
/// numbers too.
///
/// Read with rusqlite on a blocking thread, not through the pool: sqlx hands
/// every row across threads, which made reading the 100 000 ids of a field
/// database most of a restore's time.
pub async fn read_file(path: &Path, name: &str) -> Result<FileParts> {
    let (path, name) = (path.to_path_buf(), name.to_owned());
    blocking(move || {
        let conn = super::read_only::open(&path)?;
        let tx = conn.unchecked_transaction()?;
        let mut parts = PartSet::new();
        let mut marks = Issued::new();
        match name.as_str() {
            PARTS_DB => {
                each_number(&tx, PART_IDS, &mut parts)?;
                marks = sequence_marks(&tx)?;
            }
            ASSEMBLED_DB => each_end(&tx, None, &mut parts)?,
            _ => {}
        }
        Ok(FileParts::of(parts, marks))
    })
    .await
}

/// [`read_file`] for a file nothing else writes (a download about to replace
/// a live file): an assembly log is read in two halves of its row ids at
/// once, by two connections, one per core. (A live file is read in one
/// transaction: two connections would read two moments of it.)
pub async fn read_copy(path: &Path, name: &str) -> Result<FileParts> {
    if name != ASSEMBLED_DB {
        return read_file(path, name).await;
    }
    let ids = path.to_path_buf();
    let (lo, hi) = blocking(move || {
        super::read_only::open(&ids)?.query_row("SELECT min(id), max(id) FROM assembly", [], |r| {
            Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
    })
    .await?;
    let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
    let half = |range: (i64, i64)| {
        let path = path.to_path_buf();
        blocking(move || {
            let mut parts = PartSet::new();
            each_end(&super::read_only::open(&path)?, Some(range), &mut parts)?;
            Ok(parts)
        })
    };
    let (mut parts, other) =
        tokio::try_join!(half((i64::MIN, mid)), half((mid.saturating_add(1), i64::MAX)))?;
    parts.union_with(&other);
    Ok(FileParts::of(parts, Issued::new()))
}

impl FileParts {
    fn of(parts: PartSet, mut issued: Issued) -> FileParts {
        parts.add_to(&mut issued);
        FileParts { issued, parts }
    }
}

/// The `part_sequences` marks of a parts.db, if it has the table.
fn sequence_marks(conn: &rusqlite::Connection) -> rusqlite::Result<Issued> {
    let mut set = Issued::new();
    let has_sequences: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'part_sequences')",
        [],
        |r| r.get(0),
    )?;
    if has_sequences {
        let mut stmt = conn.prepare("SELECT part_type, polarization, highest FROM part_sequences")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (t, p, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            add_mark(&mut set, &t, &p, n);
        }
    }
    Ok(set)
}

/// The parts a log's ends name (`referenced`) that a parts.db does not hold
/// (`held`), SNAP boards' numbers left out (a log's SNAP ends need no part
/// row); sorted as their text sorts (every type's prefix is three letters
/// and every number five digits, so no string is built to sort them).
pub fn missing_parts(referenced: &PartSet, held: &PartSet) -> Vec<PartNumber> {
    let mut missing = referenced.missing_from(held, true);
    missing.sort_unstable_by_key(|n| (n.part_type().abbreviation(), n.number(), n.polarization().as_str()));
    missing
}

/// The numbers the live database `db` mentions.
pub async fn in_live(db: &Db) -> Result<Issued> {
    in_file(&db.path, db.name).await
}

/// Adds a `part_sequences` high-water mark.
fn add_mark(set: &mut Issued, part_type: &str, pol: &str, highest: i64) {
    if let (Ok(t), Ok(p)) = (PartType::parse(part_type), Polarization::parse(pol))
        && let Ok(n) = u32::try_from(highest)
    {
        set.add_run(t, p, n, n);
    }
}

/// Runs `f` on a blocking thread, with rusqlite errors as internal errors.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("reading part numbers", e))?
        .map_err(|e| Error::internal("reading part numbers", e))
}

/// Adds to `parts` the part numbers both ends of the assembly log's rows
/// (with ids in `range`, if given) name (values that are not text or not
/// part numbers are skipped), without allocating per row.
fn each_end(
    conn: &rusqlite::Connection,
    range: Option<(i64, i64)>,
    parts: &mut PartSet,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(if range.is_some() { ASSEMBLY_IDS } else { ALL_ASSEMBLY_IDS })?;
    let mut rows = match range {
        Some((lo, hi)) => stmt.query(rusqlite::params![lo, hi])?,
        None => stmt.query([])?,
    };
    while let Some(r) = rows.next()? {
        for end in 0..2 {
            add_number(r.get_ref(end)?, parts);
        }
    }
    Ok(())
}

/// Adds `value` to `parts` if it is text that reads as a part number.
fn add_number(value: rusqlite::types::ValueRef<'_>, parts: &mut PartSet) {
    if let rusqlite::types::ValueRef::Text(t) = value
        && let Some(n) = std::str::from_utf8(t).ok().and_then(PartNumber::parse_stored)
    {
        parts.insert(n);
    }
}

/// Adds to `parts` the part number in the first column of every row of
/// `sql` (rows whose value is not text or not a part number are skipped),
/// without allocating per row.
fn each_number(conn: &rusqlite::Connection, sql: &str, parts: &mut PartSet) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        add_number(r.get_ref(0)?, parts);
    }
    Ok(())
}

/// The state.db `meta` key noting that the assembly log was read once.
const ASSEMBLY_SEEDED: &str = "issued_numbers.assembly_log_read";

/// On start: records every number the live parts.db mentions (this carries
/// its old `part_sequences` marks, adopted CAsMan rows and parts written by
/// other programs into state.db), and, the first time only, those of the
/// assembly log. Later assembly events name parts that parts.db held when
/// they were scanned, whose numbers state.db already knows; restores, pulls
/// and merges read the log again. `parts_known`: parts.db is as it was when
/// casmand last stopped cleanly, having recorded its numbers ([`absorb_parts`]),
/// so it is not read again (a read that grows with the file).
pub async fn absorb_live(parts: &Db, assembled: &Db, state: &Db, parts_known: bool) -> Result<Issued> {
    let mut set = if parts_known { Issued::new() } else { in_live(parts).await? };
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

/// Records every number the live parts.db mentions (on a clean stop, so
/// that a start on the file unchanged need not read it: see [`absorb_live`]).
pub async fn absorb_parts(parts: &Db, state: &Db) -> Result<()> {
    record(state, &in_live(parts).await?).await.map(drop)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::Databases;

    /// A file noted before a swap is read by the next load, once; a note
    /// whose file is not there (no swap happened) is dropped.
    #[tokio::test]
    async fn a_deferred_file_is_read_before_any_number_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        // A replaced parts.db that held ANT00007P1 and ANT00009P1.
        let kept = dir.path().join("kept.db");
        let conn = rusqlite::Connection::open(&kept).unwrap();
        conn.execute_batch(
            "CREATE TABLE parts (part_number TEXT);
             INSERT INTO parts VALUES ('ANT00007P1'), ('ANT00009P1'), ('not a number');",
        )
        .unwrap();
        drop(conn);
        defer(&dbs.state, &kept, PARTS_DB).await.unwrap();
        defer(&dbs.state, &dir.path().join("never-swapped.db"), PARTS_DB).await.unwrap();
        let known = load(&dbs.state).await.unwrap();
        let ant = |n| PartNumber::new(PartType::Antenna, n, Polarization::P1).unwrap();
        assert!(known.contains(ant(7)) && known.contains(ant(9)) && !known.contains(ant(8)));
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM issued_pending")
            .fetch_one(&*dbs.state.reader().await)
            .await
            .unwrap();
        assert_eq!(left, 0, "every note is settled");
        // Recorded for good: the file is no longer needed.
        std::fs::remove_file(&kept).unwrap();
        assert!(load(&dbs.state).await.unwrap().contains(ant(9)));
    }

    /// Both ends of every row, read in one pass (a live file) or in two
    /// halves of the ids at once (a copy): the same set.
    #[tokio::test]
    async fn a_logs_ends_read_whole_or_in_halves_are_the_same_set() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.db");
        let conn = rusqlite::Connection::open(&log).unwrap();
        conn.execute_batch(
            "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, connected_to TEXT);
             INSERT INTO assembly VALUES (1, 'ANT00001P1', 'LNA00001P1'), (2, 'LNA00001P1', 'CXS00001P1'),
               (7, NULL, 'BAC00002P2'), (8, 'not a part', NULL), (9, 'ANT00003P2', 'LNA00003P2'),
               (1000, 'CXL00004P1', 'BAC00004P1');",
        )
        .unwrap();
        drop(conn);
        let whole = read_file(&log, ASSEMBLED_DB).await.unwrap();
        let halves = read_copy(&log, ASSEMBLED_DB).await.unwrap();
        let expected = [
            "ANT00001P1",
            "LNA00001P1",
            "CXS00001P1",
            "BAC00002P2",
            "ANT00003P2",
            "LNA00003P2",
            "CXL00004P1",
            "BAC00004P1",
        ];
        for parts in [&whole.parts, &halves.parts] {
            assert_eq!(parts.len(), expected.len());
            for id in expected {
                assert!(parts.contains(PartNumber::parse_stored(id).unwrap()), "{id}");
            }
        }
        assert_eq!(whole.issued, halves.issued);
    }

    #[test]
    fn missing_parts_sort_as_their_text_does() {
        let (mut referenced, held) = (PartSet::new(), PartSet::new());
        for id in ["LNA00002P1", "ANT00010P2", "ANT00010P1", "CXS00001P1", "ANT00002P2", "BAC00003P1"] {
            referenced.insert(PartNumber::parse_stored(id).unwrap());
        }
        let got: Vec<String> = missing_parts(&referenced, &held).iter().map(ToString::to_string).collect();
        let mut text = got.clone();
        text.sort();
        assert_eq!(got, text);
        assert_eq!(got.len(), 6);
    }
}
