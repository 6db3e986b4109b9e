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
    /// A CAsMan config.yaml to read as a layer above the configuration file
    /// (default: one found beside the databases).
    #[arg(long, value_name = "FILE")]
    config_yaml: Option<PathBuf>,
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
    /// Tell `[notify]` (command, webhook) that the systemd unit UNIT failed,
    /// and exit: for `OnFailure=` (systemd/casman-notify-failure@.service).
    #[arg(long, value_name = "UNIT")]
    notify_failed: Option<String>,
    /// Print the man page (roff) and exit; used when packaging.
    #[arg(long, hide = true)]
    man: bool,
}

fn main() -> ExitCode {
    casmand::memory::limit_arenas();
    let args = Args::parse();
    if args.man {
        return print_man();
    }
    casmand::logging::init();
    let overrides = Overrides {
        data_dir: args.data_dir,
        socket: args.socket,
        socket_mode: args.socket_mode,
        site_id: args.site_id,
        config_yaml: args.config_yaml,
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
    if let Some(unit) = args.notify_failed {
        return notify_failed(&loaded.config, &unit);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casmand: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers are installed before the socket is bound, so a SIGTERM
    // that arrives during start-up still means a clean shutdown.
    let result = runtime.block_on(async {
        let shutdown = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("casmand: cannot install signal handlers: {e}");
                return Err(None);
            }
        };
        casmand::run(loaded, shutdown).await.map_err(Some)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Some(e)) => {
            eprintln!("casmand: {e}");
            ExitCode::FAILURE
        }
        Err(None) => ExitCode::FAILURE,
    }
}

/// `casmand --notify-failed UNIT`: one `daemon_failed` event through the
/// configured command and webhook, with what systemd says of the failure
/// (`MONITOR_*`); exit status 1 when it could not be told.
fn notify_failed(config: &config::Config, unit: &str) -> ExitCode {
    use casmand::notify;
    let cfg = &config.notify;
    if cfg.command.is_none() && cfg.webhook.is_none() {
        eprintln!(
            "casmand: --notify-failed: neither notify.command nor notify.webhook is set; nothing to tell"
        );
        return ExitCode::FAILURE;
    }
    let monitor: Vec<(String, String)> = ["SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS", "INVOCATION_ID"]
        .iter()
        .filter_map(|k| {
            let v = std::env::var(format!("MONITOR_{k}")).ok().filter(|v| !v.is_empty())?;
            Some((k.to_ascii_lowercase(), v))
        })
        .collect();
    let event = notify::Event::daemon_failed(unit, &monitor, jiff::Timestamp::now());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casmand: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = runtime.block_on(notify::tell_now(cfg, &config.site_id, &event));
    for f in &failed {
        eprintln!("casmand: --notify-failed: {f}");
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `casmand --man`: the man page (section 8), generated from the flags above.
fn print_man() -> ExitCode {
    use clap::CommandFactory;
    match clap_mangen::Man::new(Args::command()).section("8").render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("casmand: writing man page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Installs SIGTERM and SIGINT handlers now; the returned future completes
/// on either signal.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
