//! Proto <-> domain conversion of projects: RegisterProject's and
//! UpdateProject's requests, validated once and naming each bad field, and
//! the project as answers and event payloads carry it.

use super::convert::{finish, project_id};
use super::projects::{NewProject, ProjectPatch};
use super::{PlaneBinding, Project};
use crate::error::Violations;
use crate::pb;
use crate::time::UnixMicros;
use crate::validate::{self, short_text, update_mask_paths};

pub fn new_project(
    request: pb::RegisterProjectRequest,
) -> Result<(Option<String>, NewProject), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let project = request.project.unwrap_or_default();
    let new = NewProject {
        id: project_id(&mut v, "project.id", project.id),
        repo_path: repo_path(&mut v, "project.repo_path", project.repo_path),
        origin_url: short_text(&mut v, "project.origin_url", project.origin_url),
        display_name: short_text(&mut v, "project.display_name", project.display_name),
        coverage_threshold: coverage(
            &mut v,
            "project.coverage_threshold",
            project.coverage_threshold,
        ),
        plane: plane(&mut v, "project.plane", project.plane),
        required_ci_contexts: contexts(
            &mut v,
            "project.required_ci_contexts",
            project.required_ci_contexts,
        ),
    };
    if new.repo_path.is_none() && new.origin_url.is_none() && v.is_empty() {
        v.add(
            "project.repo_path",
            "either repo_path or origin_url is required",
        );
    }
    finish(v, (request_id, new))
}

pub fn project_patch(
    request: pb::UpdateProjectRequest,
) -> Result<(String, ProjectPatch), Violations> {
    let mut v = Violations::new();
    let project = request.project.unwrap_or_default();
    let id = project_id(&mut v, "project.id", project.id);
    let mut patch = ProjectPatch::default();
    for path in update_mask_paths(&mut v, request.update_mask, ProjectPatch::PATHS) {
        match path {
            "display_name" => {
                patch.display_name = Some(
                    short_text(&mut v, "project.display_name", project.display_name.clone())
                        .unwrap_or_else(|| id.clone()),
                )
            }
            "repo_path" => {
                patch.repo_path = Some(repo_path(
                    &mut v,
                    "project.repo_path",
                    project.repo_path.clone(),
                ))
            }
            "origin_url" => {
                patch.origin_url = Some(short_text(
                    &mut v,
                    "project.origin_url",
                    project.origin_url.clone(),
                ))
            }
            "coverage_threshold" => {
                patch.coverage_threshold = Some(coverage(
                    &mut v,
                    "project.coverage_threshold",
                    project.coverage_threshold,
                ))
            }
            "plane" => patch.plane = Some(plane(&mut v, "project.plane", project.plane.clone())),
            "required_ci_contexts" => {
                patch.required_ci_contexts = Some(contexts(
                    &mut v,
                    "project.required_ci_contexts",
                    project.required_ci_contexts.clone(),
                ))
            }
            _ => {}
        }
    }
    finish(v, (id, patch))
}

pub fn project_key(v: &mut Violations, id: String) -> String {
    project_id(v, "project_id", id)
}

fn repo_path(v: &mut Violations, field: &str, path: String) -> Option<String> {
    let path = short_text(v, field, path)?;
    if !path.starts_with('/') {
        v.add(field, "must be an absolute path");
        return None;
    }
    Some(path)
}

fn coverage(v: &mut Violations, field: &str, value: f64) -> f64 {
    if !(0.0..=100.0).contains(&value) {
        v.add(field, "must be a percentage from 0 to 100");
        return 0.0;
    }
    value
}

fn plane(v: &mut Violations, field: &str, plane: Option<pb::PlaneBinding>) -> Option<PlaneBinding> {
    let plane = plane?;
    let mut required = |name: &str, value: String| {
        let value = short_text(v, &format!("{field}.{name}"), value);
        if value.is_none() {
            v.add(format!("{field}.{name}"), "is required");
        }
        value.unwrap_or_default()
    };
    let workspace_slug = required("workspace_slug", plane.workspace_slug);
    let plane_project_id = required("plane_project_id", plane.plane_project_id);
    let mut state = |name: &str, value: String, default: &str| {
        short_text(v, &format!("{field}.{name}"), value).unwrap_or_else(|| default.to_string())
    };
    Some(PlaneBinding {
        workspace_slug,
        plane_project_id,
        in_progress_state: state("in_progress_state", plane.in_progress_state, "In Progress"),
        approved_state: state("approved_state", plane.approved_state, "Approved"),
        rejected_state: state("rejected_state", plane.rejected_state, "Rejected"),
    })
}

fn contexts(v: &mut Violations, field: &str, contexts: Vec<String>) -> Vec<String> {
    if contexts.len() > 50 {
        v.add(field, "at most 50 contexts");
        return Vec::new();
    }
    contexts
        .into_iter()
        .filter_map(|context| short_text(v, field, context))
        .collect()
}

pub fn project_to_pb(project: Project) -> pb::Project {
    pb::Project {
        id: project.id,
        repo_path: project.repo_path.unwrap_or_default(),
        origin_url: project.origin_url.unwrap_or_default(),
        display_name: project.display_name,
        register_time: Some(project.register_time.to_timestamp()),
        update_time: project.update_time.map(UnixMicros::to_timestamp),
        archive_time: project.archive_time.map(UnixMicros::to_timestamp),
        coverage_threshold: project.coverage_threshold,
        plane: project.plane.map(|plane| pb::PlaneBinding {
            workspace_slug: plane.workspace_slug,
            plane_project_id: plane.plane_project_id,
            in_progress_state: plane.in_progress_state,
            approved_state: plane.approved_state,
            rejected_state: plane.rejected_state,
        }),
        required_ci_contexts: project.required_ci_contexts,
    }
}

pub fn project_from_payload(json: &str) -> Result<pb::Project, serde_json::Error> {
    serde_json::from_str(json).map(project_to_pb)
}
