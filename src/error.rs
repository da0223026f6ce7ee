//! One error model for every service (SPEC §3).
//!
//! Each domain has its own error enum and implements [`ServiceError`] for it:
//! a small set of codes, an UPPER_SNAKE_CASE reason, optional metadata and
//! field violations. [`to_status`] is the one place where any of them becomes
//! a `tonic::Status` with `google.rpc.ErrorInfo` (domain `bosun`) and, for bad
//! input, `google.rpc.BadRequest`. Internal causes are logged here and never
//! sent to clients.

use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every bosun error.
pub const ERROR_DOMAIN: &str = "bosun";

/// The status codes bosun answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unavailable,
    Unimplemented,
    Unauthenticated,
    PermissionDenied,
    ResourceExhausted,
    DeadlineExceeded,
    Internal,
}

impl ErrorCode {
    fn grpc(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Aborted => Code::Aborted,
            Self::OutOfRange => Code::OutOfRange,
            Self::Unavailable => Code::Unavailable,
            Self::Unimplemented => Code::Unimplemented,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::ResourceExhausted => Code::ResourceExhausted,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal => Code::Internal,
        }
    }
}

/// One bad field of a request, named by its path in the request message
/// (e.g. `lesson.lesson_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// At most this many violations are kept (the rest are counted), and each
/// description is cut to [`MAX_DESCRIPTION`] characters: an answer to bad
/// input stays small enough for HTTP/2 headers however bad the input.
pub const MAX_VIOLATIONS: usize = 10;
/// Longest violation description kept, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// Collects every bad field of a request, so one answer names them all (up
/// to [`MAX_VIOLATIONS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    kept: Vec<FieldViolation>,
    /// How many more there were.
    dropped: usize,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.kept.len() >= MAX_VIOLATIONS {
            self.dropped += 1;
            return;
        }
        let mut description = description.into();
        if let Some((cut, _)) = description.char_indices().nth(MAX_DESCRIPTION) {
            description.truncate(cut);
            description.push_str("...");
        }
        self.kept.push(FieldViolation {
            field: field.into(),
            description,
        });
    }

    /// A single violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::new();
        violations.add(field, description);
        violations
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn as_slice(&self) -> &[FieldViolation] {
        &self.kept
    }

    /// `Ok(value)` when nothing was wrong, else the violations.
    pub fn finish<T>(self, value: T) -> Result<T, Violations> {
        if self.kept.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .kept
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        write!(f, "invalid request: {}", parts.join("; "))?;
        if self.dropped > 0 {
            write!(f, "; and {} more", self.dropped)?;
        }
        Ok(())
    }
}

