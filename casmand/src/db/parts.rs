//! SQL for the `parts` table: generation, lookups, counts.

use sqlx::FromRow;

use super::Db;
use crate::{
    error::{Error, Result},
    inventory::{PartNumber, PartType, Polarization, next_numbers},
    timestamp,
};

/// One row of `parts`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PartRow {
    /// Row id.
    pub id: i64,
    /// Part number (current or historic format).
    pub part_number: String,
    /// `ANTENNA`, `LNA`, ...
    pub part_type: Option<String>,
    /// `P1`, `P2`, or NULL.
    pub polarization: Option<String>,
    /// UTC ISO.
    pub date_created: Option<String>,
    /// UTC ISO.
    pub date_modified: Option<String>,
}

/// Filters of a part listing; all optional.
#[derive(Debug, Clone, Default)]
pub struct PartFilter {
    /// Only this type.
    pub part_type: Option<PartType>,
    /// Only this polarization.
    pub polarization: Option<Polarization>,
    /// Only parts created at or after this stored-form timestamp.
    pub since: Option<String>,
    /// Part numbers matching this pattern: `*`/`?` wildcards, else a substring (case-insensitive).
    pub pattern: Option<String>,
    /// At most this many (newest first); 0 = no limit.
    pub limit: u32,
}

/// The highest number of (`part_type`, `pol`) within `lo..=hi` that a row of
/// parts.db holds (whoever wrote it).
pub async fn highest_row(
    db: &Db,
    part_type: PartType,
    pol: Polarization,
    lo: u32,
    hi: u32,
) -> Result<Option<u32>> {
    let pattern = format!("{}[0-9][0-9][0-9][0-9][0-9]{}", part_type.abbreviation(), pol.as_str());
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(n) FROM (SELECT CAST(substr(part_number, 4, 5) AS INTEGER) AS n FROM parts
         WHERE part_number GLOB ?) WHERE n BETWEEN ? AND ?",
    )
    .bind(&pattern)
    .bind(i64::from(lo))
    .bind(i64::from(hi))
    .fetch_one(&*db.reader().await)
    .await?;
    Ok(n.map(|n| n.clamp(0, 99_999) as u32))
}

/// Creates the next `count` parts of (`part_type`, `pol`) in one transaction:
/// numbers one above the highest ever issued, never reused, never past 99999.
/// With several sites, each generates within its own `range` of numbers
/// (configuration `part_number_range`), so sites never issue the same number,
/// even offline. The numbers known as issued are kept in `state` (see
/// [`super::issued`]), which no restore, pull, merge or clear of parts.db
/// rolls back; they are recorded there before the parts are committed.
pub async fn generate(
    db: &Db,
    state: &Db,
    part_type: PartType,
    pol: Polarization,
    count: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Vec<PartRow>> {
    if !part_type.generatable() {
        return Err(Error::invalid(format!(
            "part type {}: SNAP ports are not generated; they are named by chassis, slot and port (e.g. SNAP1A05)",
            part_type.name()
        )));
    }
    // IMMEDIATE takes the write lock at once, so two generators (or an outside
    // writer) cannot both read the same highest number.
    let mut tx = db.writer().await.begin_with("BEGIN IMMEDIATE").await?;
    let pattern = format!("{}[0-9][0-9][0-9][0-9][0-9]{}", part_type.abbreviation(), pol.as_str());
    let (lo, hi) = (i64::from(*range.start()), i64::from(*range.end()));
    let highest_row: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(n) FROM (SELECT CAST(substr(part_number, 4, 5) AS INTEGER) AS n FROM parts
         WHERE part_number GLOB ?) WHERE n BETWEEN ? AND ?",
    )
    .bind(&pattern)
    .bind(lo)
    .bind(hi)
    .fetch_one(&mut *tx)
    .await?;
    let issued: Option<i64> =
        sqlx::query_scalar("SELECT highest FROM part_sequences WHERE part_type = ? AND polarization = ?")
            .bind(part_type.name())
            .bind(pol.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    // The issued mark counts only inside this site's range (a merge may bring
    // in another site's higher mark).
    let issued = issued.filter(|n| (lo..=hi).contains(n));
    let known = super::issued::load(state).await?.highest_in(part_type, pol, lo as u32, hi as u32);
    let highest = highest_row
        .max(issued)
        .map(|n| n.clamp(0, 99_999) as u32)
        .max(known)
        .or(Some(lo as u32 - 1).filter(|n| *n > 0));
    let range = next_numbers(highest, count)?;
    if i64::from(*range.end()) > hi {
        return Err(Error::refused(format!(
            "{count} more {} {} numbers do not fit this site's range {lo}-{hi} (highest issued: {}); \
             configure part_number_range",
            part_type.name(),
            pol.as_str(),
            highest.unwrap_or(0)
        )));
    }
    let now = timestamp::now();
    let mut rows = Vec::with_capacity(count as usize);
    for n in range.clone() {
        let number = PartNumber::new(part_type, n, pol)?.to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&number)
        .bind(part_type.name())
        .bind(pol.as_str())
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, &number))?;
        rows.push(PartRow {
            id,
            part_number: number,
            part_type: Some(part_type.name().to_owned()),
            polarization: Some(pol.as_str().to_owned()),
            date_created: Some(now.clone()),
            date_modified: Some(now.clone()),
        });
    }
    // parts.db's own mark stays the highest number issued of the type (any site).
    sqlx::query(
        "INSERT INTO part_sequences (part_type, polarization, highest) VALUES (?, ?, ?)
         ON CONFLICT (part_type, polarization) DO UPDATE SET highest = MAX(highest, excluded.highest)",
    )
    .bind(part_type.name())
    .bind(pol.as_str())
    .bind(*range.end() as i64)
    .execute(&mut *tx)
    .await?;
    // Known as issued before the parts exist: a crash in between burns the
    // numbers (never reused), it never lets them be issued again.
    let mut batch = crate::inventory::Issued::new();
    batch.add_run(part_type, pol, *range.start(), *range.end());
    super::issued::record(state, &batch).await?;
    tx.commit().await?;
    Ok(rows)
}

