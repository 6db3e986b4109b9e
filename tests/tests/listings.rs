//! The listings of a medium database (50,000 events, 50,000 parts), streamed
//! (issue 34): `connections`, `chains`, `parts list` and `database print`
//! print every row, in order, in the table and in `--json`; the JSON is what
//! the pretty printer makes of the whole object; a table's columns are sized
//! from its first page (a longer cell later pushes its row out of line); and
//! casmanctl's memory stays far below the listing's size (a listing held
//! whole took ~150 MB at this size).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../benches/common/process.rs"]
mod process;

use casman_tests::{Daemon, sqlite};
use serde_json::Value;

/// Antennas, each with a chain ANT → LNA → CXS → CXL → BAC (4 connections).
const ANTENNAS: u32 = 12_000;
/// Rows that size a table's columns (casmanctl's first page).
const FIRST_PAGE: usize = 1000;

/// The kept state's order: oldest first by (scan time, event id).
const CONNECTIONS_SQL: &str = "SELECT source, source_type, source_polarization, target, target_type, \
                               target_polarization, since, event_id FROM active_connections \
                               ORDER BY COALESCE(since, ''), event_id";

/// A daemon on a medium database written by an outside program while it was
/// stopped: chains in scan times out of id order, every tenth one cut
/// (CXS–CXL disconnected later), 100 reaching a SNAP port, one connection
/// with a long historic id scanned last; 50,000 parts created out of id order.
fn medium() -> Daemon {
    let mut d = Daemon::start();
    d.terminate();
    let time = |expr: &str| format!("strftime('%Y-%m-%dT%H:%M:%SZ', 1735689600 + ({expr}), 'unixepoch')");
    let chain = ["ANT:ANTENNA", "LNA:LNA", "CXS:COAXSHORT", "CXL:COAXLONG", "BAC:BACBOARD"];
    let mut sql = String::from("BEGIN;");
    for (hop, pair) in chain.windows(2).enumerate() {
        let (a, at) = pair[0].split_once(':').unwrap();
        let (b, bt) = pair[1].split_once(':').unwrap();
        sql.push_str(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ANTENNAS})
             INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                                   connected_polarization, connected_scan_time, connection_status)
             SELECT printf('{a}%05dP1', i), '{at}', 'P1', {t}, printf('{b}%05dP1', i), '{bt}', 'P1', {t}, 'connected'
               FROM n;",
            t = time(&format!("(i * 7919) % 40000 * 4 + {hop}"))
        ));
    }
    sql.push_str(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 10 FROM n WHERE i < {ANTENNAS})
         INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connected_scan_time, connection_status)
         SELECT printf('CXL%05dP1', i), 'COAXLONG', 'P1', {t}, printf('CXS%05dP1', i), 'COAXSHORT', 'P1', {t},
                'disconnected' FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
         INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connected_scan_time, connection_status)
         SELECT printf('BAC%05dP1', i), 'BACBOARD', 'P1', {t2}, printf('SNAP%d%s%02d', 1 + (i - 1) / 33,
                char(65 + (i - 1) % 33 / 12), (i - 1) % 12), 'SNAP', NULL, {t2}, 'connected' FROM n;
         INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                               connected_polarization, connected_scan_time, connection_status)
         VALUES ('ANTP1-00001-RENAMED-IN-2024', 'ANTENNA', 'P1', '2026-01-01T00:00:00Z', 'LNA99999P1', 'LNA', 'P1',
                 '2026-01-01T00:00:00Z', 'connected');
         COMMIT;",
        t = time("200000 + i"),
        t2 = time("300000 + i"),
    ));
    sqlite(&d.data_dir.join("assembled_casm.db"), &sql);
    sqlite(
        &d.data_dir.join("parts.db"),
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
             INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified)
             SELECT printf('LNA%05dP2', i), 'LNA', 'P2', {t}, {t} FROM n;",
            t = time("(i * 7919) % 20000")
        ),
    );
    d.restart();
    d
}

