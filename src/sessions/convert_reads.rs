//! Proto <-> domain conversion of the Sessions listings: ListSessions' and
//! ListReactions' filters, validated once and naming each bad field, and
//! ListAttention's request and answer.

use super::convert::{finish, project_id};
use super::convert_answers::{reaction_to_pb, view_to_pb};
use super::reads::AttentionItem;
use super::service::SessionFilter;
use super::store::{ReactionQuery, SessionOrder, SessionQuery};
use crate::error::Violations;
use crate::pb;
use crate::proto_enum::{ProtoEnum, optional_from_pb};
use crate::validate::short_text;

pub fn session_filter(request: &pb::ListSessionsRequest) -> Result<SessionFilter, Violations> {
    let mut v = Violations::new();
    if request.task_id < 0 {
        v.add("task_id", "must not be negative");
    }
    if request.pull_request_number < 0 {
        v.add("pull_request_number", "must not be negative");
    }
    let project_id = optional_project_id(&mut v, &request.project_id);
    let filter = SessionFilter {
        query: SessionQuery {
            project_id,
            task_id: (request.task_id > 0).then_some(request.task_id),
            state: optional_from_pb(&mut v, "state", request.state),
            is_alive: request.is_alive,
            finished: request.finished,
            pull_request_number: (request.pull_request_number > 0)
                .then_some(request.pull_request_number),
            branch: short_text(&mut v, "branch", request.branch.clone()),
            issue_id: short_text(&mut v, "issue_id", request.issue_id.clone()),
            search: short_text(&mut v, "search", request.search.clone()),
            order: optional_from_pb::<SessionOrder>(&mut v, "order_by", request.order_by)
                .unwrap_or_default(),
        },
        display_status: optional_from_pb(&mut v, "display_status", request.display_status),
    };
    finish(v, filter)
}

pub fn reaction_filter(request: &pb::ListReactionsRequest) -> Result<ReactionQuery, Violations> {
    let mut v = Violations::new();
    let filter = ReactionQuery {
        session_id: short_text(&mut v, "session_id", request.session_id.clone()),
        project_id: short_text(&mut v, "project_id", request.project_id.clone()),
        status: optional_from_pb(&mut v, "status", request.status),
        key: short_text(&mut v, "key", request.key.clone()),
        target: optional_from_pb(&mut v, "target", request.target),
    };
    finish(v, filter)
}

/// ListAttention's project filter; `None` for every project.
pub fn attention_project(request: &pb::ListAttentionRequest) -> Result<Option<String>, Violations> {
    let mut v = Violations::new();
    let project_id = optional_project_id(&mut v, &request.project_id);
    finish(v, project_id)
}

fn optional_project_id(v: &mut Violations, id: &str) -> Option<String> {
    (!id.is_empty()).then(|| project_id(v, "project_id", id.to_string()))
}

pub fn attention_item_to_pb(item: AttentionItem) -> pb::AttentionItem {
    let AttentionItem {
        view,
        reasons,
        reactions,
        held_task,
    } = item;
    let (held_task_id, hold_detail) = held_task.map_or((0, String::new()), |t| (t.id, t.detail));
    pb::AttentionItem {
        session: Some(view_to_pb(view)),
        reasons: reasons.into_iter().map(ProtoEnum::to_pb).collect(),
        reactions: reactions.into_iter().map(reaction_to_pb).collect(),
        held_task_id,
        hold_detail,
    }
}
