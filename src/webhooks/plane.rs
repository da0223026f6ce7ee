//! Plane deliveries: an `issue` event (created or updated) is read into an
//! [`IssueEvent`], and the project's state mapping (`Project.plane`: the
//! names of its In Progress, Approved and Rejected states) decides what it
//! means: In Progress starts the task, Approved and Rejected record a
//! tracker verdict. Plane's issue payload carries the state expanded
//! (`{"id", "name", "group"}`); the name is compared case-insensitively, and
//! a binding that names a state by its id matches that id.

use serde::Deserialize;
use serde_json::Value;

use super::ParseError;
use super::ordering::{self, Position};
use crate::pb;

/// An issue created, or an update of one, as Plane describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    pub issue_id: String,
    /// The Plane project's id (what `PlaneBinding.plane_project_id` names).
    pub project_id: String,
    pub title: String,
    pub sequence_id: Option<i64>,
    pub state: StateRef,
    pub change: Change,
    /// Who made the change (display name), when Plane says.
    pub actor: Option<String>,
    /// The work item key (e.g. "ORCH-98") or the project's identifier
    /// ("ORCH"), when the payload carries one.
    pub identifier: Option<Identifier>,
    /// Where the issue stood (`data.updated_at`): a state change older
    /// than one applied about the same issue is stale.
    pub position: Option<Position>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRef {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created,
    /// The update changed the state.
    State,
    /// The update changed another field.
    Other(String),
    /// An update that does not say which field changed.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    WorkItem(String),
    Project(String),
}

/// What an issue's state means to bosun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    InProgress,
    Approved,
    Rejected,
}

/// Why an issue event calls for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAction {
    /// An update of another field: the state did not move.
    NotAStateChange(String),
    /// The state is none of the binding's three.
    StateUnmapped(String),
}

impl std::fmt::Display for NoAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAStateChange(field) => write!(f, "an update of {field}, not of the state"),
            Self::StateUnmapped(state) => write!(f, "state {state:?} means nothing to bosun"),
        }
    }
}

#[derive(Deserialize)]
struct Payload {
    event: Option<String>,
    action: Option<String>,
    data: Option<Value>,
    activity: Option<Activity>,
}

#[derive(Deserialize)]
struct Activity {
    field: Option<String>,
    actor: Option<Actor>,
}

#[derive(Deserialize)]
struct Actor {
    display_name: Option<String>,
}

