//! casmanctl: a thin client of casmand over its Unix socket.

mod cli;
mod client;
mod cmd;
mod error;
mod listing;
mod output;
#[cfg(test)]
mod output_snapshots;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    cli::{Cli, Color, Command},
    client::Conn,
    error::CtlError,
};

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    match cli.color {
        Color::Always => anstream::ColorChoice::Always.write_global(),
        Color::Never => anstream::ColorChoice::Never.write_global(),
        Color::Auto => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casmanctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_closed_output() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("casmanctl: {}", output::human(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Lets `casmanctl ... | head` end quietly. SIGPIPE stays ignored (Rust's
/// default), so that casmand closing the socket is an error with a message
/// rather than a silent death (exit 141); printing to a closed stdout then
/// panics with a broken pipe, which ends the process quietly with 0.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    let epipe = error::broken_pipe_text();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if text.contains("failed printing to stdout") && text.contains(&epipe) {
            std::process::exit(0);
        }
        default(info);
    }));
}

async fn dispatch(cli: Cli) -> Result<(), CtlError> {
    match cli.command {
        Command::Completions { shell } => {
            cmd::meta::completions(shell);
            Ok(())
        }
        Command::Man => cmd::meta::man(),
        Command::Commands => {
            cmd::meta::list_commands();
            Ok(())
        }
        command => {
            let conn = Conn::open(cli.socket, cli.operator, cli.timeout).await?;
            match command {
                Command::Status { check } => cmd::daemon::status(&conn, cli.json, check).await,
                Command::Config => cmd::daemon::config(&conn, cli.json).await,
                Command::Parts(c) => cmd::parts::run(&conn, c, cli.json).await,
                Command::Database(c) => cmd::database::run(&conn, c, cli.json).await,
                Command::Positions(c) => cmd::positions::run(&conn, c, cli.json).await,
                Command::Grid(c) => cmd::grid::run(&conn, c, cli.json).await,
                Command::Snap(c) => cmd::snap::run(&conn, c, cli.json).await,
                Command::Scan(c) => cmd::scan::run(&conn, c, cli.json).await,
                Command::Sync(c) => cmd::sync::run(&conn, c, cli.json).await,
                Command::Labels(a) => cmd::labels::labels(&conn, a, cli.json).await,
                Command::Barcode(c) => cmd::labels::barcode(&conn, c, cli.json).await,
                Command::Chain { part, at } => cmd::scan::chain(&conn, part, &at, cli.json).await,
                Command::History { part } => cmd::scan::history(&conn, part, cli.json).await,
                Command::Visualize(c) => cmd::scan::visualize(&conn, c, cli.json).await,
                Command::Export(c) => cmd::export::run(&conn, c, cli.json).await,
                Command::Connections { part, part_type, at } => {
                    cmd::current::connections(&conn, part, part_type, &at, cli.json).await
                }
                Command::Chains { complete, at } => {
                    cmd::current::chains(&conn, complete, &at, cli.json).await
                }
                Command::Changes(a) => cmd::changes::run(&conn, a, cli.json).await,
                Command::Completions { .. } | Command::Man | Command::Commands => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
