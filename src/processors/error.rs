//! The Processors domain's errors and their codes and reasons.

use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("unknown processor {name:?}; the processors are: {}", known.join(", "))]
    UnknownProcessor {
        name: String,
        known: Vec<String>,
        /// The request field that named it.
        violation: [FieldViolation; 1],
    },
    #[error("processor {0:?} is disabled in the configuration")]
    Disabled(String),
    #[error("a pass of processor {0:?} is under way; try again when it has ended")]
    Running(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProcessorError {
    pub fn unknown(field: &str, name: &str, known: Vec<String>) -> Self {
        let violation = FieldViolation {
            field: field.to_string(),
            description: format!(
                "unknown processor; the processors are: {}",
                known.join(", ")
            ),
        };
        Self::UnknownProcessor {
            name: name.to_string(),
            known,
            violation: [violation],
        }
    }
}

impl From<Violations> for ProcessorError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl ServiceError for ProcessorError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) | Self::UnknownProcessor { .. } => ErrorCode::InvalidArgument,
            Self::Disabled(_) => ErrorCode::FailedPrecondition,
            Self::Running(_) => ErrorCode::Aborted,
            Self::ShuttingDown => ErrorCode::Unavailable,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::UnknownProcessor { .. } => "UNKNOWN_PROCESSOR",
            Self::Disabled(_) => "PROCESSOR_DISABLED",
            Self::Running(_) => "PROCESSOR_RUNNING",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::UnknownProcessor { known, .. } => vec![("known", known.join(","))],
            Self::Disabled(name) | Self::Running(name) => vec![("processor", name.clone())],
            _ => Vec::new(),
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations.as_slice(),
            Self::UnknownProcessor { violation, .. } => violation,
            _ => &[],
        }
    }

    fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}
