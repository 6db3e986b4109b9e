//! casmanctl's failures and their exit codes: 1 for refused requests and an
//! unreachable daemon, 2 for bad input (clap's usage errors also exit 2).

use casman_proto::client::ConnectError;
use tonic::Code;

/// A command's failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The daemon is not running or the socket is wrong.
    #[error("{}", connect_message(.0))]
    Connect(#[from] ConnectError),
    /// The daemon refused or failed the request.
    #[error("{}", rpc_message(.0))]
    Rpc(#[from] tonic::Status),
    /// Bad input found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// Local I/O (reading a CSV, writing output).
    #[error("{0}")]
    Io(String),
}

/// The daemon's message, or, when the connection itself failed under the
/// request (no answer to the keep-alive pings), what that means.
fn rpc_message(s: &tonic::Status) -> String {
    let lost = matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled);
    let mut text = s.message().to_ascii_lowercase();
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        text.push_str(&e.to_string().to_ascii_lowercase());
        src = e.source();
    }
    if let Some(why) = refusal(&text) {
        return why;
    }
    if lost && (text.contains("keep-alive") || text.contains("keepalive") || text.contains("timed out")) {
        return "casmand stopped answering (no reply within --timeout): it may be stopped, hung or overloaded".into();
    }
    if lost
        && ["broken pipe", "connection reset", "connection closed", "connection aborted", "go away", "goaway"]
            .iter()
            .any(|t| text.contains(t))
    {
        return format!(
            "casmand closed the connection before answering ({}): it may be at its connection limits \
             (server.max_connections, see its log) or restarting; retry",
            last_cause(s)
        );
    }
    s.message().to_owned()
}

/// What casmand said when it refused the connection (the debug text of its
/// GOAWAY, `connections::refuse_http2`), from the lower-cased error text.
fn refusal(text: &str) -> Option<String> {
    const MARKER: &str = "casmand refused the connection: ";
    let start = text.find(MARKER)?;
    let why = &text[start..];
    let end = why.find(['"', '\n']).unwrap_or(why.len());
    Some(why[..end].trim_end().replacen("casmand refused", "casmand closed", 1))
}

/// The innermost cause of `s`, for the message (e.g. "broken pipe").
fn last_cause(s: &tonic::Status) -> String {
    let mut last = s.message().to_owned();
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        last = e.to_string();
        src = e.source();
    }
    last
}

/// Why casmand could not be reached: refused by its limits, or not there.
fn connect_message(e: &ConnectError) -> String {
    match refusal(&e.reason.to_ascii_lowercase()) {
        Some(why) => why,
        None => format!(
            "{e}. Start the daemon with `casmand` (or `sudo systemctl start casmand`), or name its socket with --socket"
        ),
    }
}

/// The text of a broken pipe, as `std::io::Error` shows it ("Broken pipe
/// (os error 32)").
pub fn broken_pipe_text() -> String {
    std::io::Error::from_raw_os_error(nix::errno::Errno::EPIPE as i32).to_string()
}

impl CtlError {
    /// True when writing the output failed because its reader went away
    /// (`casmanctl ... | head`): not an error worth a word.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, CtlError::Io(m) if m.contains(&broken_pipe_text()))
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Rpc(s) if s.code() == Code::InvalidArgument => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_casmand_is_shown_in_its_words() {
        let text = r#"h2 protocol error: connection error received: enhance_your_calm (b"casmand refused the connection: too many connections from uid 1000 (server.max_connections_per_peer = 32)")"#;
        assert_eq!(
            refusal(&text.to_ascii_lowercase()).as_deref(),
            Some(
                "casmand closed the connection: too many connections from uid 1000 (server.max_connections_per_peer = 32)"
            )
        );
        let e = ConnectError { socket: "/run/casman.sock".into(), reason: text.into() };
        assert!(
            connect_message(&e).starts_with("casmand closed the connection: too many"),
            "{}",
            connect_message(&e)
        );
        let e = ConnectError { socket: "/run/casman.sock".into(), reason: "no such socket".into() };
        assert!(connect_message(&e).contains("Start the daemon"));
    }

    #[test]
    fn a_broken_pipe_on_output_is_recognized() {
        let e = CtlError::Io(format!("writing the list: {}", std::io::Error::from_raw_os_error(32)));
        assert!(e.is_closed_output());
        assert!(!CtlError::Io("reading stdin: no".into()).is_closed_output());
    }
}
