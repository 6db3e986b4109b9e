//! SQL for antenna grid positions (`antenna_positions`) and surveyed
//! coordinates (`grid_positions`) in parts.db.

use sqlx::{FromRow, SqliteConnection};

use super::{
    Db,
    as_of::{self, At},
};
use crate::{
    error::{Error, Result},
    inventory::{GridCode, GridPosition},
    timestamp,
};

/// One row of `antenna_positions`, as stored.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct PositionRow {
    /// Row id.
    pub id: i64,
    /// Base antenna number, `ANT00001`.
    pub antenna_number: String,
    /// Array letter.
    pub array_id: String,
    /// Signed row offset (north positive).
    pub row_offset: i64,
    /// 1-based east column.
    pub east_col: i64,
    /// Canonical grid code.
    pub grid_code: String,
    /// UTC ISO.
    pub assigned_at: String,
    /// Free text.
    pub notes: Option<String>,
    /// Degrees.
    pub latitude: Option<f64>,
    /// Degrees.
    pub longitude: Option<f64>,
    /// Metres.
    pub height: Option<f64>,
    /// e.g. `WGS84`.
    pub coordinate_system: Option<String>,
}

/// One row of `grid_positions`, as stored.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct CoordinateRow {
    /// Grid code as loaded.
    pub grid_code: String,
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Metres.
    pub height: f64,
    /// e.g. `WGS84`.
    pub coordinate_system: Option<String>,
    /// Free text.
    pub notes: Option<String>,
}

const COLUMNS: &str = "id, antenna_number, array_id, row_offset, east_col, grid_code, assigned_at, notes, \
                       latitude, longitude, height, coordinate_system";

async fn by_antenna(
    conn: &mut SqliteConnection,
    antenna: &str,
    at: Option<&At>,
) -> Result<Option<PositionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {} WHERE antenna_number = ?", as_of::positions_source(at));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(antenna).fetch_optional(conn).await?)
}

async fn by_grid(conn: &mut SqliteConnection, code: &str, at: Option<&At>) -> Result<Option<PositionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {} WHERE grid_code = ?", as_of::positions_source(at));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(code).fetch_optional(conn).await?)
}

/// The position of base antenna `antenna` (`ANT00001`), if it has one (at
/// `at` when given).
pub async fn get_by_antenna(db: &Db, antenna: &str, at: Option<&At>) -> Result<Option<PositionRow>> {
    let mut conn = db.reader().await.acquire().await?;
    by_antenna(&mut conn, antenna, at).await
}

/// The position at `code`, if occupied (at `at` when given).
pub async fn get_by_grid(db: &Db, code: GridCode, at: Option<&At>) -> Result<Option<PositionRow>> {
    let mut conn = db.reader().await.acquire().await?;
    by_grid(&mut conn, &code.to_string(), at).await
}

/// Every position (of array `array_id` when given; at `at` when given, see
/// [`super::as_of`]), ordered north to south (`row_offset DESC`), west to
/// east (`east_col ASC`), then by array.
pub async fn list(db: &Db, array_id: Option<char>, at: Option<&At>) -> Result<Vec<PositionRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM {}", as_of::positions_source(at));
    if array_id.is_some() {
        sql.push_str(" WHERE array_id = ?");
    }
    sql.push_str(" ORDER BY row_offset DESC, east_col ASC, array_id ASC");
    let q = sqlx::query_as::<_, PositionRow>(sqlx::AssertSqlSafe(sql));
    let q = match array_id {
        Some(a) => q.bind(a.to_string()),
        None => q,
    };
    Ok(q.fetch_all(&*db.reader().await).await?)
}

/// What an assignment did.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// The new row.
    pub row: PositionRow,
    /// The antenna's former grid code, when it moved.
    pub previous: Option<String>,
    /// The antenna evicted from the position, if any.
    pub evicted: Option<String>,
}

