//! The listings of the current state of assembled_casm.db (every current
//! connection, every chain), read from the kept state in one pass by
//! [`super::paged`] and handed on in pages: a listing's memory does not grow
//! with the number of connections (chains: 16 bytes a connection while they
//! are walked, see [`super::chain_graph`]).

use std::future::Future;

use rusqlite::{Row, types::Value};

use super::{
    Db,
    as_of::{self, At},
    assembly::{KEPT_COLUMNS, KEPT_ORDER},
    chain_graph::ChainGraph,
    paged::{self, TextRows},
};
use crate::error::Result;

/// Every current connection (at `at` when given, see [`as_of`]), oldest
/// first, with an end of type `part_type` when given (the type's name, as
/// recorded), passed to `page` in pages of `size` as they are read: each row
/// keyed by its event id, its values those of [`CONNECTION_COLUMNS`]. Stops
/// early when `page` returns false.
pub async fn connections<F, Fut>(
    db: &Db,
    part_type: Option<&str>,
    at: Option<&At>,
    size: usize,
    page: F,
) -> Result<()>
where
    F: FnMut(Vec<TextRows>) -> Fut,
    Fut: Future<Output = bool>,
{
    let (filter, params) = match part_type {
        Some(t) => (" WHERE source_type = ?1 OR target_type = ?1", vec![Value::Text(t.to_owned())]),
        None => ("", Vec::new()),
    };
    let source = as_of::connections_source(at);
    let sql = format!("SELECT event_id, {CONNECTION_COLUMNS} FROM {source}{filter} {KEPT_ORDER}");
    paged::text_pages(&db.path, "listing the current connections", (sql, params), size, page).await
}

/// The values of a row of [`connections`], in this order.
pub const CONNECTION_COLUMNS: &str =
    "source, source_type, source_polarization, target, target_type, target_polarization, since";

/// Every chain of the current connections (at `at` when given; see
/// [`ChainGraph::walk`] for which and in what order), passed to `page` in
/// pages of `size` chains.
/// The connections are read first (one pass, kept compact), then the chains
/// are walked and handed on as they are made. Stops early when `page`
/// returns false.
pub async fn chains<F, Fut>(db: &Db, at: Option<&At>, size: usize, page: F) -> Result<()>
where
    F: FnMut(Vec<ChainPage>) -> Fut,
    Fut: Future<Output = bool>,
{
    let sql = format!("SELECT {KEPT_COLUMNS} FROM {} {KEPT_ORDER}", as_of::connections_source(at));
    paged::produce(
        &db.path,
        "listing the chains",
        move |conn, emit| {
            let mut graph = ChainGraph::new();
            {
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let end = |i: usize| -> rusqlite::Result<_> {
                        Ok((r.get_ref(i)?.as_str()?, text(r, i + 1)?, text(r, i + 2)?))
                    };
                    graph
                        .push(end(0)?, end(3)?)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                }
            }
            let mut page = ChainPage::default();
            let mut name = String::new();
            graph.walk(|chain| {
                let n = page.cyclic.len() as i64;
                for (part, part_type, pol) in chain.parts() {
                    use std::fmt::Write;
                    name.clear();
                    let _ = write!(name, "{part}");
                    page.parts.push_texts(n, &[Some(&name), part_type, pol]);
                }
                page.cyclic.push(chain.cyclic());
                page.cyclic.len() < size || emit(vec![std::mem::take(&mut page)])
            });
            if !page.cyclic.is_empty() {
                emit(vec![page]);
            }
            Ok(())
        },
        page,
    )
    .await
}

/// A page of chains, compact (see [`TextRows`]): every part of every chain
/// (id, type, polarization) keyed by its chain's place in the page.
#[derive(Debug)]
pub struct ChainPage {
    parts: TextRows,
    cyclic: Vec<bool>,
}

impl Default for ChainPage {
    fn default() -> Self {
        ChainPage { parts: TextRows::new(3, 0), cyclic: Vec::new() }
    }
}

/// One part of a chain of a [`ChainPage`]: id, type, polarization (NULL as
/// None).
pub type ChainPartText<'a> = [Option<&'a str>; 3];

impl ChainPage {
    /// The chains of the page in order: whether each is cyclic, and its
    /// parts in signal order.
    pub fn chains(&self) -> Vec<(bool, Vec<ChainPartText<'_>>)> {
        let mut out: Vec<(bool, Vec<ChainPartText<'_>>)> =
            self.cyclic.iter().map(|c| (*c, Vec::new())).collect();
        for (chain, mut values) in self.parts.rows() {
            if let Some((_, parts)) = usize::try_from(chain).ok().and_then(|c| out.get_mut(c)) {
                parts.push([values.next().flatten(), values.next().flatten(), values.next().flatten()]);
            }
        }
        out
    }
}

/// Column `i` of `r` as text, NULL as None, without copying it.
fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    Ok(r.get_ref(i)?.as_str_or_null()?)
}
