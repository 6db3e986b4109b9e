//! The identity of every change casmand makes to parts.db and
//! assembled_casm.db: the site that made it, that site's sequence number in
//! the file, and a hybrid logical clock (HLC) timestamp, written in the same
//! transaction as the change (DESIGN.md, "Sync between sites").
//!
//! How. On its writer connection (the only one that writes), casmand
//! installs TEMP triggers: they exist on that connection alone, so writes by
//! other programs (the sqlite3 shell, the Python tool) carry no identity, and
//! nothing is stored in the file's schema. After every row written to a
//! tracked table (`parts`, `antenna_positions`, `snap_boards`,
//! `grid_positions`) a trigger advances the connection's clock and appends a
//! `change_log` row (the row's values as JSON); after every scan event (a row
//! of `assembly`) it appends the event's `event_origin` row. Because the
//! stamp is written by the statement that writes the change, it commits or
//! rolls back with it, whichever code path wrote: every write through the
//! one door (`crate::context`) is stamped, and a refused or failed write
//! consumes no sequence number (the clock is a TEMP table, rolled back too).
//!
//! The clock. An HLC value is `milliseconds since 1970 * 65536 + counter`:
//! each stamp takes `max(last + 1, now * 65536)`, so values strictly increase
//! at a site even when its wall clock steps back, and stay close to real
//! time. One total order over all sites' changes: by HLC, ties by site id and
//! sequence. (Receiving other sites' changes, which advances the clock past
//! theirs, is the change exchange's next step.)
//!
//! Bulk operations. `database clear` records one `clear` change instead of a
//! delete per row ([`pause`], [`note`]); the legacy whole-file merge records
//! none for the rows it copies (they are another site's changes; the
//! exchange replaces it).

use sqlx::{Connection, SqliteConnection};

/// Tables of parts.db whose rows are changes of their own.
pub const TRACKED: [&str; 4] = ["parts", "antenna_positions", "snap_boards", "grid_positions"];

/// The column naming a row of a tracked table across sites (its `id` is
/// local to each file): the key of `row_clock`.
pub fn key_column(tbl: &str) -> Option<&'static str> {
    match tbl {
        "parts" => Some("part_number"),
        "antenna_positions" => Some("antenna_number"),
        "snap_boards" => Some("serial_number"),
        "grid_positions" => Some("grid_code"),
        _ => None,
    }
}

/// The next HLC value from the clock's last `hlc`: strictly later, and not
/// behind the wall clock (SQL, evaluated inside the write).
/// (Statements inside triggers take unqualified names: `casman_clock` is
/// the TEMP table, `change_log` and `event_origin` the file's.)
const NEXT: &str = "UPDATE casman_clock SET seq = seq + 1, \
     hlc = max(hlc + 1, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 65536)";

/// The site's row in `sites`, written with the site's first stamp in this
/// file (installing writes nothing to the file: a file just pulled from
/// another site must stay byte for byte what was pulled).
const REGISTER: &str = "INSERT OR IGNORE INTO sites (code, site_id)
       SELECT site, site_id FROM casman_clock WHERE registered = 0;
     UPDATE casman_clock SET registered = 1 WHERE registered = 0";

// (The row_clock writes are upserts, not INSERT OR REPLACE: a trigger takes
// the conflict algorithm of the statement that fired it, so an outer
// `INSERT ... ON CONFLICT` or `INSERT OR ABORT` would turn OR REPLACE into
// an error.)

/// Only while casmand's own writes are being stamped.
const WHEN: &str = "WHEN (SELECT paused FROM temp.casman_clock) = 0";

/// Whether `name` is a table of the main schema.
async fn has_table(conn: &mut SqliteConnection, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    Ok(n > 0)
}

