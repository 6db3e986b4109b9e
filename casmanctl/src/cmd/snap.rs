//! `casmanctl snap ...` (SNAP boards and ports) and
//! `casmanctl database load-snap-boards`.

use std::path::{Path, PathBuf};

use casman_proto::v1::{
    GenerateSnapBoardsRequest, GetSnapBoardRequest, GetSnapPortDetailRequest, ListSnapBoardsRequest,
    LoadSnapBoardsRequest, SnapBoardConfig, snap_boards_client::SnapBoardsClient,
};
use clap::Subcommand;
use serde_json::json;
use tonic::transport::Channel;

use super::grid::{read_csv, write_output};
use crate::{cli::AsOf, client::Conn, error::CtlError, output};

/// SNAP commands.
#[derive(Debug, Subcommand)]
pub enum SnapCmd {
    /// List the configured boards.
    List {
        #[command(flatten)]
        at: AsOf,
    },
    /// Show a board (SNAP1A) and its 12 ports: packet index and connected antenna.
    Show {
        /// Board id: SNAP1A or SNAP0101.
        board: String,
        #[command(flatten)]
        at: AsOf,
    },
    /// Show a port (SNAP1A05 or SNAP010105): board, packet index (feng_id × 12 + port)
    /// and the chain connected to it.
    Port {
        /// Port id.
        port: String,
        #[command(flatten)]
        at: AsOf,
    },
    /// Write the default snap_boards.csv (44 placeholder boards) to FILE, or stdout.
    GenerateCsv {
        /// Output file, e.g. snap_boards.csv.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Date written in the notes, YYYY-MM-DD [default: today, UTC].
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
    },
}

fn client(conn: &Conn) -> SnapBoardsClient<Channel> {
    SnapBoardsClient::new(conn.channel.clone())
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn print_board(b: &SnapBoardConfig) {
    crate::output::say!("board:         {}", b.board);
    crate::output::say!("serial:        {}", b.serial_number);
    crate::output::say!("MAC:           {}", b.mac_address);
    crate::output::say!("IP:            {}", b.ip_address);
    crate::output::say!("F-engine id:   {}", b.feng_id);
    if !b.notes.is_empty() {
        crate::output::say!("notes:         {}", b.notes);
    }
    crate::output::say!("added:         {}", b.date_added);
    crate::output::say!("modified:      {}", dash(&b.date_modified));
}

/// Runs a SNAP command.
pub async fn run(conn: &Conn, cmd: SnapCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        SnapCmd::List { at } => {
            let req = ListSnapBoardsRequest { as_of: at.as_of() };
            let r = client(conn).list_snap_boards(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
                return Ok(());
            }
            if r.boards.is_empty() {
                crate::output::say!(
                    "No SNAP boards configured (load them with: casmanctl database load-snap-boards)."
                );
                return Ok(());
            }
            let mut t = output::table(["board", "serial", "MAC", "IP", "feng_id", "packet indices", "notes"]);
            for b in &r.boards {
                t.add_row([
                    b.board.clone(),
                    b.serial_number.clone(),
                    b.mac_address.clone(),
                    b.ip_address.clone(),
                    b.feng_id.to_string(),
                    format!("{}-{}", b.feng_id * 12, b.feng_id * 12 + 11),
                    b.notes.clone(),
                ]);
            }
            crate::output::say!("{t}");
            crate::output::say!("{} board(s)", r.boards.len());
            Ok(())
        }
        SnapCmd::Show { board, at } => {
            let req = GetSnapBoardRequest { board, as_of: at.as_of() };
            let r = client(conn).get_snap_board(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
                return Ok(());
            }
            match &r.board {
                Some(b) => print_board(b),
                None => crate::output::say!("board:         {} (no board configuration found)", r.board_id),
            }
            let mut t = output::table(["port", "ADC", "packet index", "antenna", "grid code", "kernel"]);
            for p in &r.ports {
                t.add_row([
                    p.port_id.clone(),
                    p.port.to_string(),
                    p.packet_index.map_or_else(|| "-".into(), |i| i.to_string()),
                    dash(&p.antenna).to_owned(),
                    dash(&p.grid_code).to_owned(),
                    p.kernel_index.map_or_else(|| "-".into(), |k| k.to_string()),
                ]);
            }
            crate::output::say!("{t}");
            Ok(())
        }
        SnapCmd::Port { port, at } => {
            let req = GetSnapPortDetailRequest { port, as_of: at.as_of() };
            let r = client(conn).get_snap_port_detail(conn.request(req)).await?.into_inner();
            if as_json {
                output::json(&output::message(&r));
                return Ok(());
            }
            let Some(p) = &r.port else { return Ok(()) };
            crate::output::say!("port:          {} ({}), ADC input {}", p.port_id, p.numeric_id, p.port);
            match &r.board {
                Some(b) => {
                    crate::output::say!(
                        "board:         {} serial {}, feng_id {}, {} / {}",
                        b.board,
                        b.serial_number,
                        b.feng_id,
                        b.ip_address,
                        b.mac_address
                    );
                }
                None => crate::output::say!("board:         no board configuration found"),
            }
            crate::output::say!(
                "packet index:  {}",
                p.packet_index.map_or_else(|| "-".into(), |i| i.to_string())
            );
            if p.chain.is_empty() {
                crate::output::say!("connected:     nothing");
            } else {
                crate::output::say!("antenna:       {}", dash(&p.antenna));
                if !p.grid_code.is_empty() {
                    let k = p.kernel_index.map_or_else(|| "-".into(), |k| k.to_string());
                    crate::output::say!("position:      {} (kernel {k})", p.grid_code);
                }
                crate::output::say!("chain:         {}", p.chain.join(" ---> "));
            }
            Ok(())
        }
        SnapCmd::GenerateCsv { output: out, date } => {
            let req = GenerateSnapBoardsRequest { date: date.unwrap_or_default() };
            let r = client(conn).generate_snap_boards(conn.request(req)).await?.into_inner();
            match (&out, as_json) {
                (None, true) => output::json(&output::message(&r)),
                (None, false) => write_output(None, &r.csv)?,
                (Some(p), _) => {
                    write_output(Some(p), &r.csv)?;
                    if as_json {
                        output::json(&json!({ "file": p, "boards": r.boards }));
                    } else {
                        crate::output::say!("Wrote {} board(s) to {}", r.boards, p.display());
                    }
                }
            }
            Ok(())
        }
    }
}

/// `database load-snap-boards`: reads `csv` and has casmand load it.
pub async fn load_snap_boards(conn: &Conn, csv: &Path, as_json: bool) -> Result<(), CtlError> {
    let text = read_csv(csv)?;
    let req = LoadSnapBoardsRequest { csv: text, source: csv.display().to_string() };
    let r = client(conn).load_snap_boards(conn.request(req)).await?.into_inner();
    if as_json {
        let mut v = output::message(&r);
        v["source"] = json!(csv);
        output::json(&v);
        return Ok(());
    }
    crate::output::say!("Loading SNAP boards from {}", csv.display());
    crate::output::say!("Loaded:    {} board(s){}", r.loaded, list(&r.loaded_boards));
    crate::output::say!("Updated:   {} board(s){}", r.updated, list(&r.updated_boards));
    crate::output::say!("Unchanged: {} board(s)", r.unchanged);
    crate::output::say!("[OK] SNAP boards loaded into parts.db");
    Ok(())
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) }
}
