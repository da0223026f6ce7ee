//! Projects: registered once, updated field by field, archived; every
//! change one write job like the sessions'.

use futures::FutureExt;
use serde::Serialize;

use super::error::SessionError;
use super::service::{SessionsService, load_project};
use super::store;
use super::{PlaneBinding, Project};
use crate::idempotency::IdempotencyKey;
use crate::pagination::split_page;
use crate::time::UnixMicros;

/// What RegisterProject needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewProject {
    pub id: String,
    pub repo_path: Option<String>,
    pub origin_url: Option<String>,
    pub display_name: Option<String>,
    pub coverage_threshold: f64,
    pub plane: Option<PlaneBinding>,
    pub required_ci_contexts: Vec<String>,
}

/// UpdateProject's changes: `Some` for each field in the mask.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectPatch {
    pub display_name: Option<String>,
    pub repo_path: Option<Option<String>>,
    pub origin_url: Option<Option<String>>,
    pub coverage_threshold: Option<f64>,
    pub plane: Option<Option<PlaneBinding>>,
    pub required_ci_contexts: Option<Vec<String>>,
}

impl ProjectPatch {
    pub const PATHS: &'static [&'static str] = &[
        "display_name",
        "repo_path",
        "origin_url",
        "coverage_threshold",
        "plane",
        "required_ci_contexts",
    ];
}

impl SessionsService {
    pub async fn register_project(
        &self,
        new: NewProject,
        request_id: Option<String>,
    ) -> Result<Project, SessionError> {
        let key = IdempotencyKey::new("sessions.register_project", request_id, &new);
        self.write(key, move |conn| {
            async move {
                if store::get_project(&mut *conn, &new.id).await?.is_some() {
                    return Err(SessionError::ProjectAlreadyExists(new.id));
                }
                let project = Project {
                    display_name: new.display_name.unwrap_or_else(|| new.id.clone()),
                    id: new.id,
                    repo_path: new.repo_path,
                    origin_url: new.origin_url,
                    register_time: UnixMicros::now(),
                    update_time: None,
                    archive_time: None,
                    coverage_threshold: new.coverage_threshold,
                    plane: new.plane,
                    required_ci_contexts: new.required_ci_contexts,
                };
                store::insert_project(conn, &project).await?;
                Ok(project)
            }
            .boxed()
        })
        .await
    }

    pub async fn get_project(&self, id: &str) -> Result<Project, SessionError> {
        store::get_project(&mut self.db.read().await?.conn(), id)
            .await?
            .ok_or_else(|| SessionError::ProjectNotFound(id.to_string()))
    }

    /// Projects by id; `next_after` continues the listing.
    pub async fn list_projects(
        &self,
        include_archived: bool,
        after: Option<String>,
        size: u32,
    ) -> Result<(Vec<Project>, Option<String>), SessionError> {
        let mut reader = self.db.read().await?;
        let projects = store::list_projects(
            &mut reader.conn(),
            include_archived,
            after.as_deref(),
            size + 1,
        )
        .await?;
        Ok(split_page(projects, size, |p| p.id.clone()))
    }

    pub async fn update_project(
        &self,
        id: String,
        patch: ProjectPatch,
    ) -> Result<Project, SessionError> {
        self.write(None, move |conn| {
            async move {
                let mut project = load_project(conn, &id).await?;
                if project.archive_time.is_some() {
                    return Err(SessionError::ProjectArchived(id));
                }
                let ProjectPatch {
                    display_name,
                    repo_path,
                    origin_url,
                    coverage_threshold,
                    plane,
                    required_ci_contexts,
                } = patch;
                if let Some(value) = display_name {
                    project.display_name = value;
                }
                if let Some(value) = repo_path {
                    project.repo_path = value;
                }
                if let Some(value) = origin_url {
                    project.origin_url = value;
                }
                if let Some(value) = coverage_threshold {
                    project.coverage_threshold = value;
                }
                if let Some(value) = plane {
                    project.plane = value;
                }
                if let Some(value) = required_ci_contexts {
                    project.required_ci_contexts = value;
                }
                if project.repo_path.is_none() && project.origin_url.is_none() {
                    let violations = crate::error::Violations::one(
                        "update_mask",
                        "would leave neither repo_path nor origin_url set",
                    );
                    return Err(SessionError::InvalidArgument(violations));
                }
                project.update_time = Some(UnixMicros::now());
                store::save_project(conn, &project).await?;
                Ok(project)
            }
            .boxed()
        })
        .await
    }

    pub async fn archive_project(&self, id: String) -> Result<Project, SessionError> {
        self.write(None, move |conn| {
            async move {
                let mut project = load_project(conn, &id).await?;
                if project.archive_time.is_none() {
                    let now = UnixMicros::now();
                    project.archive_time = Some(now);
                    project.update_time = Some(now);
                    store::save_project(conn, &project).await?;
                }
                Ok(project)
            }
            .boxed()
        })
        .await
    }
}
