//! The API additions of the operator console through the real server:
//! ListSessions' filters (pull request number, branch, issue id, free-text
//! search) and orders, ListTasks' orders, and ListAttention.
//!
//! - sessions: ListSessions' filters, refusals and orders;
//! - tasks: ListTasks' orders;
//! - attention: ListAttention and its reasons.
//!
//! The helpers below call the real server through the generated client.

#[path = "../common/mod.rs"]
mod common;

mod attention;
mod sessions;
mod tasks;

use bosun::pb::{
    self, ActivityState, AttentionReason, CheckStatus, Harness, ListSessionsRequest,
    PullRequestCiState, PullRequestState, ReviewDecision, SessionOrder, Stage, TaskOrder,
};
use common::pipeline::SHA_A;
use common::{TestServer, bad_fields};
use tonic::Code;

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";

async fn spawn(server: &TestServer, project: &str, branch: &str, issue: &str) -> String {
    server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: project.into(),
            harness: Harness::ClaudeCode.into(),
            branch: branch.into(),
            issue_id: issue.into(),
            prompt: "work".into(),
            ..Default::default()
        })
        .await
        .expect("spawn")
        .into_inner()
        .id
}

async fn start(server: &TestServer, id: &str) {
    server
        .sessions_client()
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: id.into(),
            runtime_handle_id: format!("tmux:{id}"),
            ..Default::default()
        })
        .await
        .expect("complete spawn");
}

async fn activity(server: &TestServer, id: &str, state: ActivityState) {
    server
        .sessions_client()
        .report_activity(pb::ReportActivityRequest {
            session_id: id.into(),
            state: state.into(),
            ..Default::default()
        })
        .await
        .expect("report activity");
}

async fn report(server: &TestServer, id: &str, pull_request: pb::PullRequest) {
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: id.into(),
            fetched: true,
            pull_request: Some(pull_request),
            ..Default::default()
        })
        .await
        .expect("report pull request");
}

fn open_pr(number: i64, title: &str, head: &str) -> pb::PullRequest {
    pb::PullRequest {
        url: format!("https://github.com/acme/shop/pull/{number}"),
        number,
        state: PullRequestState::Open.into(),
        head_sha: head.into(),
        title: title.into(),
        ..Default::default()
    }
}

async fn list(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    server
        .sessions_client()
        .list_sessions(request)
        .await
        .expect("list sessions")
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn list_err(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    let status = server
        .sessions_client()
        .list_sessions(request)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    bad_fields(&status)
}

/// Every page of a listing, following next_page_token.
async fn all_pages(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .sessions_client()
            .list_sessions(ListSessionsRequest {
                page_token: token,
                ..request.clone()
            })
            .await
            .expect("page")
            .into_inner();
        ids.extend(page.sessions.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}
