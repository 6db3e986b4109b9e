//! Merging another site's copy of a database into the live one (SQL side of
//! `casmanctl sync merge`). The other copy is attached read-only as `remote`.
//! Rows are matched by their natural identity: parts by part number, assembly
//! events by (part, other part, time, status), positions by antenna and grid
//! code, boards by chassis/slot, coordinates by grid code. Rows only the other
//! site has are added; rows both have with different values are conflicts:
//! nothing is written while any is unresolved, unless a side is preferred.

use std::path::Path;

use sqlx::{Connection, SqliteConnection};

use super::{ASSEMBLED_DB, Db, PARTS_DB};
use crate::error::{Error, Result};

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// Keep the local row.
    Local,
    /// Take the other site's row.
    Remote,
}

/// One row both sides have, with different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `parts`, `positions`, `boards` or `coordinates`.
    pub kind: &'static str,
    /// The row's identity (part number, antenna, board, grid code).
    pub key: String,
    /// Local values.
    pub local: String,
    /// The other site's values.
    pub remote: String,
}

/// What a merge found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// Rows added per table.
    pub added: Vec<(&'static str, u64)>,
    /// Conflicts found (resolved if a side was preferred).
    pub conflicts: Vec<Conflict>,
    /// Whether anything was written.
    pub applied: bool,
}

/// Conflict queries: (kind, key, local, remote) per table.
const PARTS_CONFLICTS: &str = "SELECT 'parts', r.part_number,
        COALESCE(l.part_type, '') || ' ' || COALESCE(l.polarization, ''),
        COALESCE(r.part_type, '') || ' ' || COALESCE(r.polarization, '')
    FROM remote.parts r JOIN main.parts l ON l.part_number = r.part_number
    WHERE l.part_type IS NOT r.part_type OR l.polarization IS NOT r.polarization";
const POSITION_CONFLICTS: &str = "SELECT 'positions', r.antenna_number, l.grid_code, r.grid_code
    FROM remote.antenna_positions r JOIN main.antenna_positions l ON l.antenna_number = r.antenna_number
    WHERE l.grid_code IS NOT r.grid_code
    UNION ALL
    SELECT 'positions', r.grid_code, l.antenna_number, r.antenna_number
    FROM remote.antenna_positions r JOIN main.antenna_positions l ON l.grid_code = r.grid_code
    WHERE l.antenna_number IS NOT r.antenna_number";
const BOARD_CONFLICTS: &str = "SELECT 'boards', 'SNAP' || r.chassis || r.slot,
        l.serial_number || ' ' || l.mac_address || ' ' || l.ip_address || ' feng ' || l.feng_id,
        r.serial_number || ' ' || r.mac_address || ' ' || r.ip_address || ' feng ' || r.feng_id
    FROM remote.snap_boards r JOIN main.snap_boards l ON l.chassis = r.chassis AND l.slot = r.slot
    WHERE l.serial_number IS NOT r.serial_number OR l.mac_address IS NOT r.mac_address
       OR l.ip_address IS NOT r.ip_address OR l.feng_id IS NOT r.feng_id";
const COORDINATE_CONFLICTS: &str = "SELECT 'coordinates', r.grid_code,
        l.latitude || ',' || l.longitude || ',' || l.height, r.latitude || ',' || r.longitude || ',' || r.height
    FROM remote.grid_positions r JOIN main.grid_positions l ON l.grid_code = r.grid_code
    WHERE l.latitude IS NOT r.latitude OR l.longitude IS NOT r.longitude OR l.height IS NOT r.height";

/// (table, statement) adding the rows only the other site has.
const PARTS_ADDS: [(&str, &str); 5] = [
    (
        "parts",
        "INSERT INTO main.parts (part_number, part_type, polarization, date_created, date_modified)
         SELECT part_number, part_type, polarization, date_created, date_modified FROM remote.parts r
         WHERE NOT EXISTS (SELECT 1 FROM main.parts l WHERE l.part_number = r.part_number) ORDER BY r.id",
    ),
    (
        "antenna_positions",
        "INSERT INTO main.antenna_positions (antenna_number, array_id, row_offset, east_col, grid_code, assigned_at,
             notes, latitude, longitude, height, coordinate_system)
         SELECT antenna_number, array_id, row_offset, east_col, grid_code, assigned_at, notes, latitude, longitude,
             height, coordinate_system FROM remote.antenna_positions r
         WHERE NOT EXISTS (SELECT 1 FROM main.antenna_positions l
                           WHERE l.antenna_number = r.antenna_number OR l.grid_code = r.grid_code)",
    ),
    (
        "snap_boards",
        "INSERT INTO main.snap_boards (chassis, slot, serial_number, mac_address, ip_address, feng_id, notes,
             date_added, date_modified)
         SELECT chassis, slot, serial_number, mac_address, ip_address, feng_id, notes, date_added, date_modified
         FROM remote.snap_boards r
         WHERE NOT EXISTS (SELECT 1 FROM main.snap_boards l
                           WHERE (l.chassis = r.chassis AND l.slot = r.slot) OR l.serial_number = r.serial_number
                              OR l.mac_address = r.mac_address OR l.ip_address = r.ip_address
                              OR l.feng_id = r.feng_id)",
    ),
    (
        "grid_positions",
        "INSERT INTO main.grid_positions SELECT * FROM remote.grid_positions r
         WHERE NOT EXISTS (SELECT 1 FROM main.grid_positions l WHERE l.grid_code = r.grid_code)",
    ),
    (
        "part_sequences",
        "INSERT INTO main.part_sequences (part_type, polarization, highest)
         SELECT part_type, polarization, highest FROM remote.part_sequences WHERE true
         ON CONFLICT (part_type, polarization) DO UPDATE SET highest = MAX(highest, excluded.highest)",
    ),
];

