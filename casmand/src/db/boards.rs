//! SQL for the SNAP board table (`snap_boards` in parts.db): lookups and the
//! all-or-nothing CSV upsert.

use std::net::IpAddr;

use sqlx::FromRow;

use super::{
    Db,
    as_of::{self, At},
};
use crate::{
    error::{Error, Result},
    inventory::{CsvError, CsvErrors, Numbered, SnapBoard, SnapBoardId},
    timestamp,
};

/// One row of `snap_boards`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BoardRow {
    /// Row id.
    pub id: i64,
    /// 1-4.
    pub chassis: i64,
    /// `A`-`K`.
    pub slot: String,
    /// Serial number (text).
    pub serial_number: String,
    /// MAC address.
    pub mac_address: String,
    /// IP address.
    pub ip_address: String,
    /// 0-43.
    pub feng_id: i64,
    /// Free text.
    pub notes: Option<String>,
    /// UTC ISO.
    pub date_added: String,
    /// UTC ISO, when changed.
    pub date_modified: Option<String>,
}

impl BoardRow {
    /// The board id (`SNAP1A`), when chassis and slot are valid.
    pub fn board_id(&self) -> Option<SnapBoardId> {
        let chassis = u8::try_from(self.chassis).ok()?;
        let mut slot = self.slot.trim().chars();
        match (slot.next(), slot.next()) {
            (Some(s), None) => SnapBoardId::new(chassis, s).ok(),
            _ => None,
        }
    }

    fn board_label(&self) -> String {
        self.board_id()
            .map_or_else(|| format!("chassis {} slot {}", self.chassis, self.slot), |b| b.to_string())
    }

    /// Whether the row holds exactly what `b` would store.
    fn same_as(&self, b: &SnapBoard) -> bool {
        self.serial_number == b.serial_number
            && self.mac_address == b.mac_address
            && self.ip_address == b.ip_address.to_string()
            && self.feng_id == i64::from(b.feng_id)
            && self.notes == b.notes
    }
}

const COLUMNS: &str = "id, chassis, CAST(slot AS TEXT) AS slot, CAST(serial_number AS TEXT) AS serial_number, \
                       mac_address, ip_address, feng_id, notes, date_added, date_modified";

/// Every board (at `at` when given, see [`super::as_of`]), by chassis then
/// slot.
pub async fn list(db: &Db, at: Option<&At>) -> Result<Vec<BoardRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {} ORDER BY chassis, slot", as_of::boards_source(at));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&*db.reader().await).await?)
}

/// The board in `board`'s chassis and slot, if configured (at `at` when
/// given).
pub async fn get(db: &Db, board: SnapBoardId, at: Option<&At>) -> Result<Option<BoardRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {} WHERE chassis = ? AND slot = ?", as_of::boards_source(at));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(board.chassis()))
        .bind(board.slot().to_string())
        .fetch_optional(&*db.reader().await)
        .await?)
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardsLoaded {
    /// Boards inserted.
    pub inserted: Vec<SnapBoardId>,
    /// Boards changed (same id and `date_added`, new `date_modified`).
    pub updated: Vec<SnapBoardId>,
    /// Boards identical to the table.
    pub unchanged: Vec<SnapBoardId>,
}

/// Values of `b` that a board kept in the table (one not in the file) holds too.
fn conflicts(line: u64, b: &SnapBoard, kept: &[&BoardRow]) -> Vec<CsvError> {
    let mut out = Vec::new();
    let ip = b.ip_address.to_string();
    for k in kept {
        let same_ip =
            k.ip_address.trim().parse::<IpAddr>().map_or(k.ip_address.trim() == ip, |x| x == b.ip_address);
        let clashes = [
            ("sn", k.serial_number.trim() == b.serial_number, b.serial_number.clone()),
            ("mac", k.mac_address.trim().eq_ignore_ascii_case(&b.mac_address), b.mac_address.clone()),
            ("ip", same_ip, ip.clone()),
            ("feng_id", k.feng_id == i64::from(b.feng_id), b.feng_id.to_string()),
        ];
        for (field, clash, value) in clashes {
            if clash {
                out.push(CsvError {
                    line,
                    field: field.into(),
                    value,
                    rule: format!(
                        "must be unique, but board {} (in the table and not in this file) has it",
                        k.board_label()
                    ),
                });
            }
        }
    }
    out
}

/// Applies `rows` (a fully parsed file) as an upsert keyed by (chassis, slot)
/// in one transaction. Boards absent from the file are kept, and every value
/// is first checked against them: any clash fails the whole load, naming its
/// line, and nothing changes. Changed boards are deleted and re-inserted with
/// their id and `date_added` (so boards may swap feng_ids, IPs, serials).
pub async fn load(db: &Db, rows: &[Numbered<SnapBoard>]) -> Result<BoardsLoaded> {
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let sql = format!("SELECT {COLUMNS} FROM snap_boards ORDER BY chassis, slot");
    let existing: Vec<BoardRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
    let in_file = |r: &BoardRow| r.board_id().is_some_and(|id| rows.iter().any(|n| n.row.board == id));
    let kept: Vec<&BoardRow> = existing.iter().filter(|r| !in_file(r)).collect();
    let problems: Vec<CsvError> = rows.iter().flat_map(|n| conflicts(n.line, &n.row, &kept)).collect();
    if !problems.is_empty() {
        return Err(Error::from(CsvErrors(problems)));
    }
    let mut out = BoardsLoaded::default();
    let mut changed: Vec<(&BoardRow, &SnapBoard)> = Vec::new();
    let mut new: Vec<&SnapBoard> = Vec::new();
    for n in rows {
        let b = &n.row;
        match existing.iter().find(|r| r.board_id() == Some(b.board)) {
            Some(r) if r.same_as(b) => out.unchanged.push(b.board),
            Some(r) => changed.push((r, b)),
            None => new.push(b),
        }
    }
    // Delete every changed row before re-inserting any, so that boards may
    // exchange unique values within one load.
    for (r, _) in &changed {
        sqlx::query("DELETE FROM snap_boards WHERE id = ?").bind(r.id).execute(&mut *tx).await?;
    }
    let now = timestamp::now();
    for (r, b) in &changed {
        insert(&mut tx, Some(r.id), b, &r.date_added, Some(&now)).await?;
        out.updated.push(b.board);
    }
    for b in new {
        insert(&mut tx, None, b, &now, None).await?;
        out.inserted.push(b.board);
    }
    tx.commit().await?;
    Ok(out)
}

async fn insert(
    conn: &mut sqlx::SqliteConnection,
    id: Option<i64>,
    b: &SnapBoard,
    date_added: &str,
    date_modified: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO snap_boards (id, chassis, slot, serial_number, mac_address, ip_address, feng_id, notes,
         date_added, date_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(i64::from(b.board.chassis()))
    .bind(b.board.slot().to_string())
    .bind(&b.serial_number)
    .bind(&b.mac_address)
    .bind(b.ip_address.to_string())
    .bind(i64::from(b.feng_id))
    .bind(&b.notes)
    .bind(date_added)
    .bind(date_modified)
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() || d.is_check_violation() => {
            Error::invalid(format!("SNAP board {}: {}; nothing was loaded", b.board, d.message()))
        }
        _ => e.into(),
    })?;
    Ok(())
}
