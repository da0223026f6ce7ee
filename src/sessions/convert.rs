//! Proto <-> domain conversion for Sessions' requests: validated here,
//! once, naming each bad field by its request path. Answers and event
//! payloads are built in `convert_answers`, projects' in `convert_projects`.

use super::attention::AttentionReason;
use super::decide::Probe;
use super::observe::{CheckReport, PullRequestReport, SessionRef};
use super::service::{Launch, NewSession};
use super::store::SessionOrder;
use super::{
    ActivitySource, ActivityState, CheckStatus, CiState, Comment, DisplayStatus, Harness,
    Mergeability, ProcessProbe, PullRequestState, ReactionPriority, ReactionStatus, ReactionTarget,
    ReviewDecision, Role, RuntimeProbe, SessionState, TerminationReason,
};
use crate::error::Violations;
use crate::pb;
use crate::proto_enum::{optional_from_pb, proto_enum, required_from_pb};
use crate::validate::{self, long_text, short_text};

proto_enum!(SessionState => pb::SessionState { NotStarted, Working, Idle, NeedsInput, Stuck, Detecting, Done, Terminated });
proto_enum!(TerminationReason => pb::TerminationReason {
    ManuallyKilled, RuntimeLost, AgentProcessExited, ProbeFailure, ErrorInProcess, AutoCleanup, PrMerged
});
proto_enum!(Harness => pb::Harness { ClaudeCode, Codex, Aider, Opencode, Other });
proto_enum!(Role => pb::Role { Analyst, Developer, Reviewer, Tester, Deployer });
proto_enum!(ActivityState => pb::ActivityState { Active, Ready, Idle, WaitingInput, Blocked, Exited });
proto_enum!(ActivitySource => pb::ActivitySource { Hook, Transcript, Terminal, Runtime });
proto_enum!(RuntimeProbe => pb::RuntimeProbeResult { Alive, Dead, ProbeFailed });
proto_enum!(ProcessProbe => pb::ProcessProbeResult { Alive, Dead, Unknown });
proto_enum!(PullRequestState => pb::PullRequestState { Open, Closed, Merged });
proto_enum!(ReviewDecision => pb::ReviewDecision { ReviewRequired, Approved, ChangesRequested });
proto_enum!(CiState => pb::PullRequestCiState { None, Pending, Passing, Failing });
proto_enum!(Mergeability => pb::Mergeability { Mergeable, Conflicting, Blocked, Unknown });
proto_enum!(CheckStatus => pb::CheckStatus { Pending, Passed, Failed, Cancelled, Skipped });
proto_enum!(ReactionPriority => pb::ReactionPriority { Urgent, Action, Info });
proto_enum!(ReactionTarget => pb::ReactionTarget { Agent, Human });
proto_enum!(ReactionStatus => pb::ReactionStatus { Pending, Escalated, Cleared });
proto_enum!(SessionOrder => pb::SessionOrder { CreateTime, LastActivity });
proto_enum!(AttentionReason => pb::AttentionReason {
    Stuck, NeedsInput, CiFailed, MergeHeld, TaskHeld, Escalated, AgentExited, ApprovedAndGreen
});
proto_enum!(DisplayStatus => pb::DisplayStatus {
    Done, Killed, Cleanup, Errored, NeedsInput, Stuck, Detecting, Spawning, Merged, CiFailed, Draft,
    ChangesRequested, Mergeable, Approved, ReviewPending, PrOpen, Idle, Working
});

/// The end of a check's log that bosun keeps.
const MAX_LOG_TAIL: usize = 16 * 1024;
/// Most checks or comments one report may carry.
const MAX_ITEMS: usize = 500;

fn is_project_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

pub(super) fn project_id(v: &mut Violations, field: &str, id: String) -> String {
    if id.is_empty() {
        v.add(field, "is required");
    } else if !is_project_id(&id) {
        v.add(field, "must match ^[a-z][a-z0-9-]{0,31}$");
    }
    id
}

fn session_id(v: &mut Violations, field: &str, id: String) -> String {
    match short_text(v, field, id) {
        Some(id) => id,
        None => {
            if v.as_slice()
                .iter()
                .all(|violation| violation.field != field)
            {
                v.add(field, "is required");
            }
            String::new()
        }
    }
}