/// Checks a streamed table: a head of three lines (its column names
/// `header`), `rows` lines of cells, a foot, then `tail`; every line of the
/// first page as wide as the head. Returns the rows' cells: cut at the
/// columns of the head, or, for a row pushed out of line by a longer cell,
/// its words.
fn table(out: &str, header: &[&str], rows: usize, tail: &str) -> Vec<Vec<String>> {
    let lines: Vec<Vec<char>> = out.lines().map(|l| l.chars().collect()).collect();
    assert_eq!(lines.len(), rows + 5, "{}", &out[..out.len().min(2000)]);
    let text = |l: &[char]| l.iter().collect::<String>();
    assert!(lines[0][0] == '┌' && lines[2][0] == '╞' && lines[rows + 3][0] == '└');
    assert_eq!(text(&lines[rows + 4]), tail);
    let width = lines[0].len();
    for l in &lines[1..(3 + rows).min(3 + FIRST_PAGE)] {
        assert_eq!(l.len(), width, "a row of the first page out of line: {}", text(l));
    }
    let head = text(&lines[1]);
    let mut starts = Vec::new();
    let mut from = 0;
    for h in header {
        let at = head[from..].find(h).unwrap() + from;
        starts.push(head[..at].chars().count());
        from = at + h.len();
    }
    starts.push(width - 1);
    lines[3..3 + rows]
        .iter()
        .map(|l| {
            if l.len() != width {
                return text(&l[1..l.len() - 1]).split_whitespace().map(str::to_owned).collect();
            }
            starts.windows(2).map(|w| text(&l[w[0]..w[1]]).trim().to_owned()).collect()
        })
        .collect()
}

/// `casmanctl ARGS`: its peak RSS in MB (the process's own).
fn peak_mb(d: &Daemon, args: &[&str]) -> u64 {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process::run(d.ctl_cmd().args(args))));
    match ran {
        Ok((_, kib)) => kib / 1024,
        Err(e) => {
            eprintln!("--- daemon log ---\n{}", d.log_text());
            std::panic::resume_unwind(e)
        }
    }
}

/// `--json` output is what `serde_json::to_string_pretty` writes of it.
fn pretty(out: &str) -> Value {
    let v: Value = serde_json::from_str(out).unwrap();
    assert_eq!(out, serde_json::to_string_pretty(&v).unwrap() + "\n");
    v
}

/// One daemon, one medium database: the memory first, while this process
/// is small (see [`process::run`]), then every listing's rows.
#[test]
fn the_listings_of_a_medium_database_stream_every_row_in_order() {
    let d = medium();
    for args in [
        &["connections"][..],
        &["--json", "connections"],
        &["chains"],
        &["--json", "chains"],
        &["parts", "list", "--all"],
        &["--json", "parts", "list", "--all"],
        &["database", "print"],
        &["--json", "database", "print"],
    ] {
        let mb = peak_mb(&d, args);
        assert!(mb < 40, "casmanctl {args:?} peaked at {mb} MB");
    }
    connections_and_chains(&d);
    parts_and_the_dump(&d);
}

fn connections_and_chains(d: &Daemon) {
    let expected: Vec<Vec<String>> = sqlite(&d.data_dir.join("assembled_casm.db"), CONNECTIONS_SQL)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    let n = expected.len();
    assert_eq!(n, ANTENNAS as usize * 4 - ANTENNAS as usize / 10 + 100 + 1);

    let out = d.ctl_ok(&["connections"]);
    let header = ["source", "type", "pol", "target", "type", "pol", "since", "event"];
    let rows = table(&out, &header, n, &format!("{n} current connections"));
    assert_eq!(rows, expected);
    // The long id sorts last, past the first page: its row is wider.
    assert!(
        out.lines().nth(3 + n - 1).unwrap().chars().count() > out.lines().next().unwrap().chars().count()
    );

    let json = pretty(&d.ctl_ok(&["--json", "connections"]));
    let listed: Vec<Vec<String>> = json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            [
                "source",
                "source_type",
                "source_polarization",
                "target",
                "target_type",
                "target_polarization",
                "since",
            ]
            .iter()
            .map(|k| c[*k].as_str().unwrap().to_owned())
            .chain([c["event_id"].to_string()])
            .collect()
        })
        .collect();
    assert_eq!(listed, expected);

    // Chains: heads in the order of their first connection, each a path of
    // current connections, every connection on exactly one chain.
    let chains = pretty(&d.ctl_ok(&["--json", "chains"]));
    let chains = chains["chains"].as_array().unwrap();
    let position: std::collections::HashMap<(String, String), usize> =
        expected.iter().enumerate().map(|(i, r)| ((r[0].clone(), r[3].clone()), i)).collect();
    let mut seen = vec![false; n];
    let mut last_head = None;
    for c in chains {
        let parts: Vec<&str> =
            c["parts"].as_array().unwrap().iter().map(|p| p["part"].as_str().unwrap()).collect();
        for pair in parts.windows(2) {
            let i = position[&(pair[0].to_owned(), pair[1].to_owned())];
            assert!(!seen[i], "{pair:?} on two chains");
            seen[i] = true;
        }
        let head = position[&(parts[0].to_owned(), parts[1].to_owned())];
        assert!(last_head < Some(head), "chains out of order at {parts:?}");
        last_head = Some(head);
        assert_eq!(c["snap"].is_object(), parts.last().unwrap().starts_with("SNAP"), "{c}");
    }
    assert!(seen.iter().all(|s| *s), "a connection on no chain");
    assert_eq!(chains.len(), ANTENNAS as usize + ANTENNAS as usize / 10 + 1);
    let text = d.ctl_ok(&["chains"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), chains.len() + 1);
    assert_eq!(lines.last().copied(), Some(format!("{} chains", chains.len()).as_str()));
    for (line, c) in lines.iter().zip(chains) {
        let parts: Vec<&str> =
            c["parts"].as_array().unwrap().iter().map(|p| p["part"].as_str().unwrap()).collect();
        assert_eq!(*line, parts.join(" ---> "));
    }
}

