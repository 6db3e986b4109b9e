//! Printing a listing as its messages arrive, in memory bounded by a page
//! whatever its length: through a buffered stdout, a table sized from its
//! first page ([`FirstPage`]), `--json` written item by item
//! ([`JsonArray`]) exactly as the pretty printer writes the whole object.

use std::io::{BufWriter, StdoutLock, Write};

use serde::Serialize;

use crate::error::CtlError;

/// Rows that size a streamed table's columns.
pub const FIRST_PAGE: usize = 1000;

/// Stdout, buffered (64 KiB): one write call per buffer, not per line.
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// The error of writing a listing to stdout.
pub fn io(e: std::io::Error) -> CtlError {
    CtlError::Io(format!("writing the list: {e}"))
}

/// `{"<key>": [item, ...]}` written item by item, byte for byte as
/// `serde_json::to_string_pretty` writes the whole object (and a newline).
#[derive(Debug)]
pub struct JsonArray {
    items: usize,
    scratch: Vec<u8>,
}

impl JsonArray {
    /// Opens the object and its array.
    pub fn start(out: &mut impl Write, key: &str) -> std::io::Result<JsonArray> {
        write!(out, "{{\n  {}: [", serde_json::Value::from(key))?;
        Ok(JsonArray { items: 0, scratch: Vec::with_capacity(1024) })
    }

    /// Writes the next item of the array.
    pub fn item(&mut self, out: &mut impl Write, item: &impl Serialize) -> std::io::Result<()> {
        self.scratch.clear();
        serde_json::to_writer_pretty(&mut self.scratch, item)?;
        out.write_all(if self.items == 0 { b"\n    " } else { b",\n    " })?;
        // JSON text holds no raw newline but between its tokens: indent each line.
        for (i, line) in self.scratch.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.write_all(b"\n    ")?;
            }
            out.write_all(line)?;
        }
        self.items += 1;
        Ok(())
    }

    /// Closes the array and the object.
    pub fn finish(self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(if self.items == 0 { b"]\n}\n" } else { b"\n  ]\n}\n" })
    }
}

/// Writes every message of `stream` as `{"<key>": [...]}` ([`JsonArray`]),
/// each written by `item` (`|array, out, m| array.item(out, &view(m))`),
/// and flushes `out`.
pub async fn json<M, W: Write>(
    out: &mut W,
    key: &str,
    stream: &mut tonic::Streaming<M>,
    item: impl Fn(&mut JsonArray, &mut W, &M) -> std::io::Result<()>,
) -> Result<(), CtlError> {
    let mut array = JsonArray::start(out, key).map_err(io)?;
    while let Some(m) = stream.message().await? {
        item(&mut array, out, &m).map_err(io)?;
    }
    array.finish(out).map_err(io)?;
    out.flush().map_err(io)
}

/// A row of a [`table`]: its cells, borrowed from the message where they
/// can be.
pub type Cells<'a> = Vec<std::borrow::Cow<'a, str>>;

/// Writes every message of `stream` as a table for people: columns
/// `header`, sized from the first page ([`FirstPage`]), a row per message
/// made by `row`. Returns the table (None when there was no message: the
/// caller says so) and how many rows it printed; the caller writes the
/// foot.
pub async fn table<M, W: Write>(
    out: &mut W,
    stream: &mut tonic::Streaming<M>,
    header: &[&str],
    row: impl for<'a> Fn(&'a M) -> Cells<'a>,
) -> Result<(Option<crate::output::StreamTable>, usize), CtlError> {
    let head = |out: &mut W, page: &[M]| -> Result<crate::output::StreamTable, CtlError> {
        let rows: Vec<Cells<'_>> = page.iter().map(&row).collect();
        let t = crate::output::StreamTable::new(header, &rows);
        out.write_all(t.head().as_bytes()).map_err(io)?;
        for r in &rows {
            t.write_row(out, r).map_err(io)?;
        }
        Ok(t)
    };
    let mut first = FirstPage::default();
    let mut table = None;
    let mut n = 0usize;
    while let Some(m) = stream.message().await? {
        n += 1;
        match first.take(m) {
            Taken::Held => {}
            Taken::Page(page) => table = Some(head(out, &page)?),
            Taken::Later(m) => {
                if let Some(t) = &table {
                    t.write_row(out, &row(&m)).map_err(io)?;
                }
            }
        }
    }
    if let Some(page) = first.rest() {
        table = Some(head(out, &page)?);
    }
    Ok((table, n))
}