fn unique_violation(e: sqlx::Error, number: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::AlreadyExists(format!("part {number} already exists"))
        }
        _ => e.into(),
    }
}

/// The query of parts matching `filter`, newest first (then by id), and its
/// parameters.
fn list_query(filter: &PartFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT id, part_number, part_type, polarization, date_created, date_modified FROM parts WHERE 1 = 1",
    );
    let mut params = Vec::new();
    let mut push = |clause: &str, v: Value| {
        params.push(v);
        sql.push_str(&clause.replace('#', &format!("?{}", params.len())));
    };
    if let Some(t) = filter.part_type {
        push(" AND part_type = #", Value::Text(t.name().to_owned()));
    }
    if let Some(p) = filter.polarization {
        push(" AND polarization = #", Value::Text(p.as_str().to_owned()));
    }
    if let Some(since) = &filter.since {
        push(" AND date_created >= #", Value::Text(since.clone()));
    }
    if let Some(pattern) = &filter.pattern {
        let upper = pattern.trim().to_ascii_uppercase();
        if upper.contains(['*', '?', '[']) {
            push(" AND upper(part_number) GLOB #", Value::Text(upper));
        } else {
            push(" AND instr(upper(part_number), #) > 0", Value::Text(upper));
        }
    }
    sql.push_str(" ORDER BY date_created DESC, id DESC");
    if filter.limit > 0 {
        sql.push_str(&format!(" LIMIT {}", filter.limit));
    }
    (sql, params)
}

/// Parts matching `filter`, newest first, handed to `page` in pages of
/// `size` rows as they are read (memory bounded by two pages, whatever the
/// table's size): each row keyed by its id, its values part_number,
/// part_type, polarization, date_created, date_modified. Stops early,
/// without error, when `page` returns false.
///
/// Read by a read-only connection of its own (WAL: never waiting for a
/// writer) with rusqlite on a blocking thread, one page ahead of `page`:
/// sqlx hands each row across threads, which cost ~4 µs a row, most of a
/// 100 000-part listing.
pub async fn list_paged<F, Fut>(db: &Db, filter: &PartFilter, size: usize, page: F) -> Result<()>
where
    F: FnMut(Vec<super::paged::TextRows>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    super::paged::text_pages(&db.path, "listing parts", list_query(filter), size, page).await
}

/// The part with this number: canonical spelling first, then exactly as given
/// (historic formats).
pub async fn get(db: &Db, number: &str) -> Result<Option<PartRow>> {
    Ok(get_many(db, &[number]).await?.pop().flatten())
}

/// [`get`] for each of `numbers`, in one query; one answer per number, in order.
pub async fn get_many(db: &Db, numbers: &[&str]) -> Result<Vec<Option<PartRow>>> {
    let wanted: Vec<(String, &str)> = numbers
        .iter()
        .map(|n| {
            let canonical =
                PartNumber::parse(n).map(|p| p.to_string()).unwrap_or_else(|_| n.trim().to_owned());
            (canonical, n.trim())
        })
        .collect();
    let names: Vec<&str> = wanted.iter().flat_map(|(c, t)| [c.as_str(), *t]).collect();
    let rows: Vec<PartRow> = sqlx::query_as(
        "SELECT id, part_number, part_type, polarization, date_created, date_modified FROM parts
         WHERE part_number IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::Value::from(names).to_string())
    .fetch_all(&*db.reader().await)
    .await?;
    // The canonical form first, as stored otherwise.
    let find = |name: &str| rows.iter().find(|r| r.part_number == name).cloned();
    Ok(wanted.iter().map(|(canonical, trimmed)| find(canonical).or_else(|| find(trimmed))).collect())
}

/// Number of parts per (type, polarization).
pub async fn count(db: &Db) -> Result<Vec<(Option<String>, Option<String>, i64)>> {
    Ok(sqlx::query_as(
        "SELECT part_type, polarization, COUNT(*) FROM parts GROUP BY part_type, polarization
         ORDER BY part_type, polarization",
    )
    .fetch_all(&*db.reader().await)
    .await?)
}