/// Reads a delivery of `event` (the `X-Plane-Event` header); `Ok(None)` for
/// anything but an issue created or updated.
pub fn parse(event: &str, body: &[u8]) -> Result<Option<IssueEvent>, ParseError> {
    let payload: Payload =
        serde_json::from_slice(body).map_err(|err| ParseError::Json(err.to_string()))?;
    let kind = payload.event.as_deref().unwrap_or(event);
    if event != "issue" || kind != "issue" {
        return Ok(None);
    }
    let updated = match payload.action.as_deref() {
        Some("create" | "created") => false,
        Some("update" | "updated") => true,
        _ => return Ok(None),
    };
    let data = payload.data.ok_or(ParseError::Missing("data"))?;
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
    let state = match data.get("state").or_else(|| data.get("state_id")) {
        Some(Value::String(id)) => StateRef {
            id: id.clone(),
            name: None,
        },
        Some(Value::Object(state)) => StateRef {
            id: state
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            name: state
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        _ => return Err(ParseError::Missing("data.state")),
    };
    let field = payload.activity.as_ref().and_then(|a| a.field.clone());
    let change = match (updated, field) {
        (false, _) => Change::Created,
        (true, Some(field)) if matches!(field.as_str(), "state" | "state_id") => Change::State,
        (true, Some(field)) => Change::Other(field),
        (true, None) => Change::Unknown,
    };
    let identifier = text("identifier")
        .filter(|key| key.contains('-'))
        .map(Identifier::WorkItem)
        .or_else(|| {
            data.pointer("/project_detail/identifier")
                .and_then(Value::as_str)
                .map(|ident| Identifier::Project(ident.to_string()))
        });
    Ok(Some(IssueEvent {
        issue_id: text("id")
            .filter(|id| !id.is_empty())
            .ok_or(ParseError::Missing("data.id"))?,
        project_id: text("project")
            .or_else(|| text("project_id"))
            .ok_or(ParseError::Missing("data.project"))?,
        title: text("name").unwrap_or_default(),
        sequence_id: data.get("sequence_id").and_then(Value::as_i64),
        state,
        change,
        actor: payload
            .activity
            .and_then(|a| a.actor)
            .and_then(|a| a.display_name),
        identifier,
        position: issue_position(&data),
    }))
}

/// The issue's position among deliveries about it: `plane/issue/<id>`
/// ranked by `data.updated_at` (every Plane issue payload renders the issue
/// as it stood after the change); none without a readable time.
fn issue_position(data: &Value) -> Option<Position> {
    let id = data.get("id").and_then(Value::as_str)?;
    let at = ordering::micros(data.get("updated_at").and_then(Value::as_str))?;
    Some(Position {
        entity: format!("plane/issue/{id}"),
        rank: [at, 0, 0],
    })
}

/// What `event` calls for under `binding`.
pub fn meaning(event: &IssueEvent, binding: &pb::PlaneBinding) -> Result<Meaning, NoAction> {
    if let Change::Other(field) = &event.change {
        return Err(NoAction::NotAStateChange(field.clone()));
    }
    let or = |name: &str, default: &'static str| {
        if name.is_empty() {
            default.to_string()
        } else {
            name.to_string()
        }
    };
    let states = [
        (
            or(&binding.in_progress_state, "In Progress"),
            Meaning::InProgress,
        ),
        (or(&binding.approved_state, "Approved"), Meaning::Approved),
        (or(&binding.rejected_state, "Rejected"), Meaning::Rejected),
    ];
    let state = &event.state;
    states
        .into_iter()
        .find(|(name, _)| {
            state
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                || state.id == *name
        })
        .map(|(_, meaning)| meaning)
        .ok_or_else(|| NoAction::StateUnmapped(state.name.clone().unwrap_or(state.id.clone())))
}

/// The task's work item id: the payload's key, else `<IDENTIFIER>-<n>` (as
/// the reconciler names it), else the issue id when the project's
/// identifier is not known.
pub fn work_item_id(event: &IssueEvent, project_identifier: Option<&str>) -> String {
    let issue_id = || event.issue_id.clone();
    match (&event.identifier, event.sequence_id) {
        (Some(Identifier::WorkItem(key)), _) => key.clone(),
        (Some(Identifier::Project(ident)), Some(n)) => format!("{ident}-{n}"),
        (None, Some(n)) => project_identifier.map_or_else(issue_id, |ident| format!("{ident}-{n}")),
        (_, None) => issue_id(),
    }
}

