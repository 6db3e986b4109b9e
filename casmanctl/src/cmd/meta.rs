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

/// `casmanctl commands` / `casmanctl --list-commands`: every command (and
/// sub-command) with the first line of its description.
pub fn list_commands() {
    let cli = Cli::command();
    let mut rows = Vec::new();
    for c in cli.get_subcommands().filter(|c| !c.is_hide_set()) {
        let about = |c: &clap::Command| c.get_about().map(|a| a.to_string()).unwrap_or_default();
        let first = |s: String| s.lines().next().unwrap_or_default().to_owned();
        if c.has_subcommands() {
            for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
                rows.push((format!("{} {}", c.get_name(), sub.get_name()), first(about(sub))));
            }
        } else {
            rows.push((c.get_name().to_owned(), first(about(c))));
        }
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, about) in rows {
        crate::output::say!("{name:<width$}  {about}");
    }
}
