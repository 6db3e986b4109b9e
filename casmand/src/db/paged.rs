//! Reads that visit every row of a table, handed on in pages: a read-only
//! rusqlite connection of its own ([`super::read_only`]) steps the query on a
//! blocking thread and passes a page at a time through a channel one page
//! deep, so memory stays at two pages whatever the table's size, and a slow
//! consumer (a client reading a listing slowly) holds the reading back.
//!
//! rusqlite, not the sqlx pool: sqlx hands every row across threads, which
//! cost ~4 µs a row, most of a listing of 100,000 rows.

use std::{future::Future, path::Path};

use rusqlite::{Connection, Row, types::Value};

use crate::error::{Error, Result};

/// Hands a page to the consumer; false once it stopped listening.
pub type Emit<'a, T> = dyn FnMut(Vec<T>) -> bool + 'a;

/// Runs `produce` on a blocking thread with a read-only connection to the
/// file at `path`; every page it emits is passed to `page` on the calling
/// task, in order. Stops early, without error, when `page` returns false
/// (`emit` then returns false to `produce`). `what` names the read in
/// errors. Memory the read allocated is given back to the system after it.
pub async fn produce<T, P, F, Fut>(path: &Path, what: &'static str, produce: P, mut page: F) -> Result<()>
where
    T: Send + 'static,
    P: FnOnce(&Connection, &mut Emit<'_, T>) -> rusqlite::Result<()> + Send + 'static,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = bool>,
{
    let path = path.to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<T>>(1);
    let reader = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
        let conn = super::read_only::open(&path)?;
        let mut emit = |rows: Vec<T>| tx.blocking_send(rows).is_ok();
        let done = produce(&conn, &mut emit);
        drop(conn);
        // A sort, or pages the consumer dropped, allocated on this thread.
        crate::memory::release_free_memory();
        done
    });
    while let Some(rows) = rx.recv().await {
        if !page(rows).await {
            break;
        }
    }
    drop(rx);
    reader.await.map_err(|e| Error::internal(what, e))?.map_err(|e| Error::internal(what, e))
}

/// Steps `sql` (with `params`) and emits its rows, each made by `map`, in
/// pages of `size`. Returns false when the consumer stopped listening.
pub fn each_page<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    size: usize,
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    emit: &mut Emit<'_, T>,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut buf = Vec::with_capacity(size);
    while let Some(r) = rows.next()? {
        buf.push(map(r)?);
        if buf.len() >= size && !emit(std::mem::replace(&mut buf, Vec::with_capacity(size))) {
            return Ok(false);
        }
    }
    Ok(buf.is_empty() || emit(buf))
}

/// The rows of `sql` (with `params`), each made by `map`, passed to `page`
/// in pages of `size` as they are read (see [`produce`]).
pub async fn rows<T, M, F, Fut>(
    path: &Path,
    what: &'static str,
    (sql, params): (String, Vec<Value>),
    size: usize,
    map: M,
    page: F,
) -> Result<()>
where
    T: Send + 'static,
    M: FnMut(&Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = bool>,
{
    produce(path, what, move |conn, emit| each_page(conn, &sql, &params, size, map, emit).map(drop), page)
        .await
}
