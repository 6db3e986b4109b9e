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
