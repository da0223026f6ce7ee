//! The Tasks pipeline through the real server: StartTask, the gates of every
//! stage, rollback and hold, the retry budget, auto lessons, CI resolution,
//! ReleaseTask, and bad input.
//! - start: StartTask (once per issue, bad input), SpawnSession's task;
//! - gates: each stage's gate, green and red, with its lessons;
//! - holds: deploy holds, the rollback limit, retries, ReleaseTask, the journal;
//! - reads: CI resolution, GetTaskFacts, AdvanceTask's checks, ListTasks.
//!
//! The helpers below call the real server through the generated client.

#[path = "../common/mod.rs"]
mod common;

mod gates;
mod holds;
mod reads;
mod start;

use bosun::pb::{
    self, AdvanceOutcome, CiStatusState, DeployHealth, GateStatus, HoldReason, ReleaseAction, Role,
    ShaResolution, Stage, StageSessionOutcome, VerdictDecision, VerdictSource,
};
use bosun::storage::sql::query;
use common::pipeline::{REPO, SHA_A, SHA_B, head_of};
use common::{TestServer, assert_error, bad_fields, error_metadata};
use tonic::Code;

async fn server_with(tweak: impl FnOnce(&mut bosun::config::Config)) -> TestServer {
    let server = TestServer::start_with(tweak).await;
    server.project("shop", |_| {}).await;
    server
}

async fn server() -> TestServer {
    server_with(|_| {}).await
}

async fn session(server: &TestServer, id: &str) -> pb::Session {
    server
        .sessions_client()
        .get_session(pb::GetSessionRequest {
            session_id: id.into(),
        })
        .await
        .expect("get session")
        .into_inner()
}

async fn task_events(server: &TestServer, task_id: i64) -> Vec<String> {
    let filter = pb::EventFilter {
        task_id,
        event_type_prefixes: vec!["task.".into()],
        ..Default::default()
    };
    server
        .list_events(0, filter)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn advance(
    server: &TestServer,
    task: &pb::Task,
    outcome: StageSessionOutcome,
) -> Result<pb::AdvanceResult, tonic::Status> {
    server
        .tasks()
        .advance_task(pb::AdvanceTaskRequest {
            task_id: task.id,
            session_id: task.stage_session_id.clone(),
            outcome: outcome.into(),
            detail: "rate limited".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn release(
    server: &TestServer,
    id: i64,
    action: ReleaseAction,
) -> Result<pb::ReleaseTaskResponse, tonic::Status> {
    server
        .tasks()
        .release_task(pb::ReleaseTaskRequest {
            task_id: id,
            action: action.into(),
            note: "checked by hand".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn outcome(result: &pb::AdvanceResult) -> AdvanceOutcome {
    AdvanceOutcome::try_from(result.outcome).unwrap()
}

fn stage(task: &pb::Task) -> Stage {
    Stage::try_from(task.stage).unwrap()
}
