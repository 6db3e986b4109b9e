//! `casmanctl scan connection` / `scan disconnection`: the interactive
//! scanner, as CAsMan's terminal scanner worked.

use std::io::BufRead;

use casman_proto::v1::{
    ConnectRequest, Connection, DisconnectRequest, ValidatePartRequest, ValidatePartResponse,
};
use serde_json::json;

use super::prompt;
use crate::{client::Conn, error::CtlError};

/// What an interactive session records.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Pairs of scans are connected (`--chain`: each target is the next source).
    Connect {
        /// Each target becomes the next source.
        chain: bool,
    },
    /// A scanned part's connection, chosen by number, is disconnected.
    Disconnect,
}

fn describe(v: &ValidatePartResponse) -> String {
    let pol = if v.polarization.is_empty() { String::new() } else { format!(" {}", v.polarization) };
    let links = if v.connections.is_empty() {
        "no connections".to_owned()
    } else {
        v.connections.iter().map(|c| format!("{} -> {}", c.source, c.target)).collect::<Vec<_>>().join(", ")
    };
    format!("{} ({}{pol}; {links})", v.part, v.part_type)
}

/// One answer at an interactive prompt.
enum Answer {
    /// A non-empty trimmed line.
    Line(String),
    /// `quit` (or `q`, `exit`), or the end of input.
    Quit,
}

type Lines<'a> = std::io::Lines<std::io::StdinLock<'a>>;

/// Shows `prompt` and reads the next non-empty line.
fn read(lines: &mut Lines<'_>, prompt: &str) -> Result<Answer, CtlError> {
    loop {
        prompt::show(prompt);
        let Some(line) = lines.next() else { return Ok(Answer::Quit) };
        let line = line.map_err(|e| CtlError::Io(format!("reading stdin: {e}")))?.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if matches!(line.to_ascii_lowercase().as_str(), "quit" | "q" | "exit") {
            return Ok(Answer::Quit);
        }
        return Ok(Answer::Line(line));
    }
}

/// A SNAP chassis: 1-4.
fn parse_chassis(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(c) if (1..=4).contains(&c) => Ok(c),
        _ => Err(format!("chassis {s:?}: must be a number from 1 to 4")),
    }
}

/// A SNAP slot: one letter A-K (any case).
fn parse_slot(s: &str) -> Result<char, String> {
    let mut chars = s.chars();
    match (chars.next().map(|c| c.to_ascii_uppercase()), chars.next()) {
        (Some(c @ 'A'..='K'), None) => Ok(c),
        _ => Err(format!("slot {s:?}: must be one letter from A to K")),
    }
}

/// A SNAP ADC port: 0-11.
fn parse_port(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(p) if p <= 11 => Ok(p),
        _ => Err(format!("port {s:?}: must be a number from 0 to 11")),
    }
}

/// Asks until `parse` accepts an answer; `None` on quit.
fn ask_until<T>(
    lines: &mut Lines<'_>,
    prompt: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, CtlError> {
    loop {
        match read(lines, prompt)? {
            Answer::Quit => return Ok(None),
            Answer::Line(s) => match parse(&s) {
                Ok(v) => return Ok(Some(v)),
                Err(why) => eprintln!("  ✗ {why}"),
            },
        }
    }
}

/// After a BACBOARD source, as CAsMan asked: the SNAP chassis, slot and
/// port it goes to; `None` on quit. A scanned SNAP port id at the first
/// prompt is taken as it is.
fn snap_location(lines: &mut Lines<'_>) -> Result<Option<String>, CtlError> {
    let chassis = loop {
        match read(lines, "SNAP chassis (1-4)> ")? {
            Answer::Quit => return Ok(None),
            Answer::Line(s) if s.to_ascii_uppercase().starts_with("SNAP") => {
                return Ok(Some(s.to_ascii_uppercase()));
            }
            Answer::Line(s) => match parse_chassis(&s) {
                Ok(c) => break c,
                Err(why) => eprintln!("  ✗ {why}"),
            },
        }
    };
    let Some(slot) = ask_until(lines, "SNAP slot (A-K)> ", parse_slot)? else { return Ok(None) };
    let Some(port) = ask_until(lines, "SNAP port (0-11)> ", parse_port)? else { return Ok(None) };
    Ok(Some(format!("SNAP{chassis}{slot}{port:02}")))
}

/// Which of `connections` (of `part`) to disconnect: a number from the list,
/// or a scan of the other end; `None` on quit.
fn choose_connection(
    lines: &mut Lines<'_>,
    part: &str,
    connections: &[Connection],
) -> Result<Option<Connection>, CtlError> {
    for (i, c) in connections.iter().enumerate() {
        eprintln!("  {}. {} -> {}", i + 1, c.source, c.target);
    }
    let n = connections.len();
    let prompt = format!("connection of {part} to disconnect (1-{n})> ");
    loop {
        let Answer::Line(s) = read(lines, &prompt)? else { return Ok(None) };
        if let Ok(i) = s.parse::<usize>() {
            if (1..=n).contains(&i) {
                return Ok(Some(connections[i - 1].clone()));
            }
            eprintln!("  ✗ {i}: choose a number from 1 to {n}");
            continue;
        }
        let other = s.to_ascii_uppercase();
        let found = connections.iter().find(|c| (c.source == other || c.target == other) && other != part);
        match found {
            Some(c) => return Ok(Some(c.clone())),
            None => eprintln!(
                "  ✗ {s}: not one of these connections; choose a number from 1 to {n} (quit to end)"
            ),
        }
    }
}

/// What an interactive session recorded.
#[derive(Default)]
struct Tally {
    done: u32,
    refused: u32,
}

fn report(
    tally: &mut Tally,
    mode: Mode,
    as_json: bool,
    result: Result<Option<Connection>, tonic::Status>,
) -> bool {
    let verb = mode.verb();
    match result {
        Ok(c) => {
            let c = c.unwrap_or_default();
            tally.done += 1;
            if as_json {
                println!("{}", json!({ "action": verb, "connection": crate::output::message(&c) }));
            } else {
                let arrow = if matches!(mode, Mode::Connect { .. }) { "->" } else { "-X->" };
                crate::output::say!("{verb}ed {} {arrow} {}", c.source, c.target);
            }
            true
        }
        Err(s) => {
            tally.refused += 1;
            eprintln!("  ✗ {}", s.message());
            false
        }
    }
}

impl Mode {
    fn verb(self) -> &'static str {
        match self {
            Mode::Connect { .. } => "connect",
            Mode::Disconnect => "disconnect",
        }
    }
}

