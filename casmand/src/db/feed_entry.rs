//! One change as `casmanctl changes` and the change feed tell it: what
//! happened ([`Kind`]), to what, when, at which site, by whom, read from a
//! row of the change logs ([`Raw`]).

use rusqlite::Row;

use super::feed::Cursor;

/// Where a change was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A scan event (a row of `assembly`).
    Event,
    /// A change of the change log.
    Log,
    /// A conflict opened or resolved (`conflict_log`).
    Conflict,
    /// A row from before the upgrade, dated by its own times.
    Row,
}

/// A change as read, in the columns the queries of `super::feed` and
/// `super::change_history` give: position, source, site, seq, hlc, table,
/// op, row (JSON), time (stored form), conflict state, kind, subject, other,
/// detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// Its feed position, when read from the feed.
    pub pos: Option<i64>,
    /// What it is.
    pub source: Source,
    /// The site that made it, when recorded.
    pub site: Option<String>,
    /// That site's sequence number (0 when none).
    pub seq: i64,
    /// Its clock (0 when none).
    pub hlc: i64,
    /// The table.
    pub tbl: String,
    /// `insert`, `update`, `delete`, `clear`.
    pub op: String,
    /// The row's values as JSON (absent for a clear).
    pub row: Option<String>,
    /// A stored time (events: scan time; conflicts: when; old rows: their date).
    pub time: Option<String>,
    /// A conflict: (state, kind, subject, other, detail).
    pub conflict: Option<[String; 5]>,
}

fn source_of(s: &str) -> Source {
    match s {
        "event" => Source::Event,
        "conflict" => Source::Conflict,
        "row" => Source::Row,
        _ => Source::Log,
    }
}

impl Raw {
    /// From a rusqlite row in the columns above.
    pub fn from_row(r: &Row<'_>) -> rusqlite::Result<Raw> {
        let text = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
        let conflict = match text(9)? {
            Some(state) => Some([
                state,
                text(10)?.unwrap_or_default(),
                text(11)?.unwrap_or_default(),
                text(12)?.unwrap_or_default(),
                text(13)?.unwrap_or_default(),
            ]),
            None => None,
        };
        Ok(Raw {
            pos: r.get(0)?,
            source: source_of(&text(1)?.unwrap_or_default()),
            site: text(2)?,
            seq: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            hlc: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            tbl: text(5)?.unwrap_or_default(),
            op: text(6)?.unwrap_or_default(),
            row: text(7)?,
            time: text(8)?,
            conflict,
        })
    }

    /// From an sqlx row in the columns above, at feed position `pos`.
    pub fn from_sqlx(r: &sqlx::sqlite::SqliteRow, pos: Option<i64>) -> Result<Raw, sqlx::Error> {
        use sqlx::Row as _;
        let text = |i: usize| -> Result<Option<String>, sqlx::Error> { r.try_get(i) };
        let conflict = match text(9)? {
            Some(state) => Some([
                state,
                text(10)?.unwrap_or_default(),
                text(11)?.unwrap_or_default(),
                text(12)?.unwrap_or_default(),
                text(13)?.unwrap_or_default(),
            ]),
            None => None,
        };
        Ok(Raw {
            pos,
            source: source_of(&text(1)?.unwrap_or_default()),
            site: text(2)?,
            seq: r.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
            hlc: r.try_get::<Option<i64>, _>(4)?.unwrap_or(0),
            tbl: text(5)?.unwrap_or_default(),
            op: text(6)?.unwrap_or_default(),
            row: text(7)?,
            time: text(8)?,
            conflict,
        })
    }

    /// When it happened, in milliseconds since 1970: the clock of a scan
    /// event or a change of the log (the order of changes across both
    /// files), else its stored time (0 when unknown).
    pub fn millis(&self) -> i64 {
        match (self.source, &self.time) {
            (Source::Log | Source::Event, _) if self.hlc > 0 => self.hlc >> 16,
            (_, Some(t)) => t.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).unwrap_or(0),
            _ => 0,
        }
    }
}

