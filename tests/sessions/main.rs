//! Sessions (SPEC §6) through the real server: the seed's five end-to-end
//! stories, then the rules around them.
//! - lifecycle: spawn to kill, restore, request_id, concurrent spawns;
//! - signals: activity reports and runtime probes (the detecting state);
//! - reactions: CI, reviews, merge conflicts and merges, nudged or escalated;
//! - lists: ListSessions filters, refused requests, projects.
//!
//! The helpers below call the real server through the generated client.

#[path = "../common/mod.rs"]
mod common;

mod lifecycle;
mod lists;
mod reactions;
mod signals;

use bosun::pb::{
    self, ActivityState, Check, CheckStatus, Comment, DisplayStatus, EventFilter, Harness,
    ProcessProbeResult, Project, PullRequest, PullRequestCiState, PullRequestState, ReactionStatus,
    ReactionTarget, ReviewDecision, RuntimeProbeResult, SessionState, TerminationReason,
    WatchRequest, event::Payload,
};
use bosun::storage::sql::query;
use common::{TestServer, assert_error, bad_fields};
use futures::future::join_all;
use tonic::Code;

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

async fn register(server: &TestServer, id: &str) -> Project {
    let project = Project {
        id: id.into(),
        origin_url: format!("https://github.com/acme/{id}.git"),
        ..Project::default()
    };
    server
        .sessions_client()
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(project),
        })
        .await
        .expect("register")
        .into_inner()
}

async fn spawn(server: &TestServer, project: &str) -> pb::Session {
    server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: project.into(),
            harness: Harness::ClaudeCode.into(),
            branch: "feature/ORCH-1".into(),
            prompt: "fix the flaky test".into(),
            ..Default::default()
        })
        .await
        .expect("spawn")
        .into_inner()
}

async fn complete(server: &TestServer, id: &str) -> pb::Session {
    server
        .sessions_client()
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: id.into(),
            runtime_handle_id: "tmux:%3".into(),
            runtime_name: "tmux".into(),
            workspace_path: "/work/mer-1".into(),
            agent_session_id: "claude-abc".into(),
            ..Default::default()
        })
        .await
        .expect("complete spawn")
        .into_inner()
}

/// A started session in a fresh project.
async fn started(server: &TestServer, project: &str) -> pb::Session {
    register(server, project).await;
    let session = spawn(server, project).await;
    complete(server, &session.id).await
}

fn check(name: &str, sha: &str, status: CheckStatus, log_tail: &str) -> Check {
    Check {
        name: name.into(),
        commit_sha: sha.into(),
        status: status.into(),
        log_tail: log_tail.into(),
        ..Check::default()
    }
}

fn pull_request(
    head: &str,
    ci: PullRequestCiState,
    review: ReviewDecision,
    checks: Vec<Check>,
) -> PullRequest {
    PullRequest {
        url: "https://github.com/acme/mer/pull/7".into(),
        number: 7,
        state: PullRequestState::Open.into(),
        review_decision: review.into(),
        ci_state: ci.into(),
        head_sha: head.into(),
        branch: "feature/ORCH-1".into(),
        checks,
        ..PullRequest::default()
    }
}

async fn report(server: &TestServer, session: &str, pull_request: PullRequest) -> pb::Session {
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: session.into(),
            fetched: true,
            pull_request: Some(pull_request),
            ..Default::default()
        })
        .await
        .expect("report pull request")
        .into_inner()
        .session
        .unwrap()
}

async fn probe(
    server: &TestServer,
    session: &str,
    runtime: RuntimeProbeResult,
    process: ProcessProbeResult,
    evidence: &str,
) -> pb::Session {
    server
        .sessions_client()
        .report_runtime_probe(pb::ReportRuntimeProbeRequest {
            session_id: session.into(),
            runtime: runtime.into(),
            process: process.into(),
            evidence: evidence.into(),
            ..Default::default()
        })
        .await
        .expect("probe")
        .into_inner()
}

async fn activity(server: &TestServer, session: &str, state: ActivityState) -> pb::Session {
    server
        .sessions_client()
        .report_activity(pb::ReportActivityRequest {
            session_id: session.into(),
            state: state.into(),
            ..Default::default()
        })
        .await
        .expect("activity")
        .into_inner()
}

async fn get(server: &TestServer, session: &str) -> pb::Session {
    server
        .sessions_client()
        .get_session(pb::GetSessionRequest {
            session_id: session.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn reactions(server: &TestServer, session: &str) -> Vec<pb::Reaction> {
    server
        .sessions_client()
        .list_reactions(pb::ListReactionsRequest {
            session_id: session.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reactions
}

fn open_reaction<'a>(reactions: &'a [pb::Reaction], key: &str) -> Option<&'a pb::Reaction> {
    reactions
        .iter()
        .find(|r| r.key == key && r.status() != ReactionStatus::Cleared)
}

async fn event_types(server: &TestServer, session: &str) -> Vec<String> {
    let filter = EventFilter {
        session_id: session.into(),
        ..Default::default()
    };
    server
        .list_events(0, filter)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}
