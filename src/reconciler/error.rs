//! The Reconciler domain's errors and their codes and reasons.

use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcilerError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("every side asked for is switched off")]
    Disabled,
    #[error("a reconciler pass is already running (run {run_id})")]
    PassRunning { run_id: i64 },
    #[error("the pass stopped unexpectedly: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for ReconcilerError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl ServiceError for ReconcilerError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::Disabled => ErrorCode::FailedPrecondition,
            Self::PassRunning { .. } => ErrorCode::Aborted,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::Disabled => "RECONCILER_DISABLED",
            Self::PassRunning { .. } => "RECONCILER_PASS_RUNNING",
            Self::Internal(_) => "INTERNAL",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::PassRunning { run_id } => vec![("run_id", run_id.to_string())],
            _ => Vec::new(),
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations.as_slice(),
            _ => &[],
        }
    }
}
