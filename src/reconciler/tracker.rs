//! One project's tracker, read: the Plane project's identifier, its states
//! resolved from the binding's state names, and its issues in those states.

use super::decide::TrackerState;
use super::plane::{Issue, PlaneClient, PlaneError};
use crate::sessions::PlaneBinding;

/// What polling one project found.
pub(super) enum Polled {
    /// The issues in the mapped states, with what each state means.
    Issues {
        identifier: String,
        issues: Vec<(Issue, TrackerState)>,
    },
    /// State names the binding maps that Plane does not have.
    Unmapped(Vec<String>),
}

pub(super) async fn poll(
    plane: &PlaneClient,
    binding: &PlaneBinding,
) -> Result<Polled, PlaneError> {
    let (workspace, project) = (&binding.workspace_slug, &binding.plane_project_id);
    let identifier = plane.identifier(workspace, project).await?;
    let states = plane.states(workspace, project).await?;
    let or = |name: &str, default: &str| {
        if name.is_empty() {
            default.to_string()
        } else {
            name.to_string()
        }
    };
    let wanted = [
        (
            or(&binding.in_progress_state, "In Progress"),
            TrackerState::InProgress,
        ),
        (
            or(&binding.approved_state, "Approved"),
            TrackerState::Approved,
        ),
        (
            or(&binding.rejected_state, "Rejected"),
            TrackerState::Rejected,
        ),
    ];
    let mut mapped = Vec::new();
    let mut unmapped = Vec::new();
    for (name, meaning) in wanted {
        match states.iter().find(|s| s.name.eq_ignore_ascii_case(&name)) {
            Some(state) => mapped.push((state.id.clone(), meaning)),
            None => unmapped.push(format!("{name:?}")),
        }
    }
    if !unmapped.is_empty() {
        return Ok(Polled::Unmapped(unmapped));
    }
    let ids: Vec<&str> = mapped.iter().map(|(id, _)| id.as_str()).collect();
    let issues = plane
        .issues(workspace, project, &ids)
        .await?
        .into_iter()
        .filter_map(|issue| {
            let meaning = mapped.iter().find(|(id, _)| *id == issue.state_id)?.1;
            Some((issue, meaning))
        })
        .collect();
    Ok(Polled::Issues { identifier, issues })
}
