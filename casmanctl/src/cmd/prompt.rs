//! Asking a person at a terminal. Prompts go to stderr so stdout stays clean.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CtlError;

/// True when stdin is a terminal (a person can answer).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Prints `question` on stderr and reads one trimmed line from stdin.
pub fn ask(question: &str) -> Result<String, CtlError> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CtlError::Io(format!("reading stdin: {e}")))?;
    Ok(line.trim().to_owned())
}

/// Prints a prompt on stderr without a newline.
pub fn show(prompt: &str) {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
}

/// Asks a person to confirm the destructive `what` (e.g. "restoring
/// parts.db in place") unless `yes` (`--yes`). Without a terminal there is
/// nobody to ask: the command is refused unless `--yes` was given.
pub fn confirm(what: &str, yes: bool) -> Result<(), CtlError> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        return Err(CtlError::Usage(format!(
            "{what} needs confirmation: run it on a terminal, or pass --yes (nothing was changed)"
        )));
    }
    let answer = ask(&format!("{what}. Continue? [y/N] "))?;
    if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CtlError::Usage("not confirmed; nothing was changed".into()))
    }
}
