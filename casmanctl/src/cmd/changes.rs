//! `casmanctl changes`: what changed between two times (`--since`), or
//! every change as it commits (`--follow`), from casmand's change logs.

use std::{borrow::Cow, io::Write};

use casman_proto::v1::{ChangeEvent, ListChangesRequest, WatchChangesRequest, changes_client::ChangesClient};
use clap::Args;
use serde::Serialize;

use crate::{
    client::Conn,
    error::CtlError,
    listing::{self, Cells, io},
    output,
};

/// `casmanctl changes` arguments.
#[derive(Debug, Clone, Args)]
pub struct ChangesArgs {
    /// List the changes from this time on (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC).
    #[arg(long, value_name = "TIME", required_unless_present = "follow")]
    pub since: Option<String>,
    /// ... up to this time (same forms; default: now).
    #[arg(long, value_name = "TIME", conflicts_with = "follow")]
    pub until: Option<String>,
    /// Only changes about this part (part number, antenna or board number, grid code).
    #[arg(long, value_name = "PART")]
    pub part: Option<String>,
    /// Only changes made by this site.
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
    /// Print CSV (a header line, then one line per change).
    #[arg(long)]
    pub csv: bool,
    /// Print every change as it commits, until interrupted (`--json`: one
    /// JSON object per line, each with the `id` to resume from).
    #[arg(long, conflicts_with = "since")]
    pub follow: bool,
    /// With --follow: resume after the change with this id.
    #[arg(long, value_name = "ID", requires = "follow")]
    pub after: Option<String>,
    /// With --follow: start from the first change the feed holds.
    #[arg(long, requires = "follow", conflicts_with = "after")]
    pub from_start: bool,
}

fn client(conn: &Conn) -> ChangesClient<tonic::transport::Channel> {
    ChangesClient::new(conn.channel.clone())
}

/// Runs `casmanctl changes`.
pub async fn run(conn: &Conn, args: ChangesArgs, as_json: bool) -> Result<(), CtlError> {
    if args.follow {
        return follow(conn, args, as_json).await;
    }
    let req = ListChangesRequest {
        since: args.since.clone().unwrap_or_default(),
        until: args.until.clone().unwrap_or_default(),
        part: args.part.clone().unwrap_or_default(),
        site: args.site.clone().unwrap_or_default(),
    };
    let mut stream = client(conn).list_changes(conn.request(req)).await?.into_inner();
    let mut out = listing::stdout();
    if as_json {
        return listing::json(&mut out, "changes", &mut stream, |a, out, c| a.item(out, &ChangeJson::of(c)))
            .await;
    }
    if args.csv {
        return listing::csv(&mut out, &mut stream, &CSV_HEADER, csv_row).await;
    }
    let (table, n) = listing::table(&mut out, &mut stream, &HEADER, row).await?;
    match table {
        Some(t) => write!(out, "{}\n{n} changes\n", t.foot()).map_err(io)?,
        None => writeln!(out, "No changes.").map_err(io)?,
    }
    out.flush().map_err(io)
}

/// `--follow`: every change as it commits, a line each, flushed at once.
async fn follow(conn: &Conn, args: ChangesArgs, as_json: bool) -> Result<(), CtlError> {
    let req =
        WatchChangesRequest { after: args.after.clone().unwrap_or_default(), from_start: args.from_start };
    let mut stream = client(conn).watch_changes(conn.request(req)).await?.into_inner();
    let mut out = std::io::stdout().lock();
    let mut csv = (args.csv && !as_json).then(|| ::csv::Writer::from_writer(std::io::stdout()));
    if let Some(w) = &mut csv {
        w.write_record(CSV_HEADER).map_err(listing::csv_error)?;
        w.flush().map_err(io)?;
    }
    while let Some(c) = stream.message().await? {
        if !wanted(&c, &args) {
            continue;
        }
        if as_json {
            let line = serde_json::to_string(&ChangeJson::of(&c)).map_err(|e| CtlError::Io(e.to_string()))?;
            writeln!(out, "{line}").map_err(io)?;
        } else if let Some(w) = &mut csv {
            w.write_record(csv_row(&c).iter().map(|v| v.as_bytes())).map_err(listing::csv_error)?;
            w.flush().map_err(io)?;
        } else {
            let r = row(&c);
            writeln!(out, "{}  {}  {}  {}  {}", r[0], r[1], r[2], r[3], r[6]).map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    Ok(())
}

/// `--part` and `--site` of a followed change (the feed sends every change).
fn wanted(c: &ChangeEvent, args: &ChangesArgs) -> bool {
    if c.kind == "replaced" {
        return true;
    }
    if let Some(site) = args.site.as_deref()
        && c.site != site
    {
        return false;
    }
    let Some(part) = args.part.as_deref().map(str::to_ascii_uppercase) else { return true };
    let names = |key: &str| {
        !key.is_empty()
            && (key == part
                || part.strip_prefix(key).is_some_and(|r| r == "P1" || r == "P2")
                || key.strip_prefix(part.as_str()).is_some_and(|r| r == "P1" || r == "P2"))
    };
    c.kind == "cleared" || names(&c.subject) || c.other.split(", ").any(names)
}

const HEADER: [&str; 7] = ["time", "site", "operator", "kind", "subject", "other", "detail"];

/// A row for people: stored text with its terminal controls escaped.
fn row(c: &ChangeEvent) -> Cells<'_> {
    let h = output::human;
    vec![h(&c.time), h(&c.site), h(&c.operator), h(&c.kind), h(&c.subject), h(&c.other), h(&c.detail)]
}

const CSV_HEADER: [&str; 12] = [
    "time", "kind", "site", "operator", "database", "subject", "other", "detail", "count", "hlc", "seq", "id",
];

fn csv_row(c: &ChangeEvent) -> Cells<'_> {
    vec![
        Cow::Borrowed(c.time.as_str()),
        Cow::Borrowed(c.kind.as_str()),
        Cow::Borrowed(c.site.as_str()),
        Cow::Borrowed(c.operator.as_str()),
        Cow::Borrowed(c.database.as_str()),
        Cow::Borrowed(c.subject.as_str()),
        Cow::Borrowed(c.other.as_str()),
        Cow::Borrowed(c.detail.as_str()),
        Cow::Owned(c.count.to_string()),
        Cow::Owned(c.hlc.to_string()),
        Cow::Owned(c.seq.to_string()),
        Cow::Borrowed(c.id.as_str()),
    ]
}

/// A change in the proto3 JSON mapping `--json` prints (proto field names,
/// sorted, every field; 64-bit integers as strings, as the mapping wants).
#[derive(Serialize)]
struct ChangeJson<'a> {
    count: u32,
    database: &'a str,
    detail: &'a str,
    hlc: String,
    id: &'a str,
    kind: &'a str,
    op: &'a str,
    operator: &'a str,
    other: &'a str,
    row: &'a str,
    seq: String,
    site: &'a str,
    subject: &'a str,
    table: &'a str,
    time: &'a str,
}

impl<'a> ChangeJson<'a> {
    fn of(c: &'a ChangeEvent) -> Self {
        ChangeJson {
            count: c.count,
            database: &c.database,
            detail: &c.detail,
            hlc: c.hlc.to_string(),
            id: &c.id,
            kind: &c.kind,
            op: &c.op,
            operator: &c.operator,
            other: &c.other,
            row: &c.row,
            seq: c.seq.to_string(),
            site: &c.site,
            subject: &c.subject,
            table: &c.table,
            time: &c.time,
        }
    }
}