/// What every domain error tells the one mapping to `Status`.
pub trait ServiceError: std::error::Error {
    fn code(&self) -> ErrorCode;
    /// UPPER_SNAKE_CASE, stable: clients branch on it.
    fn reason(&self) -> &'static str;
    /// ErrorInfo metadata, e.g. the oldest seq for CURSOR_COMPACTED.
    fn metadata(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Field violations for INVALID_ARGUMENT.
    fn violations(&self) -> &[FieldViolation] {
        &[]
    }
    /// How long the client should wait before retrying: sent as
    /// `google.rpc.RetryInfo` and as `grpc-retry-pushback-ms`.
    fn retry_delay(&self) -> Option<Duration> {
        None
    }
    /// Whether the cause is internal: then the client gets a generic message
    /// and the error is logged. By default, INTERNAL and UNAVAILABLE are.
    fn is_internal(&self) -> bool {
        matches!(self.code(), ErrorCode::Internal | ErrorCode::Unavailable)
    }
}

/// The one place a domain error becomes a gRPC status.
pub fn to_status<E: ServiceError>(err: E) -> Status {
    let code = err.code();
    let message = if err.is_internal() {
        tracing::error!(reason = err.reason(), error = %ErrorChain(&err), "request failed");
        match code {
            ErrorCode::Unavailable => "temporarily unavailable; retry later".to_string(),
            _ => "internal error; see the server log".to_string(),
        }
    } else {
        err.to_string()
    };
    let metadata = err
        .metadata()
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect::<std::collections::HashMap<_, _>>();
    let mut details = ErrorDetails::new();
    details.set_error_info(err.reason(), ERROR_DOMAIN, metadata);
    for violation in err.violations() {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    let retry_delay = err.retry_delay();
    if retry_delay.is_some() {
        details.set_retry_info(retry_delay);
    }
    let mut status = Status::with_error_details(code.grpc(), message, details);
    if let Some(delay) = retry_delay {
        status.metadata_mut().insert(
            "grpc-retry-pushback-ms",
            tonic::metadata::MetadataValue::from(delay.as_millis() as u64),
        );
    }
    status
}

/// Displays an error with its chain of sources, for logs.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// What an OVERLOADED answer asks the client to wait before retrying.
const OVERLOADED_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Errors that belong to no domain: bad input caught by shared validators,
/// a refused caller, a server shutting down or over its limits.
#[derive(Debug, thiserror::Error)]
pub enum CommonError {
    #[error("{0}")]
    InvalidArgument(Violations),
    /// A request that does not decode as its message (see `crate::codec`).
    #[error("{0}")]
    MalformedMessage(Violations),
    #[error("missing or malformed bearer token")]
    Unauthenticated,
    #[error("the {role} role may not call {method}")]
    PermissionDenied { role: &'static str, method: String },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A limit of `[limits]` is reached: the call is refused at once, not
    /// queued.
    #[error("the server is busy: {limit} = {max} reached; retry shortly")]
    Overloaded { limit: &'static str, max: usize },
    /// The client's deadline or `limits.request_timeout` passed first; the
    /// call's work was dropped.
    #[error("the call took longer than its deadline of {0:?}")]
    DeadlineExceeded(Duration),
}

impl ServiceError for CommonError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) | Self::MalformedMessage(_) => ErrorCode::InvalidArgument,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            Self::ShuttingDown => ErrorCode::Unavailable,
            Self::Overloaded { .. } => ErrorCode::ResourceExhausted,
            Self::DeadlineExceeded(_) => ErrorCode::DeadlineExceeded,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::MalformedMessage(_) => "MALFORMED_MESSAGE",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Overloaded { .. } => "OVERLOADED",
            Self::DeadlineExceeded(_) => "DEADLINE_EXCEEDED",
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Overloaded { limit, max } => {
                vec![("limit", limit.to_string()), ("max", max.to_string())]
            }
            _ => Vec::new(),
        }
    }

    fn retry_delay(&self) -> Option<Duration> {
        match self {
            Self::Overloaded { .. } => Some(OVERLOADED_RETRY_DELAY),
            _ => None,
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) | Self::MalformedMessage(violations) => {
                violations.as_slice()
            }
            _ => &[],
        }
    }

    fn is_internal(&self) -> bool {
        false
    }
}

impl From<Violations> for CommonError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_never_reach_the_client() {
        let cause = sqlx::Error::Protocol("SELECT secret FROM /var/lib/bosun.db".into());
        for (err, code, message) in [
            (
                crate::storage::StoreError::Internal(cause),
                Code::Internal,
                "internal error; see the server log",
            ),
            (
                crate::storage::StoreError::Closed,
                Code::Unavailable,
                "temporarily unavailable; retry later",
            ),
        ] {
            let status = to_status(err);
            assert_eq!((status.code(), status.message()), (code, message));
            let info = status.get_error_details().error_info().cloned().unwrap();
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
        let status = to_status(CommonError::ShuttingDown);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "the server is shutting down");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "SHUTTING_DOWN"
        );
    }

    #[test]
    fn bad_input_names_every_field() {
        let mut violations = Violations::new();
        violations.add("a", "is required");
        violations.add("b.c", "is too long");
        let status = to_status(CommonError::InvalidArgument(violations));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["a", "b.c"]);
        assert!(status.message().contains("b.c: is too long"));
    }

    #[test]
    fn bad_input_answers_stay_small() {
        let mut violations = Violations::new();
        for i in 0..5000 {
            violations.add(format!("items[{i}]"), "x".repeat(100_000));
        }
        let kept = violations.as_slice();
        assert_eq!(kept.len(), MAX_VIOLATIONS);
        assert!(
            kept.iter()
                .all(|v| v.description.chars().count() <= MAX_DESCRIPTION + 3)
        );
        let status = to_status(CommonError::InvalidArgument(violations));
        assert!(status.message().ends_with("; and 4990 more"));
        assert!(status.message().len() < 4096, "{}", status.message().len());
        assert!(status.details().len() < 8192, "{}", status.details().len());
    }
}
