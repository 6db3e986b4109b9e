//! Commands that need no daemon: completions and the man page.

use clap::CommandFactory;

use crate::{cli::Cli, error::CtlError};

/// `casmanctl completions SHELL`
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "casmanctl", &mut std::io::stdout());
}

/// `casmanctl man`
pub fn man() -> Result<(), CtlError> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| CtlError::Io(format!("writing man page: {e}")))
}