pub(super) fn finish<T>(v: Violations, value: T) -> Result<T, Violations> {
    v.finish(value)
}

// Session lifecycle requests.

pub fn new_session(
    request: pb::SpawnSessionRequest,
) -> Result<(Option<String>, NewSession), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    if request.task_id < 0 {
        v.add("task_id", "must not be negative");
    }
    let new = NewSession {
        project_id: project_id(&mut v, "project_id", request.project_id),
        task_id: (request.task_id > 0).then_some(request.task_id),
        role: optional_from_pb(&mut v, "role", request.role),
        issue_id: short_text(&mut v, "issue_id", request.issue_id),
        harness: required_from_pb(&mut v, "harness", request.harness).unwrap_or(Harness::Other),
        branch: short_text(&mut v, "branch", request.branch),
        prompt: long_text(&mut v, "prompt", request.prompt),
    };
    finish(v, (request_id, new))
}

pub fn launch(
    request: pb::CompleteSpawnRequest,
) -> Result<(Option<String>, String, Launch), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let id = session_id(&mut v, "session_id", request.session_id);
    let runtime_handle_id = session_id(&mut v, "runtime_handle_id", request.runtime_handle_id);
    let launch = Launch {
        runtime_handle_id,
        runtime_name: short_text(&mut v, "runtime_name", request.runtime_name),
        workspace_path: short_text(&mut v, "workspace_path", request.workspace_path),
        agent_session_id: short_text(&mut v, "agent_session_id", request.agent_session_id),
        branch: short_text(&mut v, "branch", request.branch),
    };
    finish(v, (request_id, id, launch))
}

/// (request_id, session_id) of the calls that name only a session.
pub fn session_call(
    request_id: String,
    id: String,
) -> Result<(Option<String>, String), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request_id);
    let id = session_id(&mut v, "session_id", id);
    finish(v, (request_id, id))
}

pub fn fail_spawn(
    request: pb::FailSpawnRequest,
) -> Result<(Option<String>, String, Option<String>), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let id = session_id(&mut v, "session_id", request.session_id);
    let error = long_text(&mut v, "error", request.error);
    finish(v, (request_id, id, error))
}

pub fn kill(
    request: pb::KillSessionRequest,
) -> Result<(Option<String>, String, TerminationReason, Option<String>), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let id = session_id(&mut v, "session_id", request.session_id);
    let reason = optional_from_pb(&mut v, "reason", request.reason)
        .unwrap_or(TerminationReason::ManuallyKilled);
    let detail = long_text(&mut v, "detail", request.detail);
    finish(v, (request_id, id, reason, detail))
}

pub fn activity(
    request: pb::ReportActivityRequest,
) -> Result<(Option<String>, String, ActivityState, ActivitySource), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let id = session_id(&mut v, "session_id", request.session_id);
    let state = required_from_pb(&mut v, "state", request.state);
    let source = optional_from_pb(&mut v, "source", request.source).unwrap_or(ActivitySource::Hook);
    match state {
        Some(state) => finish(v, (request_id, id, state, source)),
        None => Err(v),
    }
}

pub fn probe(
    request: pb::ReportRuntimeProbeRequest,
) -> Result<(Option<String>, String, Probe), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let id = session_id(&mut v, "session_id", request.session_id);
    let runtime = required_from_pb(&mut v, "runtime", request.runtime);
    let process = required_from_pb(&mut v, "process", request.process);
    let evidence = long_text(&mut v, "evidence", request.evidence).unwrap_or_default();
    match (runtime, process) {
        (Some(runtime), Some(process)) => finish(
            v,
            (
                request_id,
                id,
                Probe {
                    runtime,
                    process,
                    evidence,
                },
            ),
        ),
        _ => Err(v),
    }
}