fn parts_and_the_dump(d: &Daemon) {
    let parts = d.data_dir.join("parts.db");
    let expected: Vec<Vec<String>> = sqlite(
        &parts,
        "SELECT part_number, part_type, COALESCE(polarization, '-'), date_created FROM parts
          ORDER BY date_created DESC, id DESC",
    )
    .lines()
    .map(|l| l.split('|').map(str::to_owned).collect())
    .collect();
    let n = expected.len();
    assert!(n >= 50_000);
    let out = d.ctl_ok(&["parts", "list", "--all"]);
    let header = ["part number", "type", "pol", "created"];
    assert_eq!(table(&out, &header, n, &format!("{n} part(s)")), expected);

    // The dump: each table once, its rows in rowid order, the JSON rows as stored.
    let dump: Value = serde_json::from_str(&d.ctl_ok(&["--json", "database", "print"])).unwrap();
    let tables = dump["tables"].as_array().unwrap();
    let assembly = tables.iter().find(|t| t["table"] == "assembly").unwrap();
    let stored: Vec<Value> = sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "SELECT json_array(id, part_number, connected_to, connection_status) FROM assembly ORDER BY rowid",
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let rows = assembly["rows"].as_array().unwrap();
    assert_eq!(rows.len(), stored.len());
    let col = |name: &str| assembly["columns"].as_array().unwrap().iter().position(|c| c == name).unwrap();
    for (row, want) in rows.iter().zip(&stored) {
        let got = [col("id"), col("part_number"), col("connected_to"), col("connection_status")].map(|i| {
            row[i].as_str().map_or(Value::Null, |s| s.parse::<i64>().map_or(Value::from(s), Value::from))
        });
        assert_eq!(Value::from(got.to_vec()), *want);
    }
    // gRPC clients that do not ask for the packed form get the same rows as messages.
    let (messages, packed) = (api_rows(d, false), api_rows(d, true));
    assert_eq!(messages.len(), stored.len());
    assert_eq!(messages, packed);
    let text = d.ctl_ok(&["database", "print", "--assembled"]);
    let head = text.lines().position(|l| l.starts_with("== assembled_casm.db : assembly (")).unwrap();
    let assembly_table = text.lines().skip(head + 1).take_while(|l| !l.starts_with("==")).collect::<Vec<_>>();
    // One table (one head, one foot) for all its pages.
    assert_eq!(assembly_table.iter().filter(|l| l.starts_with('┌')).count(), 1);
    assert_eq!(assembly_table.len(), stored.len() + 4);
}

/// The rows of `assembly` as PrintDatabase sends them to a gRPC client,
/// packed or as messages.
fn api_rows(d: &Daemon, packed: bool) -> Vec<Vec<Option<String>>> {
    use casman_proto::v1::{PrintDatabaseRequest, database_client::DatabaseClient};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let channel = casman_proto::client::connect(&d.socket).await.unwrap();
        let req = PrintDatabaseRequest { databases: vec!["assembled_casm.db".into()], limit: 0, packed };
        let mut stream = DatabaseClient::new(channel).print_database(req).await.unwrap().into_inner();
        let mut rows = Vec::new();
        while let Some(t) = stream.message().await.unwrap() {
            if t.table != "assembly" {
                continue;
            }
            assert_eq!(t.rows.is_empty(), packed || t.packed_ends.is_empty() && t.rows.is_empty());
            for r in &t.rows {
                rows.push(r.values.iter().map(|v| (!v.is_null).then(|| v.value.clone())).collect());
            }
            let mut start = 0;
            let mut row = Vec::new();
            let nulls: std::collections::HashSet<u32> = t.packed_nulls.iter().copied().collect();
            for (i, end) in t.packed_ends.iter().enumerate() {
                let end = *end as usize;
                let null = nulls.contains(&(i as u32));
                row.push((!null).then(|| t.packed_text[start..end].to_owned()));
                start = end;
                if row.len() == t.columns.len() {
                    rows.push(std::mem::take(&mut row));
                }
            }
        }
        rows
    })
}
