//! Helpers for tests of the Reconciler: its calls, and tasks stuck by a
//! lost transition (a webhook that never came).

use bosun::pb::{self, CiStatusState};

use super::TestServer;

/// Longer than every stage's default grace (10 and 15 minutes).
pub const PAST_GRACE: std::time::Duration = std::time::Duration::from_secs(16 * 60);

pub async fn run_once(server: &TestServer, side: pb::ReconcilerSide) -> pb::ReconcilerRun {
    server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: side.into() })
        .await
        .expect("run once")
        .into_inner()
}

pub async fn status(server: &TestServer) -> pb::ReconcilerStatus {
    server
        .reconciler_client()
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("get status")
        .into_inner()
}

pub async fn list_runs(
    server: &TestServer,
    request: pb::ListReconcilerRunsRequest,
) -> Result<pb::ListReconcilerRunsResponse, tonic::Status> {
    server
        .reconciler_client()
        .list_reconciler_runs(request)
        .await
        .map(|r| r.into_inner())
}

pub async fn run_ids(server: &TestServer, request: pb::ListReconcilerRunsRequest) -> Vec<i64> {
    list_runs(server, request)
        .await
        .expect("list runs")
        .runs
        .iter()
        .map(|r| r.id)
        .collect()
}

pub fn counts(
    scanned: i64,
    advanced: i64,
    replayed: i64,
    skipped: i64,
    errors: i64,
) -> Option<pb::ReconcilerSideCounts> {
    Some(pb::ReconcilerSideCounts {
        scanned,
        advanced,
        replayed,
        skipped,
        errors,
    })
}

/// A task of project "shop" stuck in development by a lost transition: its
/// head commit's CI (`ci`) arrived while its developer session was active,
/// then the runner lost the session (terminated, never reported), and the
/// task has not changed for longer than any grace.
pub async fn stuck_in_development(
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    stuck_in("shop", server, issue, work_item, sha, ci).await
}

/// As `stuck_in_development`, in `project`.
pub async fn stuck_in(
    project: &str,
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    let id = just_stuck(project, server, issue, work_item, sha, ci).await;
    server.age_task(id, PAST_GRACE).await;
    id
}

/// As `stuck_in_development`, but changed just now.
pub async fn just_stuck_in_development(
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    just_stuck("shop", server, issue, work_item, sha, ci).await
}

pub async fn just_stuck(
    project: &str,
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    let id = server
        .start_task(project, issue, work_item)
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(id, pb::Stage::Development).await;
    server
        .pull_request(id, pb::PullRequestState::Open, sha)
        .await;
    let recorded = server.ci(sha, "", "ci/test", ci).await;
    assert_eq!(recorded.task_id, id);
    assert!(
        recorded.advance.is_none(),
        "the session was active: {recorded:?}"
    );
    let task = server.task(id).await;
    server.kill_session(&task.stage_session_id).await;
    let task = server.task(id).await;
    assert_eq!(task.stage(), pb::Stage::Development);
    assert!(!task.stage_session_active, "{task:?}");
    id
}
