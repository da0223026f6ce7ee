//! Domain -> proto for Sessions' answers, and the typed event payloads
//! read back from the change log's JSON.

use super::view::{PullRequestView, SessionView};
use super::{Check, Comment, PullRequest, Reaction, Session};
use crate::pb;
use crate::proto_enum::{ProtoEnum, optional_to_pb};
use crate::time::UnixMicros;

pub fn view_to_pb(view: SessionView) -> pb::Session {
    let SessionView {
        session,
        pull_request,
        display_status,
        usage,
    } = view;
    pb::Session {
        display_status: display_status.to_pb(),
        pull_request: pull_request.map(pull_request_view_to_pb),
        usage: usage.map(crate::processors::usage_to_pb),
        ..session_to_pb(session)
    }
}

/// The stored session alone (as event payloads carry it): display_status,
/// pull_request and usage are derived on read, so they are unset here.
pub fn session_to_pb(session: Session) -> pb::Session {
    let last_activity_time = Some(session.last_activity_time().to_timestamp());
    let time = |t: Option<UnixMicros>| t.map(UnixMicros::to_timestamp);
    pb::Session {
        id: session.id,
        project_id: session.project_id,
        task_id: session.task_id.unwrap_or_default(),
        role: optional_to_pb(session.role),
        issue_id: session.issue_id.unwrap_or_default(),
        harness: session.harness.to_pb(),
        state: session.state.to_pb(),
        termination_reason: optional_to_pb(session.termination_reason),
        termination_detail: session.termination_detail.unwrap_or_default(),
        is_alive: session.is_alive,
        activity: session.activity_state.map(|state| pb::SessionActivity {
            state: state.to_pb(),
            source: optional_to_pb(session.activity_source),
            report_time: time(session.activity_time),
        }),
        detecting: session
            .detecting_start_time
            .map(|start| pb::DetectingMemory {
                attempts: i32::try_from(session.detecting_attempts).unwrap_or(i32::MAX),
                start_time: Some(start.to_timestamp()),
                evidence_hash: session.detecting_evidence_hash.unwrap_or_default(),
                last_evidence: session.detecting_last_evidence.unwrap_or_default(),
            }),
        branch: session.branch.unwrap_or_default(),
        workspace_path: session.workspace_path.unwrap_or_default(),
        runtime_handle_id: session.runtime_handle_id.unwrap_or_default(),
        runtime_name: session.runtime_name.unwrap_or_default(),
        agent_session_id: session.agent_session_id.unwrap_or_default(),
        prompt: session.prompt.unwrap_or_default(),
        create_time: Some(session.create_time.to_timestamp()),
        update_time: time(session.update_time),
        start_time: time(session.start_time),
        end_time: time(session.end_time),
        restore_time: time(session.restore_time),
        display_status: 0,
        pull_request: None,
        usage: None,
        last_activity_time,
    }
}

fn pull_request_view_to_pb(view: PullRequestView) -> pb::PullRequest {
    let PullRequestView {
        pull_request,
        checks,
        comments,
    } = view;
    pb::PullRequest {
        checks: checks.into_iter().map(check_to_pb).collect(),
        comments: comments.into_iter().map(comment_to_pb).collect(),
        ..pull_request_to_pb(pull_request)
    }
}

pub fn pull_request_to_pb(pull_request: PullRequest) -> pb::PullRequest {
    pb::PullRequest {
        session_id: pull_request.session_id,
        project_id: pull_request.project_id,
        url: pull_request.url,
        number: pull_request.number,
        state: pull_request.state.to_pb(),
        review_decision: optional_to_pb(pull_request.review_decision),
        ci_state: optional_to_pb(pull_request.ci_state),
        mergeability: optional_to_pb(pull_request.mergeability),
        draft: pull_request.draft,
        head_sha: pull_request.head_sha.unwrap_or_default(),
        branch: pull_request.branch.unwrap_or_default(),
        title: pull_request.title.unwrap_or_default(),
        checks: Vec::new(),
        comments: Vec::new(),
        create_time: Some(pull_request.create_time.to_timestamp()),
        update_time: pull_request.update_time.map(UnixMicros::to_timestamp),
    }
}

fn comment_to_pb(comment: Comment) -> pb::Comment {
    pb::Comment {
        id: comment.id,
        author: comment.author.unwrap_or_default(),
        body: comment.body,
        path: comment.path.unwrap_or_default(),
        line: comment.line.unwrap_or_default(),
        resolved: comment.resolved,
    }
}

pub fn check_to_pb(check: Check) -> pb::Check {
    pb::Check {
        id: check.id,
        session_id: check.session_id,
        project_id: check.project_id,
        pull_request_number: check.pull_request_number,
        name: check.name,
        commit_sha: check.commit_sha,
        status: check.status.to_pb(),
        url: check.url.unwrap_or_default(),
        log_tail: check.log_tail.unwrap_or_default(),
        create_time: Some(check.create_time.to_timestamp()),
        update_time: check.update_time.map(UnixMicros::to_timestamp),
    }
}

pub fn reaction_to_pb(reaction: Reaction) -> pb::Reaction {
    let time = |t: Option<UnixMicros>| t.map(UnixMicros::to_timestamp);
    pb::Reaction {
        id: reaction.id,
        session_id: reaction.session_id,
        project_id: reaction.project_id,
        key: reaction.key,
        priority: reaction.priority.to_pb(),
        target: reaction.target.to_pb(),
        status: reaction.status.to_pb(),
        message: reaction.message,
        nudge_count: i32::try_from(reaction.nudge_count).unwrap_or(i32::MAX),
        dedup_key: reaction.dedup_key.unwrap_or_default(),
        create_time: Some(reaction.create_time.to_timestamp()),
        update_time: time(reaction.update_time),
        nudge_time: time(reaction.nudge_time),
        escalate_time: time(reaction.escalate_time),
        clear_time: time(reaction.clear_time),
    }
}

// Event payloads.

pub fn session_from_payload(json: &str) -> Result<pb::Session, serde_json::Error> {
    serde_json::from_str(json).map(session_to_pb)
}

pub fn pull_request_from_payload(json: &str) -> Result<pb::PullRequest, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct WithComments {
        #[serde(flatten)]
        pull_request: PullRequest,
        comments: Vec<Comment>,
    }
    let row: WithComments = serde_json::from_str(json)?;
    Ok(pb::PullRequest {
        comments: row.comments.into_iter().map(comment_to_pb).collect(),
        ..pull_request_to_pb(row.pull_request)
    })
}

pub fn check_from_payload(json: &str) -> Result<pb::Check, serde_json::Error> {
    serde_json::from_str(json).map(check_to_pb)
}

pub fn reaction_from_payload(json: &str) -> Result<pb::Reaction, serde_json::Error> {
    serde_json::from_str(json).map(reaction_to_pb)
}
