//! The issued part numbers kept in state.db (table `issued_numbers`), and the
//! numbers a parts.db or assembled_casm.db file mentions. state.db is never
//! restored, pulled, merged or cleared, so what it knows stays known.

use std::path::{Path, PathBuf};

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
/// none of its numbers is ever issued again, also after a crash. Until the
/// returned guard is dropped (once the swap is done, or the restore gave
/// up), a `path` not there yet is awaited, not taken for a swap that never
/// happened: a generation meanwhile leaves the note for later.
pub async fn defer(state: &Db, path: &Path, name: &str) -> Result<Deferred> {
    let deferred = Deferred::new(path.display().to_string());
    sqlx::query("INSERT OR REPLACE INTO issued_pending (path, db_name, added_at) VALUES (?, ?, ?)")
        .bind(&deferred.path)
        .bind(name)
        .bind(crate::timestamp::now())
        .execute(&*state.writer().await)
        .await?;
    Ok(deferred)
}

/// The files [`defer`]red by restores still running in this process.
static IN_FLIGHT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A restore's [`defer`]red file, until its swap is done or given up.
#[derive(Debug)]
#[must_use = "the note is settled as soon as the guard is dropped"]
pub struct Deferred {
    path: String,
}

impl Deferred {
    fn new(path: String) -> Deferred {
        IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
        Deferred { path }
    }

    /// Whether a restore of this process is still about to swap a file to `path`.
    fn in_flight(path: &str) -> bool {
        IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|p| p == path)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let mut all = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = all.iter().position(|p| *p == self.path) {
            all.swap_remove(i);
        }
    }
}

