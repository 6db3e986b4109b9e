//! The command tree. Global flags work before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// casmanctl: the operators' command line for casman — parts, scans,
/// positions, SNAP boards, backups, restores, sync and status.
#[derive(Debug, Parser)]
#[command(name = "casmanctl", version, about, propagate_version = true)]
pub struct Cli {
    /// casmand's socket (default: $CASMAN_SOCKET, /run/casman/casmand.sock, or the per-user socket).
    #[arg(long, global = true, value_name = "PATH", env = "CASMAN_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// Operator name recorded with every change in the audit log.
    #[arg(long, global = true, value_name = "NAME", env = "CASMAN_OPERATOR")]
    pub operator: Option<String>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// How long to wait for a daemon that does not answer at all (hung, or
    /// stopped): `10s`, `1m`. Long work that the daemon is doing is not cut.
    #[arg(long, global = true, value_name = "DURATION", env = "CASMAN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--parts` / `--assembled`: the databases a command works on; neither
/// flag, or both, means both.
#[derive(Debug, Clone, Copy, Args)]
pub struct Databases {
    /// Only parts.db.
    #[arg(long)]
    pub parts: bool,
    /// Only assembled_casm.db.
    #[arg(long)]
    pub assembled: bool,
}

impl Databases {
    /// Both databases, or the one chosen.
    pub fn names(self) -> Vec<&'static str> {
        match (self.parts, self.assembled) {
            (true, false) => vec![PARTS_DB],
            (false, true) => vec![ASSEMBLED_DB],
            _ => vec![PARTS_DB, ASSEMBLED_DB],
        }
    }

    /// The `databases` field of a request: empty (the daemon's default,
    /// both) unless exactly one was chosen.
    pub fn request(self) -> Vec<String> {
        if self.parts == self.assembled {
            return Vec::new();
        }
        self.names().into_iter().map(str::to_owned).collect()
    }
}

/// File name of the parts database.
pub const PARTS_DB: &str = "parts.db";
/// File name of the assembly database.
pub const ASSEMBLED_DB: &str = "assembled_casm.db";

/// `sync merge --prefer` values: which side wins conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefer {
    /// This site's rows.
    Local,
    /// The other site's rows.
    Remote,
}

impl Prefer {
    /// The name the API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefer::Local => "local",
            Prefer::Remote => "remote",
        }
    }
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when writing to a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the daemon's status: version, uptime, paths, backend, databases,
    /// the backups' state and health.
    Status {
        /// Check the backups' health, for cron and monitoring plugins: print
        /// one line per problem (a failing backup waiting for a retry, a
        /// write older than `health.backup_stale_after` not yet backed up)
        /// and exit 1, or print "ok" and exit 0. With --json, print the
        /// status and exit the same way.
        #[arg(long)]
        check: bool,
    },
    /// Show the daemon's effective configuration (secrets redacted).
    Config,
    /// Parts inventory: generate, list, show, count, search.
    #[command(subcommand)]
    Parts(crate::cmd::parts::PartsCmd),
    /// Whole databases: print, clear, adoption report.
    #[command(subcommand)]
    Database(crate::cmd::database::DatabaseCmd),
    /// Antenna grid positions: assign, remove, show, list, the core grid.
    #[command(subcommand)]
    Positions(crate::cmd::positions::PositionsCmd),
    /// The array grid: generated coordinates (grid_positions.csv) and an SVG plot.
    #[command(subcommand)]
    Grid(crate::cmd::grid::GridCmd),
    /// SNAP boards and ports: list, show, port, generate-csv.
    #[command(subcommand)]
    Snap(crate::cmd::snap::SnapCmd),
    /// Barcode labels of a range of parts: PDF sheets, or PNG/SVG images.
    Labels(crate::cmd::labels::LabelsArgs),
    /// CAsMan's label commands: `barcode printpages`.
    #[command(subcommand)]
    Barcode(crate::cmd::labels::BarcodeCmd),
    /// Assembly scans: connect, disconnect, interactive scanning, remove.
    #[command(subcommand)]
    Scan(crate::cmd::scan::ScanCmd),
    /// The whole chain through a part, antenna to SNAP port, with board details.
    Chain {
        /// Any part of the chain (or a SNAP port).
        part: String,
        #[command(flatten)]
        at: AsOf,
    },
    /// Every connect/disconnect event touching a part, newest first.
    History {
        /// The part.
        part: String,
    },
    /// Every current connection, as data (`--json` for scripts).
    Connections {
        /// Only connections of this part.
        #[arg(long, value_name = "PART")]
        part: Option<String>,
        /// Only connections with an end of this type (ANTENNA, LNA, ..., SNAP).
        #[arg(long = "type", value_name = "TYPE")]
        part_type: Option<String>,
        #[command(flatten)]
        at: AsOf,
    },
    /// Every chain of current connections, as data: parts with types and
    /// polarizations, SNAP port, board and packet index (`--json` for scripts).
    Chains {
        /// Only chains that reach a SNAP port.
        #[arg(long)]
        complete: bool,
        #[command(flatten)]
        at: AsOf,
    },
    /// What changed between two times (parts, scans, positions, boards,
    /// coordinates, clears, conflicts), or every change as it commits (`--follow`).
    Changes(crate::cmd::changes::ChangesArgs),
    /// Views of the assembly.
    #[command(subcommand)]
    Visualize(crate::cmd::scan::VisualizeCmd),
    /// Exports for the science: the correlator input map.
    #[command(subcommand)]
    Export(crate::cmd::export::ExportCmd),
    /// Backups and sync: backup, list, restore, verify.
    #[command(subcommand)]
    Sync(crate::cmd::sync::SyncCmd),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of casmanctl.
    #[command(hide = true)]
    Man,
    /// List every command with a one-line description (also
    /// `casmanctl --list-commands`, as CAsMan's `casman --list-commands`).
    #[command(long_flag = "list-commands")]
    Commands,
}

/// `--at TIME`: a view of the array as it was at a past moment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AsOf {
    /// The state as of TIME instead of now: RFC 3339 (2025-01-15T10:30:00Z,
    /// or with an offset such as +02:00) or YYYY-MM-DD[ HH:MM[:SS]] in UTC.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

impl AsOf {
    /// The request's `as_of` field (empty: now).
    pub fn as_of(&self) -> String {
        self.at.clone().unwrap_or_default()
    }
}
