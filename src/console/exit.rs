//! What a failed console command prints and how it exits: one line on
//! stderr with the gRPC status code, the ErrorInfo reason and the fields a
//! BadRequest names, and an exit code per kind of failure, so scripts can
//! tell "not there" from "not allowed" from "bosun is down".
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | any other failure (INTERNAL, RESOURCE_EXHAUSTED, OUT_OF_RANGE, ...) |
//! | 2 | usage: a bad command line (clap) or INVALID_ARGUMENT |
//! | 3 | NOT_FOUND |
//! | 4 | refused: UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION, ALREADY_EXISTS |
//! | 5 | unavailable: bosun cannot be reached, UNAVAILABLE, DEADLINE_EXCEEDED |

use std::process::ExitCode;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Why a console command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// bosun answered with an error.
    #[error("{}", status_line(.0))]
    Status(#[from] Status),
    /// bosun could not be reached (or the TLS setup is wrong).
    #[error("UNAVAILABLE: cannot reach {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    /// A command-line value clap could not check (e.g. a file to read).
    #[error("usage: {0}")]
    Usage(String),
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The exit code of each kind of failure (see the module docs).
pub mod code {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const UNAVAILABLE: u8 = 5;
}

impl ConsoleError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Status(status) => code_of(status.code()),
            Self::Unreachable { .. } => code::UNAVAILABLE,
            Self::Usage(_) => code::USAGE,
            Self::Output(_) => code::OTHER,
        })
    }
}

/// The exit code of a gRPC status code.
pub fn code_of(status: Code) -> u8 {
    match status {
        Code::InvalidArgument => code::USAGE,
        Code::NotFound => code::NOT_FOUND,
        Code::Unauthenticated
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::AlreadyExists => code::REFUSED,
        Code::Unavailable | Code::DeadlineExceeded => code::UNAVAILABLE,
        _ => code::OTHER,
    }
}

/// `CODE (REASON): message; bad fields: a: why, b: why` on one line.
fn status_line(status: &Status) -> String {
    let details = status.get_error_details();
    let mut line = code_name(status.code()).to_string();
    if let Some(info) = details.error_info() {
        line.push_str(&format!(" ({})", info.reason));
    }
    let message = one_line(status.message());
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    if let Some(bad) = details.bad_request() {
        let fields: Vec<String> = bad
            .field_violations
            .iter()
            .map(|v| format!("{}: {}", v.field, one_line(&v.description)))
            .collect();
        if !fields.is_empty() {
            line.push_str("; bad fields: ");
            line.push_str(&fields.join(", "));
        }
    }
    line
}

/// The canonical name of a gRPC code, as grpcurl and the specs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn exit_codes_by_status_code() {
        let cases = [
            (Code::InvalidArgument, 2),
            (Code::NotFound, 3),
            (Code::Unauthenticated, 4),
            (Code::PermissionDenied, 4),
            (Code::FailedPrecondition, 4),
            (Code::AlreadyExists, 4),
            (Code::Unavailable, 5),
            (Code::DeadlineExceeded, 5),
            (Code::Internal, 1),
            (Code::OutOfRange, 1),
            (Code::Unknown, 1),
        ];
        for (status, want) in cases {
            assert_eq!(code_of(status), want, "{status:?}");
        }
    }

    #[test]
    fn a_status_is_one_line_with_reason_and_bad_fields() {
        let mut details = ErrorDetails::with_error_info("INVALID_ARGUMENT", "bosun", []);
        details.set_bad_request(vec![
            FieldViolation::new("search", "must be at most\n256 characters"),
            FieldViolation::new("order_by", "unknown enum value 9"),
        ]);
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request:\n2 bad fields",
            details,
        );
        assert_eq!(
            ConsoleError::from(status).to_string(),
            "INVALID_ARGUMENT (INVALID_ARGUMENT): invalid request: 2 bad fields; bad fields: \
             search: must be at most 256 characters, order_by: unknown enum value 9"
        );
        let bare = ConsoleError::from(Status::not_found(""));
        assert_eq!(bare.to_string(), "NOT_FOUND");
    }
}