/// Reads every pending file ([`defer`]) and records its numbers. A file
/// that is not there was never swapped away (the restore stopped before its
/// swap: the live file still holds those numbers) and its note is dropped.
/// A file that cannot be read stops generation, naming it. A file whose
/// restore is still running ([`Deferred`]) is left for later: until its
/// swap, the live file holds its numbers.
pub async fn settle(state: &Db) -> Result<()> {
    let _one = SETTLING.lock().await;
    let pending: Vec<(String, String)> =
        sqlx::query_as("SELECT path, db_name FROM issued_pending ORDER BY added_at")
            .fetch_all(&*state.reader().await)
            .await?;
    for (path, name) in pending {
        if Deferred::in_flight(&path) {
            continue;
        }
        // A swap cut short before the kept file got its name leaves it as
        // `<path>.link` (named at the next start: `settle_safety_copies`).
        let link = PathBuf::from(format!("{path}.link"));
        let file = [Path::new(&path), link.as_path()].into_iter().find(|f| f.exists());
        if let Some(file) = file {
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

/// Both ends of every event of an assembly log, as coded in the pair state
/// kept beside it (migrations/assembled/0005): every pair of ends that has
/// events has one `pair_state` row, and every event with a NULL end a
/// `pair_other` row with `lo` = -1. A tenth of the log's pages, and no text
/// to parse for the standard numbers.
const PAIR_ENDS: &str = "SELECT lo, hi FROM pair_state UNION ALL SELECT lo, hi FROM pair_other WHERE lo = -1";
/// Both ends of every row of the log itself (a file without the pair state:
/// one CAsMan wrote, before adoption).
const ASSEMBLY_ENDS: &str = "SELECT part_number, connected_to FROM assembly";

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
            ASSEMBLED_DB => log_ends(&tx, &mut parts)?,
            _ => {}
        }
        Ok(FileParts::of(parts, marks))
    })
    .await
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
    if super::read_only::has_table(conn, "part_sequences")? {
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

/// Adds to `parts` the part numbers both ends of every row of the
/// assembly log name, read from its pair state when it has one (see
/// [`PAIR_ENDS`]; values that are not part numbers are skipped), without
/// allocating per row.
fn log_ends(conn: &rusqlite::Connection, parts: &mut PartSet) -> rusqlite::Result<()> {
    // Both tables, with coded ends, exist from migration 0005 on (0004 had
    // `pair_state` alone, with the ends as text): an older file is read
    // row by row.
    let has = |t| super::read_only::has_table(conn, t);
    if has("pair_state")? && has("pair_other")? {
        each_end(conn, PAIR_ENDS, true, parts)
    } else {
        each_end(conn, ASSEMBLY_ENDS, false, parts)
    }
}

/// Adds to `parts` the part numbers in the two columns of every row of
/// `sql`: text parsed as stored, integers (when `coded`) decoded.
fn each_end(
    conn: &rusqlite::Connection,
    sql: &str,
    coded: bool,
    parts: &mut PartSet,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        for end in 0..2 {
            match r.get_ref(end)? {
                rusqlite::types::ValueRef::Integer(code) if coded => {
                    if let Some(n) = super::part_code::decode(code) {
                        parts.insert(n);
                    }
                }
                value => add_number(value, parts),
            }
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
        drop(defer(&dbs.state, &kept, PARTS_DB).await.unwrap());
        drop(defer(&dbs.state, &dir.path().join("never-swapped.db"), PARTS_DB).await.unwrap());
        // A restore still on its way to the swap: its file is not there yet,
        // and its note stays until the guard goes.
        let coming = dir.path().join("coming.db");
        let guard = defer(&dbs.state, &coming, PARTS_DB).await.unwrap();
        let known = load(&dbs.state).await.unwrap();
        let pending = || async {
            sqlx::query_scalar::<_, String>("SELECT path FROM issued_pending")
                .fetch_all(&*dbs.state.reader().await)
                .await
                .unwrap()
        };
        assert_eq!(pending().await, [coming.display().to_string()]);
        std::fs::copy(&kept, &coming).unwrap();
        drop(guard);
        let ant = |n| PartNumber::new(PartType::Antenna, n, Polarization::P1).unwrap();
        assert!(known.contains(ant(7)) && known.contains(ant(9)) && !known.contains(ant(8)));
        load(&dbs.state).await.unwrap();
        assert_eq!(pending().await, Vec::<String>::new(), "every note is settled");
        // A swap cut short before the kept file got its name: it is read
        // under its link name.
        let linked = dir.path().join("linked.db");
        let guard = defer(&dbs.state, &linked, PARTS_DB).await.unwrap();
        let link = dir.path().join("linked.db.link");
        rusqlite::Connection::open(&link)
            .unwrap()
            .execute_batch("CREATE TABLE parts (part_number TEXT); INSERT INTO parts VALUES ('ANT00011P1');")
            .unwrap();
        drop(guard);
        assert!(load(&dbs.state).await.unwrap().contains(ant(11)));
        assert_eq!(pending().await, Vec::<String>::new());
        // Recorded for good: the files are no longer needed.
        std::fs::remove_file(&kept).unwrap();
        std::fs::remove_file(&coming).unwrap();
        assert!(load(&dbs.state).await.unwrap().contains(ant(9)));
    }

    /// The ends read from the pair state are those of the log's rows, for
    /// every kind of value an end can hold and after updates and deletes.
    #[tokio::test]
    async fn a_logs_ends_read_from_its_pair_state_are_those_of_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        let conn = rusqlite::Connection::open(&dbs.assembled.path).unwrap();
        let ids = [
            Some("ANT00001P1"),
            Some("LNA00001P2"),
            Some("CXS00017P1"),
            Some("CXL99999P2"),
            Some("BAC00004P1"),
            Some("SNP00002P2"),
            Some("ant00003p1"),
            Some(" LNA00005P1"),
            Some("ANT00000P1"),
            Some("SNAP1A05"),
            Some("not a part"),
            Some("1000011"),
            None,
        ];
        // A fixed pseudo-random sequence of events, then updates and deletes.
        let mut next = crate::test_rng::xorshift(0x9E37_79B9_7F4A_7C15);
        for i in 0..400 {
            let (a, b) = (ids[next(ids.len())], ids[next(ids.len())]);
            let status = if next(4) == 0 { "disconnected" } else { "connected" };
            conn.execute(
                "INSERT INTO assembly (part_number, connected_to, scan_time, connection_status)
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![a, b, format!("2026-01-01 00:00:{:02}", i % 60), status],
            )
            .unwrap();
        }
        // Parts named only beside a NULL end.
        conn.execute_batch(
            "INSERT INTO assembly (part_number, connected_to) VALUES (NULL, 'CXL00042P1'), ('BAC00043P2', NULL);",
        )
        .unwrap();
        conn.execute("UPDATE assembly SET connected_to = 'CXS00099P2' WHERE id % 7 = 0", []).unwrap();
        conn.execute("DELETE FROM assembly WHERE id % 5 = 0", []).unwrap();
        let mut scanned = PartSet::new();
        each_end(&conn, ASSEMBLY_ENDS, false, &mut scanned).unwrap();
        let from_pairs = read_file(&dbs.assembled.path, ASSEMBLED_DB).await.unwrap();
        assert!(scanned.len() >= 8, "{}", scanned.len());
        assert_eq!(from_pairs.parts.missing_from(&scanned, false), vec![]);
        assert_eq!(scanned.missing_from(&from_pairs.parts, false), vec![]);
        // A file without the pair state (CAsMan's) is read from its rows.
        let plain = dir.path().join("plain.db");
        rusqlite::Connection::open(&plain)
            .unwrap()
            .execute_batch(
                "CREATE TABLE assembly (id INTEGER PRIMARY KEY, part_number TEXT, connected_to TEXT);
                 INSERT INTO assembly VALUES (1, 'ANT00001P1', 'LNA00001P1'), (2, NULL, 'bac00002p2'),
                   (3, 'not a part', NULL);",
            )
            .unwrap();
        let read = read_file(&plain, ASSEMBLED_DB).await.unwrap();
        let got: Vec<String> =
            missing_parts(&read.parts, &PartSet::new()).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["ANT00001P1", "BAC00002P2", "LNA00001P1"]);
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
