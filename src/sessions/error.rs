//! The Sessions domain's errors and their codes and reasons.

use super::SessionState;
use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::idempotency::{IdempotencyError, ReusedRequestId};
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("{0}")]
    RequestIdReused(ReusedRequestId),
    #[error("project {0:?} not found")]
    ProjectNotFound(String),
    #[error("project {0:?} already exists")]
    ProjectAlreadyExists(String),
    #[error("project {0:?} is archived")]
    ProjectArchived(String),
    #[error("repository {repo:?} matches several projects: {projects:?}")]
    RepoAmbiguous { repo: String, projects: Vec<String> },
    #[error("session {0:?} not found")]
    SessionNotFound(String),
    #[error("session {id:?} is {state:?}, not not_started")]
    NotSpawning { id: String, state: SessionState },
    #[error("session {0:?} has not started yet")]
    NotStarted(String),
    #[error("session {0:?} is terminated")]
    Terminated(String),
    #[error("session {id:?} is {state:?}; only done or terminated sessions can be restored")]
    NotTerminal { id: String, state: SessionState },
    #[error("session {0:?} kept neither agent_session_id nor prompt, so it cannot be restored")]
    NotRestorable(String),
    #[error("task {0} not found")]
    TaskNotFound(i64),
    #[error("task {task_id} belongs to project {project_id:?}")]
    TaskProjectMismatch { task_id: i64, project_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for SessionError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<IdempotencyError> for SessionError {
    fn from(err: IdempotencyError) -> Self {
        match err {
            IdempotencyError::Reused(request_id) => Self::RequestIdReused(request_id),
            IdempotencyError::Store(err) => Self::Store(err),
        }
    }
}

impl ServiceError for SessionError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) | Self::RequestIdReused(_) => ErrorCode::InvalidArgument,
            Self::ProjectNotFound(_) | Self::SessionNotFound(_) | Self::TaskNotFound(_) => {
                ErrorCode::NotFound
            }
            Self::ProjectAlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::ProjectArchived(_)
            | Self::RepoAmbiguous { .. }
            | Self::NotSpawning { .. }
            | Self::NotStarted(_)
            | Self::Terminated(_)
            | Self::NotTerminal { .. }
            | Self::NotRestorable(_)
            | Self::TaskProjectMismatch { .. } => ErrorCode::FailedPrecondition,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::RequestIdReused(_) => "REQUEST_ID_REUSED",
            Self::ProjectNotFound(_) => "PROJECT_NOT_FOUND",
            Self::ProjectAlreadyExists(_) => "PROJECT_ALREADY_EXISTS",
            Self::ProjectArchived(_) => "PROJECT_ARCHIVED",
            Self::RepoAmbiguous { .. } => "REPO_AMBIGUOUS",
            Self::SessionNotFound(_) => "SESSION_NOT_FOUND",
            Self::NotSpawning { .. } => "SESSION_NOT_SPAWNING",
            Self::NotStarted(_) => "SESSION_NOT_STARTED",
            Self::Terminated(_) => "SESSION_TERMINATED",
            Self::NotTerminal { .. } => "SESSION_NOT_TERMINAL",
            Self::NotRestorable(_) => "SESSION_NOT_RESTORABLE",
            Self::TaskNotFound(_) => "TASK_NOT_FOUND",
            Self::TaskProjectMismatch { .. } => "TASK_PROJECT_MISMATCH",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::ProjectNotFound(id)
            | Self::ProjectAlreadyExists(id)
            | Self::ProjectArchived(id) => {
                vec![("project_id", id.clone())]
            }
            Self::SessionNotFound(id)
            | Self::NotStarted(id)
            | Self::Terminated(id)
            | Self::NotRestorable(id) => {
                vec![("session_id", id.clone())]
            }
            Self::NotSpawning { id, state } | Self::NotTerminal { id, state } => {
                vec![
                    ("session_id", id.clone()),
                    ("state", state.as_str().to_string()),
                ]
            }
            Self::TaskNotFound(task_id) => vec![("task_id", task_id.to_string())],
            Self::TaskProjectMismatch {
                task_id,
                project_id,
            } => vec![
                ("task_id", task_id.to_string()),
                ("project_id", project_id.clone()),
            ],
            Self::RepoAmbiguous { projects, .. } => vec![("projects", projects.join(","))],
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
