//! The Tasks domain's errors and their codes and reasons.

use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::idempotency::{IdempotencyError, ReusedRequestId};
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("{0}")]
    RequestIdReused(ReusedRequestId),
    #[error("project {0:?} not found")]
    ProjectNotFound(String),
    #[error("project {0:?} is archived")]
    ProjectArchived(String),
    #[error("branch {branch:?} of {repo:?} is in use by task {task_id}, which is not done")]
    BranchInUse {
        repo: String,
        branch: String,
        task_id: i64,
    },
    #[error("task {0} not found")]
    TaskNotFound(String),
    #[error("task {0} is done")]
    TaskDone(i64),
    #[error("session {session_id:?} is not the stage session of task {task_id}")]
    SessionNotCurrent {
        task_id: i64,
        session_id: String,
        stage_session_id: String,
    },
    #[error("task {0} is not held")]
    TaskNotHeld(i64),
    #[error("the stage session {session_id:?} of task {task_id} is still active")]
    StageSessionActive { task_id: i64, session_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for TaskError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<IdempotencyError> for TaskError {
    fn from(err: IdempotencyError) -> Self {
        match err {
            IdempotencyError::Reused(request_id) => Self::RequestIdReused(request_id),
            IdempotencyError::Store(err) => Self::Store(err),
        }
    }
}

impl ServiceError for TaskError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) | Self::RequestIdReused(_) => ErrorCode::InvalidArgument,
            Self::ProjectNotFound(_) | Self::TaskNotFound(_) => ErrorCode::NotFound,
            Self::BranchInUse { .. } => ErrorCode::AlreadyExists,
            Self::ProjectArchived(_)
            | Self::TaskDone(_)
            | Self::SessionNotCurrent { .. }
            | Self::TaskNotHeld(_)
            | Self::StageSessionActive { .. } => ErrorCode::FailedPrecondition,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::RequestIdReused(_) => "REQUEST_ID_REUSED",
            Self::ProjectNotFound(_) => "PROJECT_NOT_FOUND",
            Self::ProjectArchived(_) => "PROJECT_ARCHIVED",
            Self::BranchInUse { .. } => "BRANCH_IN_USE",
            Self::TaskNotFound(_) => "TASK_NOT_FOUND",
            Self::TaskDone(_) => "TASK_DONE",
            Self::SessionNotCurrent { .. } => "SESSION_NOT_CURRENT",
            Self::TaskNotHeld(_) => "TASK_NOT_HELD",
            Self::StageSessionActive { .. } => "STAGE_SESSION_ACTIVE",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::ProjectNotFound(id) | Self::ProjectArchived(id) => {
                vec![("project_id", id.clone())]
            }
            Self::BranchInUse {
                repo,
                branch,
                task_id,
            } => vec![
                ("repo", repo.clone()),
                ("branch", branch.clone()),
                ("task_id", task_id.to_string()),
            ],
            Self::TaskNotFound(task) => vec![("task", task.clone())],
            Self::TaskDone(id) | Self::TaskNotHeld(id) => vec![("task_id", id.to_string())],
            Self::SessionNotCurrent {
                task_id,
                stage_session_id,
                ..
            } => vec![
                ("task_id", task_id.to_string()),
                ("stage_session_id", stage_session_id.clone()),
            ],
            Self::StageSessionActive {
                task_id,
                session_id,
            } => vec![
                ("task_id", task_id.to_string()),
                ("stage_session_id", session_id.clone()),
            ],
            _ => Vec::new(),
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations.as_slice(),
            Self::RequestIdReused(reused) => reused.violations(),
            _ => &[],
        }
    }
}