/// Assigns base antenna `antenna` to `code` in one transaction. The antenna
/// must exist in `parts` as `<base>P1` or `<base>P2`. Without `force`, an
/// antenna that has a position or a position that is occupied is refused;
/// with it, both old rows are deleted first. Coordinates loaded for `code`
/// are copied onto the new row.
pub async fn assign(
    db: &Db,
    antenna: &str,
    code: GridCode,
    notes: Option<&str>,
    force: bool,
) -> Result<Assigned> {
    let grid = code.to_string();
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let known: Option<String> = sqlx::query_scalar(
        "SELECT part_number FROM parts WHERE part_number IN (?, ?) ORDER BY part_number LIMIT 1",
    )
    .bind(format!("{antenna}P1"))
    .bind(format!("{antenna}P2"))
    .fetch_optional(&mut *tx)
    .await?;
    if known.is_none() {
        return Err(Error::NotFound(format!(
            "antenna {antenna}: neither {antenna}P1 nor {antenna}P2 is in parts.db; add the antenna first"
        )));
    }
    let current = by_antenna(&mut tx, antenna, None).await?;
    let occupant = by_grid(&mut tx, &grid, None).await?;
    if !force {
        if let Some(c) = &current {
            return Err(Error::refused(format!(
                "antenna {antenna} is already assigned to {}; remove it first or use --force to move it",
                c.grid_code
            )));
        }
        if let Some(o) = &occupant {
            return Err(Error::refused(format!(
                "position {grid} is already occupied by {}; use --force to evict it",
                o.antenna_number
            )));
        }
    }
    sqlx::query("DELETE FROM antenna_positions WHERE antenna_number = ? OR grid_code = ?")
        .bind(antenna)
        .bind(&grid)
        .execute(&mut *tx)
        .await?;
    let coordinate = coordinate_of(&mut tx, &grid, None).await?;
    let now = timestamp::now();
    let sql = format!(
        "INSERT INTO antenna_positions (antenna_number, array_id, row_offset, east_col, grid_code, assigned_at,
         notes, latitude, longitude, height, coordinate_system) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING {COLUMNS}"
    );
    let row: PositionRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(antenna)
        .bind(code.array_id().to_string())
        .bind(i64::from(code.row_offset()))
        .bind(i64::from(code.east_col()))
        .bind(&grid)
        .bind(&now)
        .bind(notes)
        .bind(coordinate.as_ref().map(|c| c.latitude))
        .bind(coordinate.as_ref().map(|c| c.longitude))
        .bind(coordinate.as_ref().map(|c| c.height))
        .bind(coordinate.as_ref().and_then(|c| c.coordinate_system.clone()))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Assigned {
        row,
        previous: current.map(|c| c.grid_code).filter(|g| *g != grid),
        evicted: occupant.map(|o| o.antenna_number).filter(|a| a != antenna),
    })
}

/// Removes the position of base antenna `antenna`; returns the removed row.
pub async fn remove(db: &Db, antenna: &str) -> Result<Option<PositionRow>> {
    let sql = format!("DELETE FROM antenna_positions WHERE antenna_number = ? RETURNING {COLUMNS}");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(antenna).fetch_optional(&*db.writer().await).await?)
}

async fn coordinate_of(
    conn: &mut SqliteConnection,
    grid: &str,
    at: Option<&At>,
) -> Result<Option<CoordinateRow>> {
    let sql = format!(
        "SELECT grid_code, latitude, longitude, height, coordinate_system, notes FROM {}
         WHERE upper(trim(grid_code)) = ?",
        as_of::coordinates_source(at)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(grid).fetch_optional(conn).await?)
}

/// The surveyed coordinates of `code`, if loaded.
pub async fn coordinate(db: &Db, code: GridCode, at: Option<&At>) -> Result<Option<CoordinateRow>> {
    let mut conn = db.reader().await.acquire().await?;
    coordinate_of(&mut conn, &code.to_string(), at).await
}

/// Every surveyed coordinate (at `at` when given), by grid code.
pub async fn coordinates(db: &Db, at: Option<&At>) -> Result<Vec<CoordinateRow>> {
    let sql = format!(
        "SELECT grid_code, latitude, longitude, height, coordinate_system, notes FROM {} ORDER BY grid_code",
        as_of::coordinates_source(at)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&*db.reader().await).await?)
}

/// What loading coordinates did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatesLoaded {
    /// Rows inserted or replaced in `grid_positions`.
    pub loaded: u64,
    /// `antenna_positions` rows whose coordinates were set.
    pub positions_updated: u64,
}

/// Upserts `rows` into `grid_positions` and copies each row's coordinates
/// onto the `antenna_positions` row of the same grid code, in one transaction.
pub async fn load_coordinates(db: &Db, rows: &[GridPosition]) -> Result<CoordinatesLoaded> {
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = CoordinatesLoaded { loaded: 0, positions_updated: 0 };
    for r in rows {
        let code = r.grid_code.to_string();
        out.loaded += sqlx::query(
            "INSERT INTO grid_positions (grid_code, latitude, longitude, height, coordinate_system, notes)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (grid_code) DO UPDATE SET latitude = excluded.latitude,
               longitude = excluded.longitude, height = excluded.height,
               coordinate_system = excluded.coordinate_system, notes = excluded.notes",
        )
        .bind(&code)
        .bind(r.latitude)
        .bind(r.longitude)
        .bind(r.height)
        .bind(&r.coordinate_system)
        .bind(&r.notes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        out.positions_updated += sqlx::query(
            "UPDATE antenna_positions SET latitude = ?, longitude = ?, height = ?, coordinate_system = ?
             WHERE grid_code = ?",
        )
        .bind(r.latitude)
        .bind(r.longitude)
        .bind(r.height)
        .bind(&r.coordinate_system)
        .bind(&code)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(out)
}
