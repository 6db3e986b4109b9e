//! Printing for people (tables, aligned fields) and for scripts (JSON).

use std::{borrow::Cow, sync::LazyLock};

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

/// A table with the house style: header row, borders only, fits the terminal.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic).set_header(header);
    // Snapshots do not depend on the terminal the tests run in.
    #[cfg(test)]
    t.force_no_tty();
    t
}

/// A table printed row by row, in the style of [`table`] (borders only):
/// the column widths come from the header and the rows it is made with (the
/// first page of a stream); a longer cell later pushes its row out of line
/// rather than being cut.
#[derive(Debug, Clone)]
pub struct StreamTable {
    header: Vec<String>,
    widths: Vec<usize>,
}

impl StreamTable {
    /// Widths fitting `header` and `rows` (each as long as the header).
    pub fn new<S: AsRef<str>, R: AsRef<[S]>>(header: &[&str], rows: &[R]) -> StreamTable {
        let widths = (0..header.len())
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.as_ref().get(i))
                    .map(|c| c.as_ref().chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        StreamTable { header: header.iter().map(|h| h.to_string()).collect(), widths }
    }

    fn inner(&self) -> usize {
        self.widths.iter().map(|w| w + 2).sum::<usize>() + self.widths.len().saturating_sub(1)
    }

    fn line<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let cells: Vec<String> =
            cells.iter().zip(&self.widths).map(|(c, w)| format!(" {:<w$} ", c.as_ref(), w = *w)).collect();
        format!("│{}│\n", cells.join(" "))
    }

    /// The top border, the header and its rule.
    pub fn head(&self) -> String {
        let bar = "─".repeat(self.inner());
        format!("┌{bar}┐\n{}╞{}╡\n", self.line(&self.header), "═".repeat(self.inner()))
    }

    /// One row, as text (what [`Self::write_row`] writes).
    #[cfg(test)]
    pub fn row<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let mut out = Vec::new();
        let _ = self.write_row(&mut out, cells);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes one row (as [`Self::row`] makes it) to `out`, allocating
    /// nothing (and without `fmt`'s padding, a call per space: most of the
    /// time of printing a million rows).
    pub fn write_row<S: AsRef<str>>(
        &self,
        out: &mut impl std::io::Write,
        cells: &[S],
    ) -> std::io::Result<()> {
        const SPACES: [u8; 64] = [b' '; 64];
        out.write_all("│".as_bytes())?;
        for (i, (c, w)) in cells.iter().zip(&self.widths).enumerate() {
            let c = c.as_ref();
            out.write_all(if i == 0 { b" " } else { b"  " })?;
            out.write_all(c.as_bytes())?;
            // Padded by characters, as `{:<w$}` pads.
            let len = if c.is_ascii() { c.len() } else { c.chars().count() };
            let mut pad = w.saturating_sub(len) + 1;
            while pad > 0 {
                let n = pad.min(SPACES.len());
                out.write_all(&SPACES[..n])?;
                pad -= n;
            }
        }
        out.write_all("│\n".as_bytes())
    }

    /// The bottom border (no newline).
    pub fn foot(&self) -> String {
        format!("└{}┘", "─".repeat(self.inner()))
    }
}

/// The `casman.v1` descriptors, to print any API message as JSON.
static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(casman_proto::FILE_DESCRIPTOR_SET).ok());

/// `m` in the proto3 JSON mapping, as `--json` prints API messages: the
/// proto field names (`part_number`, not `partNumber`), every field with its
/// default value too (`0`, `""`, `false`, `[]`; an unset message field is
/// left out), enum values by name, and 64-bit integers as JSON numbers
/// (parsers of the mapping accept numbers and strings alike).
pub fn message<M: prost::Message + prost::Name>(m: &M) -> Value {
    const OPTIONS: SerializeOptions = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    let dynamic = POOL
        .as_ref()
        .and_then(|pool| pool.get_message_by_name(&M::full_name()))
        .and_then(|desc| DynamicMessage::decode(desc, m.encode_to_vec().as_slice()).ok());
    // Unreachable with the descriptors compiled into casman-proto.
    let Some(dynamic) = dynamic else {
        return Value::String(format!("{} (no descriptor)", M::full_name()));
    };
    dynamic.serialize_with_options(serde_json::value::Serializer, &OPTIONS).unwrap_or(Value::Null)
}

/// Every message of `ms` as [`message`] prints it.
pub fn messages<'a, M: prost::Message + prost::Name + 'a>(ms: impl IntoIterator<Item = &'a M>) -> Value {
    Value::Array(ms.into_iter().map(message).collect())
}

/// Prints `value` as pretty JSON on stdout.
pub fn json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// `text` safe to show on a terminal: stored text (notes, serials, part
/// fields) comes from CSV files and other clients, and a control character in
/// it could move the cursor, retitle the window or hide what follows. Every
/// C0 control but newline and tab, DEL and every C1 control is written as
/// `\x1b`, `\x07`, `\u{9b}`; so are the bidirectional overrides and
/// isolates, which reorder what a reader sees. Used by every human printer
/// ([`say!`], [`put!`]); JSON output is printed exact.
pub fn human(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    // Printable ASCII, the common case, checked a byte at a time.
    if text.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\n' || b == b'\t')
        || !text.chars().any(unsafe_char)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// `println!` for people: the line through [`human`].
macro_rules! say {
    () => { ::std::println!() };
    ($($arg:tt)*) => { ::std::println!("{}", $crate::output::human(&::std::format!($($arg)*))) };
}

/// `print!` for people: the text through [`human`].
macro_rules! put {
    ($($arg:tt)*) => { ::std::print!("{}", $crate::output::human(&::std::format!($($arg)*))) };
}

pub(crate) use {put, say};

/// Human-readable byte count (`12.3 KiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `n` with thousands separators (`1,000,000`).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration as the README and the configuration write it (`90s`, `24h`,
/// `7d`; `3h 12m 5s` when no single unit is exact).
pub fn duration_secs(secs: u64) -> String {
    casman_proto::duration::format_secs(secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_streamed_table_looks_like_the_table() {
        let rows = [
            ["ANT00001P1".to_owned(), "ANTENNA".into(), "P1".into()],
            ["LNA00002P2".into(), "LNA".into(), "-".into()],
        ];
        let mut t = super::table(["part number", "type", "pol"]);
        for r in &rows {
            t.add_row(r.clone());
        }
        let s = super::StreamTable::new(&["part number", "type", "pol"], &rows);
        let streamed: String = s.head() + &rows.iter().map(|r| s.row(r)).collect::<String>() + &s.foot();
        assert_eq!(s.row(&["a", "b", "c"]), s.line(&["a", "b", "c"]));
        let long = "x".repeat(100);
        for cells in [["é", "ñú", ""], ["", "", ""], [long.as_str(), "b", "c"]] {
            assert_eq!(s.row(&cells), s.line(&cells));
        }
        assert_eq!(streamed, t.to_string());
    }

    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(human("plain\tnote\n"), "plain\tnote\n");
        assert_eq!(human("red\x1b[31m bell\x07 del\x7f"), "red\\x1b[31m bell\\x07 del\\x7f");
        assert_eq!(human("csi\u{9b}2J cr\r"), "csi\\u{9b}2J cr\\x0d");
        assert_eq!(human("a\u{202e}b"), "a\\u{202e}b");
        assert!(matches!(human("ANT00001P1 µ"), Cow::Borrowed(_)));
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