/// The interactive scanner. Each stdin line is one scan (a USB barcode scanner
/// types the label and Enter). Prompts and part descriptions go to stderr,
/// results to stdout, so a piped session is scriptable. A bad scan is
/// reported and the session goes on; `quit` (at any prompt) or end of input
/// ends it.
///
/// Connecting: pairs of scans, source then target; after a BACBOARD source
/// the SNAP chassis (1-4), slot (A-K) and port (0-11) are asked for, as
/// CAsMan did (a scanned SNAP port id is accepted too). Disconnecting: scan
/// a part, then pick one of its connections by number (or scan its other end).
pub async fn interactive(conn: &Conn, mode: Mode, as_json: bool) -> Result<(), CtlError> {
    let verb = mode.verb();
    match mode {
        Mode::Connect { .. } => {
            eprintln!("Scanning to connect: scan the first part, then the second. Type quit to end.")
        }
        Mode::Disconnect => eprintln!(
            "Scanning to disconnect: scan a part, then choose one of its connections. Type quit to end."
        ),
    }
    let mut lines = std::io::stdin().lock().lines();
    let mut first: Option<ValidatePartResponse> = None;
    let mut tally = Tally::default();
    loop {
        let role = if first.is_none() { "first" } else { "second" };
        let Answer::Line(scan) = read(&mut lines, &format!("{role} part> "))? else { break };
        let checked =
            conn.assembly().validate_part(conn.request(ValidatePartRequest { part: scan.clone() })).await;
        let part = match checked {
            Ok(p) => p.into_inner(),
            Err(s) => {
                eprintln!("  ✗ {scan}: {}", s.message());
                tally.refused += 1;
                continue;
            }
        };
        eprintln!("  ✓ {}", describe(&part));
        if let Mode::Disconnect = mode {
            if part.connections.is_empty() {
                eprintln!("  {} has no active connections", part.part);
                continue;
            }
            let Some(c) = choose_connection(&mut lines, &part.part, &part.connections)? else { break };
            let r = conn
                .assembly()
                .disconnect(conn.request(DisconnectRequest { a: c.source.clone(), b: c.target.clone() }))
                .await
                .map(|r| r.into_inner().connection);
            report(&mut tally, mode, as_json, r);
            continue;
        }
        let Some(src) = first.take() else {
            if part.part_type != "BACBOARD" {
                first = Some(part);
                continue;
            }
            let Some(port) = snap_location(&mut lines)? else { break };
            let r = conn
                .assembly()
                .connect(conn.request(ConnectRequest { source: part.part.clone(), target: port }))
                .await
                .map(|r| r.into_inner().connection);
            // A SNAP port ends a chain: the next scan starts a new pair.
            report(&mut tally, mode, as_json, r);
            continue;
        };
        let r = conn
            .assembly()
            .connect(conn.request(ConnectRequest { source: src.part.clone(), target: part.part.clone() }))
            .await
            .map(|r| r.into_inner().connection);
        if report(&mut tally, mode, as_json, r) && matches!(mode, Mode::Connect { chain: true }) {
            if part.part_type == "BACBOARD" {
                // Chain mode reached a back-end board: its SNAP port is asked for next.
                let Some(port) = snap_location(&mut lines)? else { break };
                let r = conn
                    .assembly()
                    .connect(conn.request(ConnectRequest { source: part.part.clone(), target: port }))
                    .await
                    .map(|r| r.into_inner().connection);
                report(&mut tally, mode, as_json, r);
            } else {
                first = Some(part);
            }
        }
    }
    eprintln!("{} {verb}ion(s) recorded, {} scan(s) refused", tally.done, tally.refused);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_location_answers_are_checked() {
        assert_eq!(parse_chassis("1"), Ok(1));
        assert_eq!(parse_chassis("4"), Ok(4));
        for bad in ["0", "5", "x", "-1", "1.5"] {
            assert!(parse_chassis(bad).unwrap_err().contains("1 to 4"), "{bad}");
        }
        assert_eq!(parse_slot("a"), Ok('A'));
        assert_eq!(parse_slot("K"), Ok('K'));
        for bad in ["L", "AB", "1", "Z"] {
            assert!(parse_slot(bad).unwrap_err().contains("A to K"), "{bad}");
        }
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("11"), Ok(11));
        for bad in ["12", "-1", "five"] {
            assert!(parse_port(bad).unwrap_err().contains("0 to 11"), "{bad}");
        }
    }
}
