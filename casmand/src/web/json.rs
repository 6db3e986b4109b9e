//! JSON answers of the scanner and admin APIs: `{"ok": true, ...}`, or
//! `{"ok": false, "error": <message naming the value and the rule>,
//! "kind": ...}` with an HTTP status that says the same.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::error::{Error, Kind};

/// A request that failed; the message is the domain's.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status and a short word for the technician for each kind of error.
pub fn status_of(e: &Error) -> (StatusCode, &'static str) {
    match e.kind() {
        Kind::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid"),
        Kind::NotFound => (StatusCode::NOT_FOUND, "unknown"),
        Kind::AlreadyExists => (StatusCode::CONFLICT, "exists"),
        Kind::FailedPrecondition => (StatusCode::CONFLICT, "refused"),
        Kind::ResourceExhausted => (StatusCode::INSUFFICIENT_STORAGE, "quota"),
        Kind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        Kind::PermissionDenied => (StatusCode::FORBIDDEN, "denied"),
        Kind::Aborted => (StatusCode::CONFLICT, "aborted"),
        Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = status_of(&self.0);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "web request failed");
        }
        (status, Json(json!({"ok": false, "kind": kind, "error": self.0.to_string()}))).into_response()
    }
}

/// A JSON result.
pub type ApiResult = Result<Json<serde_json::Value>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_conflicts_and_say_so() {
        assert_eq!(status_of(&Error::refused("x")), (StatusCode::CONFLICT, "refused"));
        assert_eq!(status_of(&Error::invalid("x")).0, StatusCode::BAD_REQUEST);
    }
}