/// What a change did. The names (`as_str`) are the stable `kind` of the
/// API, `--json` and `--csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A part was created (`parts add`, or received).
    PartCreated,
    /// A part's row was rewritten.
    PartChanged,
    /// A part's row was deleted.
    PartRemoved,
    /// A connect scan.
    Connected,
    /// A disconnect scan.
    Disconnected,
    /// An antenna was given a grid position.
    PositionAssigned,
    /// An antenna moved to another position (its old row deleted and a new
    /// one written in one request).
    PositionMoved,
    /// An antenna's position was changed in place (coordinates copied).
    PositionChanged,
    /// An antenna's position was removed.
    PositionRemoved,
    /// A SNAP board was added.
    BoardAdded,
    /// A SNAP board's row was changed.
    BoardChanged,
    /// A SNAP board was removed.
    BoardRemoved,
    /// Grid coordinates were loaded (one entry per load read together).
    CoordinatesLoaded,
    /// A grid coordinate was removed.
    CoordinatesRemoved,
    /// A whole table was cleared.
    Cleared,
    /// A conflict between sites was found.
    ConflictOpened,
    /// A conflict between sites stopped standing.
    ConflictResolved,
    /// A change of a kind this version does not know.
    Other,
}

impl Kind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PartCreated => "part_created",
            Kind::PartChanged => "part_changed",
            Kind::PartRemoved => "part_removed",
            Kind::Connected => "connected",
            Kind::Disconnected => "disconnected",
            Kind::PositionAssigned => "position_assigned",
            Kind::PositionMoved => "position_moved",
            Kind::PositionChanged => "position_changed",
            Kind::PositionRemoved => "position_removed",
            Kind::BoardAdded => "board_added",
            Kind::BoardChanged => "board_changed",
            Kind::BoardRemoved => "board_removed",
            Kind::CoordinatesLoaded => "coordinates_loaded",
            Kind::CoordinatesRemoved => "coordinates_removed",
            Kind::Cleared => "cleared",
            Kind::ConflictOpened => "conflict_opened",
            Kind::ConflictResolved => "conflict_resolved",
            Kind::Other => "other",
        }
    }
}

/// One change, told.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEntry {
    /// In the live feed: the cursor just after it (its resume id).
    pub id: Option<Cursor>,
    /// The database it changed.
    pub database: &'static str,
    /// What happened.
    pub kind: Kind,
    /// When, RFC 3339 UTC (milliseconds when the change's clock gives them).
    pub time: String,
    /// The same in milliseconds since 1970 (0 when unknown).
    pub millis: i64,
    /// The site that made it (`None`: not recorded, as for changes from
    /// before the upgrade and writes by other programs).
    pub site: Option<String>,
    /// Who, from this site's audit log (`None`: unknown).
    pub operator: Option<String>,
    /// The part, antenna, board serial, grid code or table it is about.
    pub subject: String,
    /// The other end of a scan, the grid code of a position, the other row
    /// of a conflict, the old grid code of a move.
    pub other: String,
    /// In words.
    pub detail: String,
    /// The table and operation as recorded.
    pub table: String,
    /// `insert`, `update`, `delete`, `clear`, or `opened`/`resolved`.
    pub op: String,
    /// The row's values (JSON), when recorded.
    pub row: Option<String>,
    /// The change's clock and its site's sequence number (0 when none).
    pub hlc: i64,
    /// See `hlc`.
    pub seq: i64,
    /// Changes this entry stands for (a coordinate load: every row loaded).
    pub count: u32,
}