/// Writes every message of `stream` as CSV: the `header` line, then a
/// record per message made by `record` (quoted where a value needs it), and
/// flushes `out`.
pub async fn csv<M, W: Write>(
    out: &mut W,
    stream: &mut tonic::Streaming<M>,
    header: &[&str],
    record: impl for<'a> Fn(&'a M) -> Cells<'a>,
) -> Result<(), CtlError> {
    let mut w = ::csv::Writer::from_writer(&mut *out);
    w.write_record(header).map_err(csv_error)?;
    while let Some(m) = stream.message().await? {
        w.write_record(record(&m).iter().map(|c| c.as_bytes())).map_err(csv_error)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    out.flush().map_err(io)
}

/// The error of writing CSV to stdout.
pub fn csv_error(e: ::csv::Error) -> CtlError {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => io(e),
        other => io(std::io::Error::other(format!("{other:?}"))),
    }
}

/// The first page of a listing held back until it is complete (or the
/// listing ends), so that a table's columns can be sized from it; every
/// later item passes straight through.
#[derive(Debug)]
pub struct FirstPage<T> {
    held: Vec<T>,
    open: bool,
}

impl<T> Default for FirstPage<T> {
    fn default() -> Self {
        FirstPage { held: Vec::new(), open: true }
    }
}

impl<T> FirstPage<T> {
    /// Takes `item`: held while the first page fills (None, or the whole
    /// page once it is full), else handed back to print at once.
    pub fn take(&mut self, item: T) -> Taken<T> {
        if !self.open {
            return Taken::Later(item);
        }
        self.held.push(item);
        if self.held.len() < FIRST_PAGE {
            return Taken::Held;
        }
        self.open = false;
        Taken::Page(std::mem::take(&mut self.held))
    }

    /// At the end of the listing: the first page if it never filled.
    pub fn rest(&mut self) -> Option<Vec<T>> {
        let open = std::mem::replace(&mut self.open, false);
        (open && !self.held.is_empty()).then(|| std::mem::take(&mut self.held))
    }
}

/// What [`FirstPage::take`] did with an item.
#[derive(Debug)]
pub enum Taken<T> {
    /// Held in the first page.
    Held,
    /// The first page, now complete.
    Page(Vec<T>),
    /// An item after the first page.
    Later(T),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn streamed(items: &[serde_json::Value]) -> String {
        let mut out = Vec::new();
        let mut a = JsonArray::start(&mut out, "rows").unwrap_or_else(|e| panic!("{e}"));
        for i in items {
            a.item(&mut out, i).unwrap_or_else(|e| panic!("{e}"));
        }
        a.finish(&mut out).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn the_streamed_array_is_the_pretty_object() {
        let items = [
            json!({"a": 1, "b": ["x\ny", {"c": null}], "d": {}, "e": []}),
            json!({"a": 2, "text": "tab\t\"quoted\" \u{1b} é"}),
            json!([]),
        ];
        for n in 0..=items.len() {
            let whole = json!({ "rows": items[..n] });
            let pretty = serde_json::to_string_pretty(&whole).unwrap_or_default() + "\n";
            assert_eq!(streamed(&items[..n]), pretty);
        }
    }

    #[test]
    fn the_first_page_is_held_then_items_pass() {
        let mut p = FirstPage::default();
        for i in 0..FIRST_PAGE - 1 {
            assert!(matches!(p.take(i), Taken::Held));
        }
        assert!(matches!(p.take(FIRST_PAGE - 1), Taken::Page(v) if v.len() == FIRST_PAGE));
        assert!(matches!(p.take(7), Taken::Later(7)));
        assert!(p.rest().is_none());
        let mut short = FirstPage::default();
        assert!(matches!(short.take(1), Taken::Held));
        assert_eq!(short.rest(), Some(vec![1]));
        assert_eq!(FirstPage::<u8>::default().rest(), None);
    }
}
