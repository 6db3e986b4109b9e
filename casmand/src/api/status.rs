//! The one mapping from daemon errors to gRPC status codes.

use tonic::{Code, Status};

use crate::error::{Error, Kind};

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match e.kind() {
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::NotFound => Code::NotFound,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::ResourceExhausted => Code::ResourceExhausted,
            Kind::Unavailable => Code::Unavailable,
            Kind::PermissionDenied => Code::PermissionDenied,
            Kind::Aborted => Code::Aborted,
            Kind::Internal => Code::Internal,
        };
        Status::new(code, capped(e.to_string()))
    }
}

/// The longest message a reply carries. It travels in the `grpc-message`
/// trailer, and an HTTP/2 header block larger than the peer accepts (16 KiB
/// by default) breaks the whole reply ("h2 protocol error"); longer messages
/// are cut at a character boundary and say so.
pub const MAX_MESSAGE: usize = 4096;

fn capped(mut msg: String) -> String {
    if msg.len() <= MAX_MESSAGE {
        return msg;
    }
    let mut end = MAX_MESSAGE;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg.truncate(end);
    msg.push_str(" … (message cut)");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Status::from(Error::invalid("x")).code(), Code::InvalidArgument);
        assert_eq!(Status::from(Error::refused("x")).code(), Code::FailedPrecondition);
        assert_eq!(Status::from(Error::ResourceExhausted("q".into())).code(), Code::ResourceExhausted);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let s = Status::from(Error::invalid("é".repeat(10_000)));
        assert!(s.message().len() <= MAX_MESSAGE + 32, "{}", s.message().len());
        assert!(s.message().ends_with("(message cut)"));
    }
}