/// Whether the payload names the project's identifier itself.
pub fn needs_identifier(event: &IssueEvent) -> bool {
    event.identifier.is_none() && event.sequence_id.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issue(action: &str, state: Value, field: Option<&str>) -> Vec<u8> {
        json!({
            "event": "issue", "action": action, "webhook_id": "w", "workspace_id": "ws",
            "data": {"id": "iss-1", "name": "Checkout totals", "sequence_id": 98,
                     "project": "proj-uuid", "state": state},
            "activity": {"field": field, "actor": {"display_name": "Jane"}},
        })
        .to_string()
        .into_bytes()
    }

    fn binding() -> pb::PlaneBinding {
        pb::PlaneBinding {
            workspace_slug: "acme".into(),
            plane_project_id: "proj-uuid".into(),
            approved_state: "Ready to ship".into(),
            rejected_state: "st-rejected".into(),
            ..Default::default()
        }
    }

    #[test]
    fn issue_positions_come_from_data_updated_at() {
        let at = |updated_at: Value| {
            let body = json!({"event": "issue", "action": "updated",
                "data": {"id": "iss-1", "project": "p", "state": "st", "updated_at": updated_at},
                "activity": {"field": "state"}});
            let event = parse("issue", body.to_string().as_bytes())
                .unwrap()
                .unwrap();
            event.position.map(|p| (p.entity, p.rank))
        };
        let entity = || "plane/issue/iss-1".to_string();
        let cases = [
            (
                json!("2024-06-12T14:05:00.654321Z"),
                Some((entity(), [1_718_201_100_654_321, 0, 0])),
            ),
            (
                json!("2024-06-12T16:05:00+02:00"),
                Some((entity(), [1_718_201_100_000_000, 0, 0])),
            ),
            (json!(null), None),
            (json!("yesterday"), None),
            (json!(1_718_201_100), None),
        ];
        for (updated_at, expected) in cases {
            assert_eq!(at(updated_at.clone()), expected, "{updated_at}");
        }
    }

    #[test]
    fn what_each_issue_event_means() {
        let named =
            |name: &str| json!({"id": format!("st-{name}"), "name": name, "group": "started"});
        let cases: Vec<(&str, Vec<u8>, Result<Meaning, NoAction>)> = vec![
            (
                "moved to in progress",
                issue("updated", named("In Progress"), Some("state")),
                Ok(Meaning::InProgress),
            ),
            (
                "case does not matter",
                issue("update", named("in progress"), Some("state_id")),
                Ok(Meaning::InProgress),
            ),
            (
                "created in progress",
                issue("created", named("In Progress"), None),
                Ok(Meaning::InProgress),
            ),
            (
                "the binding's own name",
                issue("updated", named("Ready to ship"), Some("state")),
                Ok(Meaning::Approved),
            ),
            (
                "the default name is replaced",
                issue("updated", named("Approved"), Some("state")),
                Err(NoAction::StateUnmapped("Approved".into())),
            ),
            (
                "a state named by id",
                issue("updated", json!("st-rejected"), Some("state")),
                Ok(Meaning::Rejected),
            ),
            (
                "an old payload without activity",
                issue("updated", named("In Progress"), None),
                Ok(Meaning::InProgress),
            ),
            (
                "another field changed",
                issue("updated", named("In Progress"), Some("priority")),
                Err(NoAction::NotAStateChange("priority".into())),
            ),
            (
                "an unmapped state",
                issue("updated", named("Backlog"), Some("state")),
                Err(NoAction::StateUnmapped("Backlog".into())),
            ),
        ];
        for (name, body, expected) in cases {
            let event = parse("issue", &body).unwrap().expect(name);
            assert_eq!(meaning(&event, &binding()), expected, "{name}");
            assert_eq!(event.actor.as_deref(), Some("Jane"), "{name}");
        }
    }

    #[test]
    fn unused_and_malformed_deliveries() {
        let deleted =
            json!({"event": "issue", "action": "deleted", "data": {"id": "x"}}).to_string();
        assert_eq!(parse("issue", deleted.as_bytes()).unwrap(), None);
        let project = json!({"event": "project", "action": "updated", "data": {}}).to_string();
        assert_eq!(parse("project", project.as_bytes()).unwrap(), None);
        assert!(matches!(
            parse("issue", b"{not json"),
            Err(ParseError::Json(_))
        ));
        let stateless =
            json!({"event": "issue", "action": "updated", "data": {"id": "x", "project": "p"}});
        assert_eq!(
            parse("issue", stateless.to_string().as_bytes()),
            Err(ParseError::Missing("data.state"))
        );
    }

    #[test]
    fn work_item_ids() {
        let body = issue("updated", json!("st"), Some("state"));
        let mut event = parse("issue", &body).unwrap().unwrap();
        assert!(needs_identifier(&event));
        assert_eq!(work_item_id(&event, Some("ORCH")), "ORCH-98");
        assert_eq!(work_item_id(&event, None), "iss-1");
        event.identifier = Some(Identifier::Project("SHOP".into()));
        assert!(!needs_identifier(&event));
        assert_eq!(work_item_id(&event, None), "SHOP-98");
        event.identifier = Some(Identifier::WorkItem("SHOP-7".into()));
        assert_eq!(work_item_id(&event, Some("ORCH")), "SHOP-7");
        event.identifier = None;
        event.sequence_id = None;
        assert!(!needs_identifier(&event));
        assert_eq!(work_item_id(&event, Some("ORCH")), "iss-1");
    }
}