/// Statements taking the other site's values for conflicting rows.
const PARTS_PREFER_REMOTE: [&str; 4] = [
    "UPDATE main.parts SET part_type = r.part_type, polarization = r.polarization
     FROM remote.parts r WHERE main.parts.part_number = r.part_number",
    "DELETE FROM main.antenna_positions WHERE EXISTS (SELECT 1 FROM remote.antenna_positions r
         WHERE (r.antenna_number = main.antenna_positions.antenna_number AND r.grid_code IS NOT main.antenna_positions.grid_code)
            OR (r.grid_code = main.antenna_positions.grid_code AND r.antenna_number IS NOT main.antenna_positions.antenna_number))",
    "DELETE FROM main.snap_boards WHERE EXISTS (SELECT 1 FROM remote.snap_boards r
         WHERE r.chassis = main.snap_boards.chassis AND r.slot = main.snap_boards.slot
           AND (r.serial_number IS NOT main.snap_boards.serial_number OR r.mac_address IS NOT main.snap_boards.mac_address
                OR r.ip_address IS NOT main.snap_boards.ip_address OR r.feng_id IS NOT main.snap_boards.feng_id))",
    "UPDATE main.grid_positions SET latitude = r.latitude, longitude = r.longitude, height = r.height,
         coordinate_system = r.coordinate_system, notes = r.notes
     FROM remote.grid_positions r WHERE main.grid_positions.grid_code = r.grid_code",
];

const ASSEMBLY_ADD: &str = "INSERT INTO main.assembly (part_number, part_type, polarization, scan_time, connected_to,
        connected_to_type, connected_polarization, connected_scan_time, connection_status)
    SELECT part_number, part_type, polarization, scan_time, connected_to, connected_to_type, connected_polarization,
        connected_scan_time, connection_status FROM remote.assembly r
    WHERE NOT EXISTS (SELECT 1 FROM main.assembly l WHERE l.part_number IS r.part_number
        AND l.connected_to IS r.connected_to AND l.scan_time IS r.scan_time
        AND l.connection_status IS r.connection_status)
    ORDER BY r.scan_time, r.id";

async fn conflicts(
    conn: &mut SqliteConnection,
    sql: &'static str,
    kind: &'static str,
) -> Result<Vec<Conflict>> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as(sql).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(_, key, l, r)| Conflict {
            kind,
            key,
            local: l.unwrap_or_default(),
            remote: r.unwrap_or_default(),
        })
        .collect())
}

/// Merges the database file `other` into `db`. Without `prefer`, any conflict
/// stops the merge before anything is written.
pub async fn merge(db: &Db, other: &Path, prefer: Option<Prefer>) -> Result<Merged> {
    let pool = db.writer().await;
    let mut conn = pool.acquire().await?;
    sqlx::query("ATTACH DATABASE ? AS remote")
        .bind(other.display().to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| Error::internal("attaching the other copy", e))?;
    let result = merge_attached(&mut conn, db.name, prefer).await;
    let _ = sqlx::query("DETACH DATABASE remote").execute(&mut *conn).await;
    result
}

async fn merge_attached(conn: &mut SqliteConnection, name: &str, prefer: Option<Prefer>) -> Result<Merged> {
    let mut merged = Merged::default();
    if name == PARTS_DB {
        for (sql, kind) in [
            (PARTS_CONFLICTS, "parts"),
            (POSITION_CONFLICTS, "positions"),
            (BOARD_CONFLICTS, "boards"),
            (COORDINATE_CONFLICTS, "coordinates"),
        ] {
            merged.conflicts.extend(conflicts(conn, sql, kind).await?);
        }
    } else if name != ASSEMBLED_DB {
        return Err(Error::invalid(format!("database {name:?} cannot be merged")));
    }
    if !merged.conflicts.is_empty() && prefer.is_none() {
        return Ok(merged);
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // The rows copied are another site's changes, not this site's: they
    // get no stamp of this site (see `super::stamping`).
    super::stamping::pause(&mut tx, true).await?;
    if name == PARTS_DB {
        if prefer == Some(Prefer::Remote) {
            for sql in PARTS_PREFER_REMOTE {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
        }
        for (table, sql) in PARTS_ADDS {
            let n = sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
            merged.added.push((table, n));
        }
    } else {
        let n = sqlx::query(ASSEMBLY_ADD).execute(&mut *tx).await?.rows_affected();
        merged.added.push(("assembly", n));
        // The triggers kept the state while the rows went in; it is rebuilt
        // from the merged log by the canonical rule all the same, in the same
        // transaction.
        super::assembly::rebuild(&mut tx).await?;
    }
    super::stamping::pause(&mut tx, false).await?;
    tx.commit().await?;
    merged.applied = true;
    Ok(merged)
}