/// Whether the stamping triggers are installed on `conn`.
async fn installed(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM temp.sqlite_master WHERE name = 'casman_clock'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Installs the stamping triggers on `conn` (casmand's writer connection of
/// parts.db or assembled_casm.db) for site `site`, registering the site in
/// the file's `sites` table and starting the clock from the file's newest
/// stamp, or from `floor` = (sequence, clock) if that is later: the clock
/// this connection's predecessor reached on a file since replaced (a
/// restore brings back an older file; its numbers must not be issued
/// again). Returns false, installing nothing, when the file has no
/// `change_log` yet (before its migration). Idempotent: triggers are
/// replaced, so a migration that adds a column is followed.
pub async fn install(
    conn: &mut SqliteConnection,
    site: &str,
    floor: (i64, i64),
) -> Result<bool, sqlx::Error> {
    if !has_table(conn, "change_log").await? || !has_table(conn, "sites").await? {
        return Ok(false);
    }
    let events = has_table(conn, "event_origin").await? && has_table(conn, "assembly").await?;
    let row_clock = has_table(conn, "row_clock").await?;
    let mut tracked = Vec::new();
    for t in TRACKED {
        if has_table(conn, t).await? {
            let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(t)
                .fetch_all(&mut *conn)
                .await?;
            tracked.push((t, cols));
        }
    }
    let mut tx = conn.begin().await?;
    sqlx::query(
        "DROP TABLE IF EXISTS temp.casman_clock;
         CREATE TEMP TABLE casman_clock (site INTEGER NOT NULL, site_id TEXT NOT NULL, registered INTEGER NOT NULL,
                                         seq INTEGER NOT NULL, hlc INTEGER NOT NULL, paused INTEGER NOT NULL);",
    )
    .execute(&mut *tx)
    .await?;
    // The newest stamp of this file: this site's highest sequence, and the
    // highest clock value of any site (a clock never runs behind what it
    // has seen). Events are stamped in id order, so the newest event holds
    // the newest event stamp.
    let (seq_events, hlc_events) = if events {
        (
            "(SELECT MAX(seq) FROM main.event_origin WHERE site = s.code)",
            "(SELECT hlc FROM main.event_origin ORDER BY event_id DESC LIMIT 1)",
        )
    } else {
        ("0", "0")
    };
    // Rows of parts.db from before the upgrade are numbered in `row_clock`
    // alone (`super::history`).
    let seq_rows = if row_clock { "(SELECT MAX(seq) FROM main.row_clock WHERE site = s.code)" } else { "0" };
    // The site's code: its row in `sites`, or the next free code (the row
    // is written with the first stamp, see REGISTER).
    let start = format!(
        "INSERT INTO temp.casman_clock (site, site_id, registered, seq, hlc, paused)
         SELECT s.code, ?1, s.known,
                max(COALESCE((SELECT MAX(seq) FROM main.change_log WHERE site = s.code), 0),
                    COALESCE({seq_events}, 0), COALESCE({seq_rows}, 0), ?2),
                max(COALESCE((SELECT MAX(hlc) FROM main.change_log), 0), COALESCE({hlc_events}, 0), ?3),
                0
           FROM (SELECT COALESCE((SELECT code FROM main.sites WHERE site_id = ?1),
                                 (SELECT COALESCE(MAX(code), 0) + 1 FROM main.sites)) AS code,
                        EXISTS (SELECT 1 FROM main.sites WHERE site_id = ?1) AS known) s"
    );
    sqlx::query(sqlx::AssertSqlSafe(start)).bind(site).bind(floor.0).bind(floor.1).execute(&mut *tx).await?;
    let mut ddl = String::from(
        "DROP VIEW IF EXISTS temp.casman_note;
         CREATE TEMP VIEW casman_note (tbl, op, row) AS SELECT NULL, NULL, NULL WHERE 0;\n",
    );
    // A clear is the newest change of every row of its table before it:
    // kept as the table's entry with the empty key (see `row_clock`).
    let clear_clock = if row_clock {
        "INSERT INTO row_clock (tbl, key, hlc, site, seq)
           SELECT NEW.tbl, '', hlc, site, seq FROM temp.casman_clock WHERE NEW.op = 'clear'
           ON CONFLICT (tbl, key) DO UPDATE SET hlc = excluded.hlc, site = excluded.site, seq = excluded.seq;"
    } else {
        ""
    };
    ddl.push_str(&format!(
        "CREATE TEMP TRIGGER casman_note_stamp INSTEAD OF INSERT ON casman_note BEGIN {NEXT}; {REGISTER};
           INSERT INTO change_log (site, seq, hlc, tbl, op, row)
             SELECT site, seq, hlc, NEW.tbl, NEW.op, NEW.row FROM temp.casman_clock;
           {clear_clock}
         END;\n"
    ));
    for (t, cols) in &tracked {
        for (op, event, side) in
            [("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"), ("delete", "DELETE", "OLD")]
        {
            let fields: Vec<String> = cols
                .iter()
                .map(|c| format!("'{}', {side}.\"{}\"", c.replace('\'', "''"), c.replace('"', "\"\"")))
                .collect();
            let clock = match key_column(t) {
                Some(k) if row_clock => format!(
                    "INSERT INTO row_clock (tbl, key, hlc, site, seq)
                       SELECT '{t}', {side}.\"{k}\", hlc, site, seq FROM temp.casman_clock
                        WHERE {side}.\"{k}\" IS NOT NULL
                       ON CONFLICT (tbl, key) DO UPDATE SET hlc = excluded.hlc, site = excluded.site, seq = excluded.seq;"
                ),
                _ => String::new(),
            };
            ddl.push_str(&format!(
                "DROP TRIGGER IF EXISTS temp.casman_{t}_{op};
                 CREATE TEMP TRIGGER casman_{t}_{op} AFTER {event} ON main.{t} {WHEN} BEGIN {NEXT}; {REGISTER};
                   INSERT INTO change_log (site, seq, hlc, tbl, op, row)
                     SELECT site, seq, hlc, '{t}', '{op}', json_object({}) FROM temp.casman_clock;
                   {clock}
                 END;\n",
                fields.join(", ")
            ));
        }
    }
    if events {
        ddl.push_str(&format!(
            "DROP TRIGGER IF EXISTS temp.casman_assembly_insert;
             CREATE TEMP TRIGGER casman_assembly_insert AFTER INSERT ON main.assembly {WHEN} BEGIN {NEXT}; {REGISTER};
               INSERT INTO event_origin (event_id, site, seq, hlc)
                 SELECT NEW.id, site, seq, hlc FROM temp.casman_clock;
             END;\n"
        ));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// The clock of `conn`: (this site's last sequence, last clock value), or
/// `None` where stamping is not installed.
pub async fn clock(conn: &mut SqliteConnection) -> Result<Option<(i64, i64)>, sqlx::Error> {
    if !installed(conn).await? {
        return Ok(None);
    }
    sqlx::query_as("SELECT seq, hlc FROM temp.casman_clock").fetch_optional(&mut *conn).await
}

/// Stops (`true`) or resumes stamping row changes on `conn`, inside the
/// caller's transaction (a rollback undoes it). No-op where stamping is not
/// installed.
pub async fn pause(conn: &mut SqliteConnection, paused: bool) -> Result<(), sqlx::Error> {
    if installed(conn).await? {
        sqlx::query("UPDATE temp.casman_clock SET paused = ?")
            .bind(i64::from(paused))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records a change that is not a row (`op` = `clear` of table `tbl`) with
/// the next stamp, inside the caller's transaction. No-op where stamping is
/// not installed.
pub async fn note(conn: &mut SqliteConnection, tbl: &str, op: &str) -> Result<(), sqlx::Error> {
    if installed(conn).await? {
        sqlx::query("INSERT INTO temp.casman_note (tbl, op, row) VALUES (?, ?, NULL)")
            .bind(tbl)
            .bind(op)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Receiving a change stamped `hlc` by another site: this site's clock goes
/// past it (its next changes are later in the total order than everything
/// it has seen), and this site's row in `sites` is written now, before any
/// other site is given a code. Inside the caller's transaction; no-op where
/// stamping is not installed.
pub async fn observe(conn: &mut SqliteConnection, hlc: i64) -> Result<(), sqlx::Error> {
    if installed(conn).await? {
        sqlx::raw_sql(sqlx::AssertSqlSafe(REGISTER)).execute(&mut *conn).await?;
        sqlx::query("UPDATE temp.casman_clock SET hlc = max(hlc, ?)").bind(hlc).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The code of site `site_id` in this file, registering it if new (after
/// this site's own code, which [`observe`] writes first).
pub async fn site_code(conn: &mut SqliteConnection, site_id: &str) -> Result<i64, sqlx::Error> {
    if installed(conn).await? {
        sqlx::raw_sql(sqlx::AssertSqlSafe(REGISTER)).execute(&mut *conn).await?;
    }
    sqlx::query(
        "INSERT INTO sites (code, site_id)
         SELECT COALESCE(MAX(code), 0) + 1, ?1 FROM sites WHERE NOT EXISTS (SELECT 1 FROM sites WHERE site_id = ?1)
         HAVING NOT EXISTS (SELECT 1 FROM sites WHERE site_id = ?1)",
    )
    .bind(site_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT code FROM sites WHERE site_id = ?").bind(site_id).fetch_one(&mut *conn).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::{
        db::{Databases, batch::run_batch, parts, positions, scans, whole},
        inventory::{GridCode, PartType, Polarization},
    };

    async fn stamped(dir: &std::path::Path) -> Databases {
        let dbs = Databases::open(dir, &jiff::tz::TimeZone::UTC).await.unwrap();
        dbs.stamp_as("site-a").await.unwrap();
        dbs
    }

    async fn rows(db: &crate::db::Db, sql: &str) -> Vec<(i64, i64, i64)> {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&*db.reader().await).await.unwrap()
    }

    /// Every change is stamped in its own transaction with one site, one
    /// sequence without gaps and a strictly increasing clock; a refused
    /// write consumes nothing; reopening continues the sequence.
    #[tokio::test]
    async fn changes_are_stamped_in_order_and_refusals_take_no_number() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = stamped(dir.path()).await;
        for t in [PartType::Antenna, PartType::Lna] {
            parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 3, 1..=99_999).await.unwrap();
        }
        let code = GridCode::parse("CN002E03").unwrap();
        positions::assign(&dbs.parts, "ANT00001", code, None, false).await.unwrap();
        // Refused: occupied, not forced.
        assert!(positions::assign(&dbs.parts, "ANT00002", code, None, false).await.is_err());
        let log = rows(&dbs.parts, "SELECT site, seq, hlc FROM change_log ORDER BY seq").await;
        assert_eq!(log.len(), 7, "{log:?}");
        assert!(log.iter().all(|r| r.0 == 1));
        assert_eq!(log.iter().map(|r| r.1).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
        assert!(log.windows(2).all(|w| w[0].2 < w[1].2), "{log:?}");
        let now_ms = jiff::Timestamp::now().as_millisecond();
        assert!((log[6].2 >> 16) <= now_ms && (log[6].2 >> 16) > now_ms - 60_000);
        let what: Vec<(String, String, String)> =
            sqlx::query_as("SELECT tbl, op, row ->> '$.antenna_number' FROM change_log WHERE seq = 7")
                .fetch_all(&*dbs.parts.reader().await)
                .await
                .unwrap();
        assert_eq!(what, vec![("antenna_positions".into(), "insert".into(), "ANT00001".into())]);

        // Scan events: one origin row each, in the same batch transaction.
        let op = |a: &str, b: &str| {
            let parts = dbs.parts.clone();
            let (a, b) = (a.to_owned(), b.to_owned());
            async move {
                scans::ScanOp::Connect {
                    source: scans::resolve(&parts, &a).await.unwrap(),
                    target: scans::resolve(&parts, &b).await.unwrap(),
                }
            }
        };
        let ops = [
            op("ANT00001P1", "LNA00001P1").await,
            op("ANT00002P1", "LNA00001P1").await, // refused: LNA00001P1 receives already
            op("ANT00002P1", "LNA00002P1").await,
        ];
        let refs: Vec<&scans::ScanOp> = ops.iter().collect();
        let results = run_batch(&dbs.assembled, &refs).await;
        assert!(results[1].is_err());
        let origins =
            rows(&dbs.assembled, "SELECT event_id, seq, hlc FROM event_origin ORDER BY event_id").await;
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM assembly ORDER BY id")
            .fetch_all(&*dbs.assembled.reader().await)
            .await
            .unwrap();
        assert_eq!(
            origins.iter().map(|o| o.0).collect::<Vec<_>>(),
            ids.iter().map(|i| i.0).collect::<Vec<_>>()
        );
        assert_eq!(origins.iter().map(|o| o.1).collect::<Vec<_>>(), vec![1, 2]);
        assert!(origins[0].2 < origins[1].2);

        // A clear is one change, not one per row; the sequence goes on after a reopen.
        whole::clear(&dbs.parts, &dbs.state).await.unwrap();
        dbs.close().await;
        let dbs = stamped(dir.path()).await;
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P2, 1, 1..=99_999)
            .await
            .unwrap();
        let tail: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, tbl, op FROM change_log WHERE seq > 7 ORDER BY seq")
                .fetch_all(&*dbs.parts.reader().await)
                .await
                .unwrap();
        assert_eq!(tail, vec![(8, "parts".into(), "clear".into()), (9, "parts".into(), "insert".into())]);
    }

    /// A file replaced by an older one (a restore) does not make the site
    /// issue its sequence numbers again: the clock goes on from where the
    /// replaced file left it.
    #[tokio::test]
    async fn a_restored_older_file_issues_no_number_twice() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = stamped(dir.path()).await;
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P1, 2, 1..=99_999)
            .await
            .unwrap();
        let old = dir.path().join("old-parts.db");
        sqlx::query("VACUUM INTO ?")
            .bind(old.display().to_string())
            .execute(&*dbs.parts.reader().await)
            .await
            .unwrap();
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P1, 3, 1..=99_999)
            .await
            .unwrap();
        let before =
            rows(&dbs.parts, "SELECT site, seq, hlc FROM change_log ORDER BY seq DESC LIMIT 1").await;
        assert_eq!(before[0].1, 5);
        dbs.parts.replace_file(&old, None).await.unwrap();
        // A restart before anything else is written does not forget it.
        dbs.close().await;
        let dbs = stamped(dir.path()).await;
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P2, 1, 1..=99_999)
            .await
            .unwrap();
        let after = rows(&dbs.parts, "SELECT site, seq, hlc FROM change_log ORDER BY seq").await;
        assert_eq!(after.iter().map(|r| r.1).collect::<Vec<_>>(), vec![1, 2, 6], "{after:?}");
        assert!(after[2].2 > before[0].2);
    }

    /// Without stamping (files opened by tools, tests), writes work as before.
    #[tokio::test]
    async fn unstamped_files_write_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = Databases::open(dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
        parts::generate(&dbs.parts, &dbs.state, PartType::Lna, Polarization::P1, 2, 1..=99_999)
            .await
            .unwrap();
        whole::clear(&dbs.parts, &dbs.state).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
            .fetch_one(&*dbs.parts.reader().await)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