fn field(row: &Option<serde_json::Value>, name: &str) -> String {
    match row.as_ref().and_then(|r| r.get(name)) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// `ms` as RFC 3339 with milliseconds.
fn rfc3339_millis(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

impl ChangeEntry {
    /// Tells the change `raw` read from `database`.
    pub fn from_raw(database: &'static str, raw: Raw) -> ChangeEntry {
        let millis = raw.millis();
        let time = match (&raw.time, raw.source) {
            (Some(t), Source::Event | Source::Conflict | Source::Row) => t.clone(),
            _ if millis > 0 => rfc3339_millis(millis),
            _ => String::new(),
        };
        let values: Option<serde_json::Value> = raw.row.as_deref().and_then(|r| serde_json::from_str(r).ok());
        let f = |name: &str| field(&values, name);
        let (kind, subject, other, detail) = match (raw.source, raw.tbl.as_str(), raw.op.as_str()) {
            (Source::Conflict, _, _) => {
                let [state, kind, subject, other, detail] = raw.conflict.clone().unwrap_or_default();
                let k = if state == "resolved" { Kind::ConflictResolved } else { Kind::ConflictOpened };
                let detail = if detail.is_empty() { format!("{kind} conflict {state}") } else { detail };
                (k, subject, other, detail)
            }
            (_, t, "clear") => (Kind::Cleared, t.to_owned(), String::new(), format!("{t} cleared")),
            (_, "assembly", _) => {
                let (a, b) = (f("part_number"), f("connected_to"));
                if f("connection_status") == "disconnected" {
                    let d = format!("{a} disconnected from {b}");
                    (Kind::Disconnected, a, b, d)
                } else {
                    let d = format!("{a} connected to {b}");
                    (Kind::Connected, a, b, d)
                }
            }
            (_, "parts", op) => {
                let p = f("part_number");
                let (k, verb) = match op {
                    "insert" => (Kind::PartCreated, "created"),
                    "delete" => (Kind::PartRemoved, "removed"),
                    _ => (Kind::PartChanged, "changed"),
                };
                let d = format!("{p} {verb}");
                (k, p, f("part_type"), d)
            }
            (_, "antenna_positions", op) => {
                let (a, g) = (f("antenna_number"), f("grid_code"));
                let (k, d) = match op {
                    "insert" => (Kind::PositionAssigned, format!("{a} assigned to {g}")),
                    "delete" => (Kind::PositionRemoved, format!("{a} removed from {g}")),
                    _ => (Kind::PositionChanged, format!("{a} at {g} changed")),
                };
                (k, a, g, d)
            }
            (_, "snap_boards", op) => {
                let (s, place) = (f("serial_number"), format!("SNAP{}{}", f("chassis"), f("slot")));
                let (k, verb) = match op {
                    "insert" => (Kind::BoardAdded, "added at"),
                    "delete" => (Kind::BoardRemoved, "removed from"),
                    _ => (Kind::BoardChanged, "changed at"),
                };
                let d = format!("board {s} {verb} {place}");
                (k, s, place, d)
            }
            (_, "grid_positions", op) => {
                let g = f("grid_code");
                if op == "delete" {
                    let d = format!("coordinates of {g} removed");
                    (Kind::CoordinatesRemoved, g, String::new(), d)
                } else {
                    let d = format!("coordinates of {g} loaded");
                    (Kind::CoordinatesLoaded, g, String::new(), d)
                }
            }
            (_, t, op) => (Kind::Other, t.to_owned(), String::new(), format!("{op} in {t}")),
        };
        let op = match &raw.conflict {
            Some([state, ..]) => state.clone(),
            None => raw.op.clone(),
        };
        let table = if raw.source == Source::Conflict { "conflict_log".to_owned() } else { raw.tbl.clone() };
        ChangeEntry {
            id: None,
            database,
            kind,
            time,
            millis,
            site: raw.site,
            operator: None,
            subject,
            other,
            detail,
            table,
            op,
            row: raw.row,
            hlc: raw.hlc,
            seq: raw.seq,
            count: 1,
        }
    }

    /// Whether this entry is about part `part` (a part number, an antenna
    /// or board number whose polarizations it names, a grid code).
    pub fn concerns(&self, part: &str) -> bool {
        let names = |key: &str| {
            !key.is_empty()
                && (key == part
                    || part.strip_prefix(key).is_some_and(|r| r == "P1" || r == "P2")
                    || key.strip_prefix(part).is_some_and(|r| r == "P1" || r == "P2"))
        };
        names(&self.subject) || self.other.split(", ").any(names)
    }
}

/// How far ahead the insert of a move is looked for after its delete.
const MOVE_WINDOW: usize = 8;

/// Tells `entries` (in order) as people read them: an antenna's position
/// deleted and written again by the same site in one request is one move;
/// a board's row deleted and written again is one change; consecutive
/// coordinates loaded by one site in one request are one load (with the
/// antenna positions the load updated).
pub fn collapse(entries: Vec<ChangeEntry>) -> Vec<ChangeEntry> {
    let mut slots: Vec<Option<ChangeEntry>> = entries.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        let Some(e) = slots[i].clone() else { continue };
        let paired = match e.kind {
            Kind::PositionRemoved => Kind::PositionAssigned,
            Kind::BoardRemoved => Kind::BoardAdded,
            _ => continue,
        };
        let found = (i + 1..slots.len().min(i + 1 + MOVE_WINDOW)).find(|&j| {
            slots[j].as_ref().is_some_and(|n| {
                n.kind == paired
                    && n.subject == e.subject
                    && n.site == e.site
                    && n.database == e.database
                    && n.seq > e.seq
                    && n.seq <= e.seq + MOVE_WINDOW as i64
            })
        });
        if let Some(j) = found
            && let Some(n) = slots[j].as_mut()
        {
            if e.kind == Kind::PositionRemoved {
                if n.other != e.other {
                    n.kind = Kind::PositionMoved;
                    n.detail = format!("{} moved from {} to {}", n.subject, e.other, n.other);
                    n.other = format!("{}, {}", n.other, e.other);
                } else {
                    n.kind = Kind::PositionChanged;
                    n.detail = format!("{} at {} assigned again", n.subject, n.other);
                }
            } else {
                n.kind = Kind::BoardChanged;
                n.detail = format!("board {} changed at {}", n.subject, n.other);
            }
            n.op = "update".into();
            slots[i] = None;
        }
    }
    let mut out: Vec<ChangeEntry> = Vec::with_capacity(slots.len());
    for e in slots.into_iter().flatten() {
        let joins = |last: &ChangeEntry| {
            last.kind == Kind::CoordinatesLoaded
                && matches!(e.kind, Kind::CoordinatesLoaded | Kind::PositionChanged)
                && e.site.is_some()
                && e.site == last.site
                && e.seq == last.seq + 1
        };
        match out.last_mut() {
            Some(last) if joins(last) => {
                if e.kind == Kind::CoordinatesLoaded {
                    last.count += 1;
                    last.detail = format!("coordinates of {} grid positions loaded", last.count);
                }
                last.seq = e.seq;
                last.id = e.id.or(last.id);
                last.row = None;
            }
            _ => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ASSEMBLED_DB, PARTS_DB};

    fn log(seq: i64, tbl: &str, op: &str, row: serde_json::Value) -> ChangeEntry {
        ChangeEntry::from_raw(
            PARTS_DB,
            Raw {
                pos: Some(seq),
                source: Source::Log,
                site: Some("lab".into()),
                seq,
                hlc: (1_700_000_000_000 + seq) << 16,
                tbl: tbl.into(),
                op: op.into(),
                row: Some(row.to_string()),
                time: None,
                conflict: None,
            },
        )
    }

    #[test]
    fn changes_are_told_by_kind() {
        let p = log(
            1,
            "parts",
            "insert",
            serde_json::json!({"part_number": "ANT00001P1", "part_type": "ANTENNA"}),
        );
        assert_eq!(
            (p.kind, p.subject.as_str(), p.time.as_str()),
            (Kind::PartCreated, "ANT00001P1", "2023-11-14T22:13:20.001Z")
        );
        let e = ChangeEntry::from_raw(
            ASSEMBLED_DB,
            Raw {
                pos: None,
                source: Source::Event,
                site: None,
                seq: 0,
                hlc: 0,
                tbl: "assembly".into(),
                op: "insert".into(),
                row: Some(
                    serde_json::json!({"part_number": "ANT00001P1", "connected_to": "LNA00001P1",
                                       "connection_status": "disconnected"})
                    .to_string(),
                ),
                time: Some("2025-01-15T10:30:00Z".into()),
                conflict: None,
            },
        );
        assert_eq!(
            (e.kind, e.other.as_str(), e.millis),
            (Kind::Disconnected, "LNA00001P1", 1_736_937_000_000)
        );
        assert!(e.concerns("LNA00001P1") && e.concerns("ANT00001P1") && !e.concerns("ANT00001P2"));
    }

    #[test]
    fn a_delete_and_insert_of_one_request_is_a_move_and_a_load_is_one_entry() {
        let pos = |a: &str, g: &str| serde_json::json!({"antenna_number": a, "grid_code": g});
        let grid = |g: &str| serde_json::json!({"grid_code": g});
        let entries = vec![
            log(1, "antenna_positions", "delete", pos("ANT00001", "CN001E01")),
            log(2, "antenna_positions", "delete", pos("ANT00002", "CN002E01")),
            log(3, "antenna_positions", "insert", pos("ANT00001", "CN002E01")),
            log(4, "grid_positions", "insert", grid("CN001E01")),
            log(5, "grid_positions", "update", grid("CN002E01")),
            log(6, "antenna_positions", "update", pos("ANT00001", "CN002E01")),
            log(9, "antenna_positions", "delete", pos("ANT00001", "CN002E01")),
        ];
        let out = collapse(entries);
        let kinds: Vec<(Kind, &str)> = out.iter().map(|e| (e.kind, e.subject.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::PositionRemoved, "ANT00002"),
                (Kind::PositionMoved, "ANT00001"),
                (Kind::CoordinatesLoaded, "CN001E01"),
                (Kind::PositionRemoved, "ANT00001"),
            ]
        );
        assert_eq!(out[1].detail, "ANT00001 moved from CN001E01 to CN002E01");
        assert_eq!((out[2].count, out[2].seq, out[2].id), (2, 6, None));
    }
}
