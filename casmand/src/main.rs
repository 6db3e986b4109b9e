//! casmand's entry point: flags, configuration, logging, signals.

use std::{path::PathBuf, process::ExitCode};

use casmand::config::{self, Overrides};
use clap::Parser;

/// casman daemon: owns parts.db and assembled_casm.db, schedules backups,
/// serves the casman.v1 gRPC API on a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "casmand", version, about)]
struct Args {
    /// Configuration file (default: /etc/casman/casmand.toml if it exists).
    #[arg(long, short = 'c', value_name = "FILE", env = "CASMAN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory holding the databases (overrides configuration and environment).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Unix socket to serve on.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Socket permission bits, octal (e.g. 0660).
    #[arg(long, value_name = "MODE")]
    socket_mode: Option<String>,
    /// This site's identifier (default: host name).
    #[arg(long, value_name = "ID")]
    site_id: Option<String>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    casmand::logging::init();
    let overrides = Overrides {
        data_dir: args.data_dir,
        socket: args.socket,
        socket_mode: args.socket_mode,
        site_id: args.site_id,
    };
    let loaded = match config::load(args.config.as_deref(), &overrides) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("casmand: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        match toml::to_string_pretty(&loaded.config.redacted()) {
            Ok(t) => {
                print!("{t}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("casmand: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casmand: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(casmand::run(loaded, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "casmand failed");
            eprintln!("casmand: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
