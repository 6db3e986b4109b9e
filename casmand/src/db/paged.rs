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
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    // Not awaited: the outcome comes by `done_tx`, before the trim.
    drop(tokio::task::spawn_blocking(move || {
        let done = super::read_only::open(&path).and_then(|conn| {
            let mut emit = |rows: Vec<T>| tx.blocking_send(rows).is_ok();
            produce(&conn, &mut emit)
        });
        // The listing ends here for the consumer; the sort and the pages
        // allocated on this thread are then given back (a trim can take
        // milliseconds).
        drop(tx);
        let _ = done_tx.send(done);
        crate::memory::release_free_memory();
    }));
    while let Some(rows) = rx.recv().await {
        if !page(rows).await {
            break;
        }
    }
    drop(rx);
    match done_rx.await {
        Ok(done) => done.map_err(|e| Error::internal(what, e)),
        Err(e) => Err(Error::internal(what, e)),
    }
}

/// The rows of `sql` (with `params`) passed to `page` in pages of `size` as
/// they are read (see [`produce`]), as [`TextRows`]: each row keyed by its
/// first column (an integer), its values the others.
pub async fn text_pages<F, Fut>(
    path: &Path,
    what: &'static str,
    (sql, params): (String, Vec<Value>),
    size: usize,
    page: F,
) -> Result<()>
where
    F: FnMut(Vec<TextRows>) -> Fut,
    Fut: Future<Output = bool>,
{
    produce(
        path,
        what,
        move |conn, emit| {
            let mut stmt = conn.prepare(&sql)?;
            let width = stmt.column_count().saturating_sub(1);
            let mut q = stmt.query(rusqlite::params_from_iter(params))?;
            let mut rows = TextRows::new(width, size);
            while let Some(r) = q.next()? {
                rows.push(r.get(0)?, r, 1)?;
                if rows.len() >= size && !emit(vec![std::mem::replace(&mut rows, TextRows::new(width, size))])
                {
                    return Ok(());
                }
            }
            if !rows.is_empty() {
                emit(vec![rows]);
            }
            Ok(())
        },
        page,
    )
    .await
}

/// Rows of text values read in a page, kept compact: their text one after
/// the other in one string, with an integer key per row (a rowid, an event
/// id). One allocation a page, not one a value, made and freed on the
/// thread that reads the file: the API makes each message's strings on the
/// thread that encodes and frees them (memory one thread frees that another
/// allocated takes glibc's slow path: a quarter of a listing's time).
#[derive(Debug, Clone, Default)]
pub struct TextRows {
    width: usize,
    text: String,
    /// Where each value ends in `text`, row after row; None for NULL.
    ends: Vec<Option<u32>>,
    keys: Vec<i64>,
}

impl TextRows {
    /// No rows yet, of `width` values each; room for `rows`.
    pub fn new(width: usize, rows: usize) -> TextRows {
        TextRows {
            width,
            text: String::new(),
            ends: Vec::with_capacity(width * rows),
            keys: Vec::with_capacity(rows),
        }
    }

    /// Appends a row: `key`, and columns `from..from + width` of `r` as text
    /// (a number as SQLite writes it, a BLOB that is not UTF-8 as NULL).
    pub fn push(&mut self, key: i64, r: &Row<'_>, from: usize) -> rusqlite::Result<()> {
        use rusqlite::types::ValueRef;
        use std::fmt::Write;
        for i in from..from + self.width {
            let present = match r.get_ref(i)? {
                ValueRef::Null => false,
                ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
                    Ok(t) => {
                        self.text.push_str(t);
                        true
                    }
                    Err(_) => false,
                },
                ValueRef::Integer(n) => write!(self.text, "{n}").is_ok(),
                ValueRef::Real(x) => write!(self.text, "{x}").is_ok(),
            };
            self.ends.push(present.then(|| u32::try_from(self.text.len()).unwrap_or(u32::MAX)));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Appends a row: `key`, and `values` (as many as the width).
    pub fn push_texts(&mut self, key: i64, values: &[Option<&str>]) {
        for v in values.iter().take(self.width) {
            self.ends.push(v.map(|v| {
                self.text.push_str(v);
                u32::try_from(self.text.len()).unwrap_or(u32::MAX)
            }));
        }
        self.keys.push(key);
    }

    /// The values as one text, where each ends in it (a NULL where the
    /// value before it ends), and the places of the NULLs: the packed form
    /// of the API's table pages.
    pub fn into_packed(self) -> (String, Vec<u32>, Vec<u32>) {
        let mut nulls = Vec::new();
        let mut last = 0;
        let ends = self
            .ends
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                Some(e) => {
                    last = *e;
                    *e
                }
                None => {
                    nulls.push(i as u32);
                    last
                }
            })
            .collect();
        (self.text, ends, nulls)
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The rows in order, each its key and its values (NULL as None).
    pub fn rows(&self) -> impl Iterator<Item = (i64, impl Iterator<Item = Option<&str>>)> {
        let mut start = 0;
        let text = &self.text;
        self.keys.iter().zip(self.ends.chunks(self.width.max(1))).map(move |(key, row)| {
            let mut from = start;
            start = row.iter().flatten().last().map_or(start, |e| *e as usize);
            let values = row.iter().map(move |end| {
                let end = (*end)? as usize;
                let value = text.get(from..end);
                from = end;
                value
            });
            (*key, values)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn text_rows_give_back_every_value() {
        let conn = Connection::open_in_memory().unwrap();
        let mut rows = TextRows::new(4, 2);
        let mut stmt = conn
            .prepare(
                "SELECT 7, 'é', NULL, '', 42 UNION ALL SELECT 8, NULL, 2.5, x'ff', 'last' UNION ALL SELECT 9, NULL, NULL, NULL, NULL",
            )
            .unwrap();
        let mut q = stmt.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            rows.push(r.get(0).unwrap(), r, 1).unwrap();
        }
        let got: Vec<(i64, Vec<Option<&str>>)> = rows.rows().map(|(k, v)| (k, v.collect())).collect();
        assert_eq!(
            got,
            [
                (7, vec![Some("é"), None, Some(""), Some("42")]),
                (8, vec![None, Some("2.5"), None, Some("last")]),
                (9, vec![None, None, None, None]),
            ]
        );
        assert_eq!(rows.len(), 3);
        assert!(TextRows::new(2, 0).rows().next().is_none());
        let (text, ends, nulls) = rows.into_packed();
        assert_eq!(text, "é422.5last");
        assert_eq!(ends, [2, 2, 2, 4, 4, 7, 7, 11, 11, 11, 11, 11]);
        assert_eq!(nulls, [1, 4, 6, 8, 9, 10, 11]);
    }
}