pub fn pull_request_report(
    request: pb::ReportPullRequestRequest,
) -> Result<(Option<String>, SessionRef, Option<PullRequestReport>), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let pull_request = request.pull_request.unwrap_or_default();
    let repo = short_text(&mut v, "repo", request.repo);
    let target = match short_text(&mut v, "session_id", request.session_id) {
        Some(id) => SessionRef::Id(id),
        None => {
            let branch = short_text(&mut v, "pull_request.branch", pull_request.branch.clone());
            match (repo, branch) {
                (Some(repo), Some(branch)) => SessionRef::RepoBranch { repo, branch },
                _ => {
                    v.add(
                        "session_id",
                        "name the session by session_id, or by repo and pull_request.branch",
                    );
                    SessionRef::Id(String::new())
                }
            }
        }
    };
    if !request.fetched {
        return finish(v, (request_id, target, None));
    }
    let report = PullRequestReport {
        url: required_text(&mut v, "pull_request.url", pull_request.url),
        number: if pull_request.number > 0 {
            pull_request.number
        } else {
            v.add("pull_request.number", "must be a positive number");
            0
        },
        state: required_from_pb(&mut v, "pull_request.state", pull_request.state)
            .unwrap_or(PullRequestState::Open),
        review_decision: optional_from_pb(
            &mut v,
            "pull_request.review_decision",
            pull_request.review_decision,
        ),
        ci_state: optional_from_pb(&mut v, "pull_request.ci_state", pull_request.ci_state),
        mergeability: optional_from_pb(
            &mut v,
            "pull_request.mergeability",
            pull_request.mergeability,
        ),
        draft: pull_request.draft,
        head_sha: short_text(&mut v, "pull_request.head_sha", pull_request.head_sha),
        branch: short_text(&mut v, "pull_request.branch", pull_request.branch),
        title: short_text(&mut v, "pull_request.title", pull_request.title),
        checks: checks(&mut v, pull_request.checks),
        comments: comments(&mut v, pull_request.comments),
        observed_time: validate::timestamp(&mut v, "observed_time", request.observed_time),
    };
    finish(v, (request_id, target, Some(report)))
}

fn required_text(v: &mut Violations, field: &str, value: String) -> String {
    let value = short_text(v, field, value);
    if value.is_none()
        && v.as_slice()
            .iter()
            .all(|violation| violation.field != field)
    {
        v.add(field, "is required");
    }
    value.unwrap_or_default()
}

fn checks(v: &mut Violations, checks: Vec<pb::Check>) -> Vec<CheckReport> {
    if checks.len() > MAX_ITEMS {
        v.add("pull_request.checks", format!("at most {MAX_ITEMS} checks"));
        return Vec::new();
    }
    checks
        .into_iter()
        .enumerate()
        .map(|(i, check)| {
            let field = |name: &str| format!("pull_request.checks[{i}].{name}");
            CheckReport {
                name: required_text(v, &field("name"), check.name),
                commit_sha: required_text(v, &field("commit_sha"), check.commit_sha),
                status: required_from_pb(v, &field("status"), check.status)
                    .unwrap_or(CheckStatus::Pending),
                url: short_text(v, &field("url"), check.url),
                log_tail: validate::body_text(v, &field("log_tail"), check.log_tail).map(tail),
            }
        })
        .collect()
}

/// The last [`MAX_LOG_TAIL`] bytes of a log, cut at a character boundary.
fn tail(log: String) -> String {
    let mut start = log.len().saturating_sub(MAX_LOG_TAIL);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_string()
}

fn comments(v: &mut Violations, comments: Vec<pb::Comment>) -> Vec<Comment> {
    if comments.len() > MAX_ITEMS {
        v.add(
            "pull_request.comments",
            format!("at most {MAX_ITEMS} comments"),
        );
        return Vec::new();
    }
    comments
        .into_iter()
        .enumerate()
        .map(|(i, comment)| {
            let field = |name: &str| format!("pull_request.comments[{i}].{name}");
            Comment {
                id: required_text(v, &field("id"), comment.id),
                author: short_text(v, &field("author"), comment.author),
                body: long_text(v, &field("body"), comment.body).unwrap_or_default(),
                path: short_text(v, &field("path"), comment.path),
                line: match comment.line {
                    line if line < 0 => {
                        v.add(field("line"), "must not be negative (0: not on a line)");
                        None
                    }
                    line => (line > 0).then_some(line),
                },
                resolved: comment.resolved,
            }
        })
        .collect()
}
