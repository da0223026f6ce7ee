//! The Reconciler (SPEC §8) through the real server and generated client:
//! the gate side over tasks stuck by a lost webhook, the tracker side against
//! a fake Plane API served on loopback, the kill-switches, one pass at a time,
//! the history (GetStatus, ListReconcilerRuns, the change log) and roles.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bosun::pb::{
    self, AdvanceOutcome, CiStatusState, EventFilter, ListEventsRequest, ListReconcilerRunsRequest,
    PullRequestState, ReconcilerActionKind, ReconcilerRunState, ReconcilerSide, ReconcilerTrigger,
    Stage, StageSessionOutcome, VerdictDecision, VerdictSource, event::Payload,
};
use common::pipeline::{REPO, SHA_A, SHA_B};
use common::{
    ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, assert_error, bad_fields,
    error_metadata, with_token,
};
use prost_types::FieldMask;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::Code;
use tonic::Streaming;

/// Longer than every stage's default grace (10 and 15 minutes).
const PAST_GRACE: Duration = Duration::from_secs(16 * 60);
/// How long a test waits for something that happens at once.
const PATIENCE: Duration = Duration::from_secs(20);

const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccc";
const SHA_D: &str = "dddddddddddddddddddddddddddddddddddddddd";

// ---------------------------------------------------------------------------
// A fake Plane API on loopback.

const PLANE_KEY: &str = "plane-key-0123456789";
const WORKSPACE: &str = "acme";
/// Plane project ids (UUIDs in Plane).
const PLANE_SHOP: &str = "5b1e6c2a-0000-4000-8000-000000000001";
const PLANE_DOWN: &str = "5b1e6c2a-0000-4000-8000-000000000002";
const PLANE_OTHER: &str = "5b1e6c2a-0000-4000-8000-000000000003";
/// Long past any tracker grace.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// State ids of `standard_states`.
const BACKLOG: &str = "st-backlog";
const IN_PROGRESS: &str = "st-in-progress";
const APPROVED: &str = "st-approved";
const REJECTED: &str = "st-rejected";
const DONE: &str = "st-done";

/// What a Plane project answers with.
#[derive(Clone, Default)]
enum Fault {
    #[default]
    None,
    /// Every request of the project answers this HTTP status.
    Status(u16),
    /// Every request of the project never answers.
    Hang,
    /// The first page of the issue listing waits: `entered` is notified when
    /// it arrives, and it answers once `release` is notified. Once only.
    Block {
        entered: Arc<Notify>,
        release: Arc<Notify>,
    },
}

#[derive(Clone, Default)]
struct PlaneProject {
    identifier: String,
    states: Vec<Value>,
    issues: Vec<Value>,
    fault: Fault,
}

/// One request the fake answered (or refused).
#[derive(Debug, Clone, PartialEq)]
struct PlaneRequest {
    project: String,
    /// "project", "states" or "issues".
    listing: String,
    per_page: Option<String>,
    cursor: Option<String>,
}

#[derive(Default)]
struct PlaneData {
    projects: HashMap<String, PlaneProject>,
    requests: Vec<PlaneRequest>,
    unauthorized: usize,
}

#[derive(Clone)]
struct FakePlane {
    url: String,
    data: Arc<Mutex<PlaneData>>,
}

impl FakePlane {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind plane");
        let plane = FakePlane {
            url: format!("http://{}", listener.local_addr().expect("plane addr")),
            data: Arc::default(),
        };
        let app = Router::new()
            .fallback(serve_plane)
            .with_state(plane.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        plane
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlaneData> {
        self.data.lock().unwrap()
    }

    /// Adds Plane project `id` ("SHOP"-like `identifier`) with the standard
    /// states and `issues`.
    fn add(&self, id: &str, identifier: &str, issues: Vec<Value>) {
        self.add_project(
            id,
            PlaneProject {
                identifier: identifier.into(),
                states: standard_states(),
                issues,
                fault: Fault::None,
            },
        );
    }

    fn add_project(&self, id: &str, project: PlaneProject) {
        self.lock().projects.insert(id.into(), project);
    }

    fn set_fault(&self, id: &str, fault: Fault) {
        self.lock()
            .projects
            .get_mut(id)
            .expect("plane project")
            .fault = fault;
    }

    /// Blocks the next issue listing of project `id`; returns (entered,
    /// release).
    fn block(&self, id: &str) -> (Arc<Notify>, Arc<Notify>) {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        self.set_fault(
            id,
            Fault::Block {
                entered: entered.clone(),
                release: release.clone(),
            },
        );
        (entered, release)
    }

    fn requests(&self) -> Vec<PlaneRequest> {
        self.lock().requests.clone()
    }

    /// The cursors of project `id`'s issue listings, in order.
    fn issue_cursors(&self, id: &str) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .filter(|r| r.project == id && r.listing == "issues")
            .map(|r| r.cursor)
            .collect()
    }

    fn unauthorized(&self) -> usize {
        self.lock().unauthorized
    }
}

async fn serve_plane(
    State(plane): State<FakePlane>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(PLANE_KEY) {
        plane.lock().unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "Invalid API key"})),
        )
            .into_response();
    }
    let Some(rest) = uri.path().strip_prefix("/api/v1/workspaces/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (workspace, project_id, listing) = match parts.as_slice() {
        [workspace, "projects", project, ""] => (*workspace, *project, "project"),
        [
            workspace,
            "projects",
            project,
            listing @ ("states" | "issues"),
            "",
        ] => (*workspace, *project, *listing),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if workspace != WORKSPACE {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (project, fault) = {
        let mut data = plane.lock();
        data.requests.push(PlaneRequest {
            project: project_id.into(),
            listing: listing.into(),
            per_page: query.get("per_page").cloned(),
            cursor: query.get("cursor").cloned(),
        });
        let Some(project) = data.projects.get_mut(project_id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let fault = project.fault.clone();
        if matches!(fault, Fault::Block { .. }) && listing == "issues" {
            project.fault = Fault::None;
        }
        (project.clone(), fault)
    };
    match fault {
        Fault::None => {}
        Fault::Status(code) => {
            return StatusCode::from_u16(code).expect("status").into_response();
        }
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Block { entered, release } => {
            if listing == "issues" {
                entered.notify_one();
                release.notified().await;
            }
        }
    }
    let body = match listing {
        "project" => json!({"id": project_id, "identifier": project.identifier, "name": "Shop"}),
        "states" => page(&project.states, &query),
        _ => page(&project.issues, &query),
    };
    axum::Json(body).into_response()
}

/// One page of a listing, as Plane pages them: cursor "<per_page>:<page>:0".
fn page(items: &[Value], query: &HashMap<String, String>) -> Value {
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let page: usize = query
        .get("cursor")
        .and_then(|c| c.split(':').nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let start = (page * per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    json!({
        "grouped_by": null,
        "next_cursor": format!("{per_page}:{}:0", page + 1),
        "prev_cursor": format!("{per_page}:{}:0", page.saturating_sub(1)),
        "next_page_results": end < items.len(),
        "prev_page_results": page > 0,
        "count": end - start,
        "total_pages": items.len().div_ceil(per_page),
        "total_results": items.len(),
        "results": items[start..end],
    })
}

fn state(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "color": "#60646C", "group": "started"})
}

fn standard_states() -> Vec<Value> {
    vec![
        state(BACKLOG, "Backlog"),
        state(IN_PROGRESS, "In Progress"),
        state(APPROVED, "Approved"),
        state(REJECTED, "Rejected"),
        state(DONE, "Done"),
    ]
}

fn issue(id: &str, sequence: i64, name: &str, state: &str, updated_at: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "sequence_id": sequence,
        "state": state,
        "priority": "none",
        "created_at": LONG_AGO,
        "updated_at": updated_at,
    })
}

/// RFC 3339 time `age` ago.
fn ago(age: Duration) -> String {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - age;
    chrono::DateTime::<chrono::Utc>::from_timestamp(at.as_secs() as i64, at.subsec_nanos())
        .expect("time")
        .to_rfc3339()
}

fn binding(plane_project: &str) -> pb::PlaneBinding {
    pb::PlaneBinding {
        workspace_slug: WORKSPACE.into(),
        plane_project_id: plane_project.into(),
        ..Default::default()
    }
}

/// A server polling `plane`, two issues per page.
async fn start_with_plane(
    plane: &FakePlane,
    tweak: impl FnOnce(&mut bosun::config::Config),
) -> TestServer {
    let url = plane.url.clone();
    TestServer::start_with(move |config| {
        config.reconciler.plane.base_url = url;
        config.reconciler.plane.api_key = PLANE_KEY.into();
        config.reconciler.plane.page_size = 2;
        tweak(config);
    })
    .await
}

/// Registers project `id` bound to Plane project `plane_project`.
async fn bound_project(server: &TestServer, id: &str, plane_project: &str) -> pb::Project {
    server
        .project(id, |p| p.plane = Some(binding(plane_project)))
        .await
}

// ---------------------------------------------------------------------------
// Calls.

async fn run_once(server: &TestServer, side: ReconcilerSide) -> pb::ReconcilerRun {
    server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: side.into() })
        .await
        .expect("run once")
        .into_inner()
}

async fn run_error(server: &TestServer, side: ReconcilerSide) -> tonic::Status {
    server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: side.into() })
        .await
        .expect_err("run once should fail")
}

async fn status(server: &TestServer) -> pb::ReconcilerStatus {
    server
        .reconciler_client()
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("get status")
        .into_inner()
}

async fn list_runs(
    server: &TestServer,
    request: ListReconcilerRunsRequest,
) -> Result<pb::ListReconcilerRunsResponse, tonic::Status> {
    server
        .reconciler_client()
        .list_reconciler_runs(request)
        .await
        .map(|r| r.into_inner())
}

async fn run_ids(server: &TestServer, request: ListReconcilerRunsRequest) -> Vec<i64> {
    list_runs(server, request)
        .await
        .expect("list runs")
        .runs
        .iter()
        .map(|r| r.id)
        .collect()
}

async fn switch(
    server: &TestServer,
    settings: pb::ReconcilerSettings,
    paths: &[&str],
) -> Result<pb::ReconcilerSettings, tonic::Status> {
    server
        .reconciler_client()
        .update_reconciler_settings(pb::UpdateReconcilerSettingsRequest {
            settings: Some(settings),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn settings(server: &TestServer) -> pb::ReconcilerSettings {
    server
        .reconciler_client()
        .get_reconciler_settings(pb::GetReconcilerSettingsRequest {})
        .await
        .expect("get settings")
        .into_inner()
}

fn counts(
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

/// Tasks of the server, oldest first.
async fn all_tasks(server: &TestServer) -> Vec<pb::Task> {
    let mut tasks = server
        .tasks()
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .expect("list tasks")
        .into_inner()
        .tasks;
    tasks.reverse();
    tasks
}

async fn facts(server: &TestServer, id: i64) -> pb::TaskFacts {
    server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: id })
        .await
        .expect("task facts")
        .into_inner()
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

async fn head_seq(server: &TestServer) -> i64 {
    server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .expect("head")
        .into_inner()
        .head_seq
}

/// Events after `after_seq` whose type starts with `prefix`, of task
/// `task_id` when not 0.
async fn events(server: &TestServer, after_seq: i64, prefix: &str, task_id: i64) -> Vec<pb::Event> {
    server
        .events()
        .list_events(ListEventsRequest {
            after_seq,
            filter: Some(EventFilter {
                event_type_prefixes: if prefix.is_empty() {
                    Vec::new()
                } else {
                    vec![prefix.into()]
                },
                task_id,
                ..Default::default()
            }),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list events")
        .into_inner()
        .events
}

/// A Watch of the reconciler_run.finished events after `after_seq`.
async fn watch_finished(server: &TestServer, after_seq: i64) -> Streaming<pb::WatchResponse> {
    server
        .events()
        .watch(pb::WatchRequest {
            after_seq,
            filter: Some(EventFilter {
                event_type_prefixes: vec!["reconciler_run.finished".into()],
                ..Default::default()
            }),
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next pass that ends on `stream` (`what`: what the wait is for).
async fn next_finished(stream: &mut Streaming<pb::WatchResponse>, what: &str) -> pb::ReconcilerRun {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("waited too long for {what}"))
            .expect("watch")
            .expect("stream open");
        if let Some(event) = message.events.into_iter().next() {
            let Some(Payload::ReconcilerRun(run)) = event.payload else {
                panic!("a run payload: {event:?}");
            };
            return run;
        }
    }
}

/// A task of project "shop" stuck in development by a lost transition: its
/// head commit's CI (`ci`) arrived while its developer session was active,
/// then the runner lost the session (terminated, never reported), and the
/// task has not changed for longer than any grace.
async fn stuck_in_development(
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    stuck_in("shop", server, issue, work_item, sha, ci).await
}

/// As `stuck_in_development`, in `project`.
async fn stuck_in(
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
async fn just_stuck_in_development(
    server: &TestServer,
    issue: &str,
    work_item: &str,
    sha: &str,
    ci: CiStatusState,
) -> i64 {
    just_stuck("shop", server, issue, work_item, sha, ci).await
}

async fn just_stuck(
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
    server.walk_to(id, Stage::Development).await;
    server.pull_request(id, PullRequestState::Open, sha).await;
    let recorded = server.ci(sha, "", "ci/test", ci).await;
    assert_eq!(recorded.task_id, id);
    assert!(
        recorded.advance.is_none(),
        "the session was active: {recorded:?}"
    );
    let task = server.task(id).await;
    server.kill_session(&task.stage_session_id).await;
    let task = server.task(id).await;
    assert_eq!(task.stage(), Stage::Development);
    assert!(!task.stage_session_active, "{task:?}");
    id
}

// ---------------------------------------------------------------------------
// Gate side.

#[tokio::test]
async fn a_task_whose_ci_webhook_was_lost_advances_on_the_next_pass_as_advance_task_would() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let a = server
        .start_task("shop", "issue-a", "SHOP-1")
        .await
        .task
        .unwrap()
        .id;
    let b = server
        .start_task("shop", "issue-b", "SHOP-2")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(a, Stage::Development).await;
    server.walk_to(b, Stage::Development).await;

    // The developer of `a` finishes before CI has said anything.
    let finished = server.finish_stage(a).await;
    assert_eq!(finished.outcome(), AdvanceOutcome::Waiting);
    // CI passes on a commit the forge names without a branch: two tasks of
    // the repo are in development, so it resolves to nothing.
    let ci = server
        .ci(SHA_B, "", "ci/test", CiStatusState::Success)
        .await;
    assert_eq!(ci.resolution(), pb::ShaResolution::Ambiguous);
    assert_eq!((ci.task_id, ci.candidate_task_ids.clone()), (0, vec![a, b]));
    assert!(ci.advance.is_none());
    // The pull request report names the commit: that moves nothing either.
    server.pull_request(a, PullRequestState::Open, SHA_B).await;
    let stuck = server.task(a).await;
    assert_eq!(stuck.head_sha, SHA_B);
    assert_eq!(stuck.stage(), Stage::Development);
    assert!(!stuck.stage_session_active);
    assert_eq!(
        facts(&server, a).await.current_gate.unwrap().status(),
        pb::GateStatus::Passed,
        "green, and nobody noticed"
    );
    server.age_task(a, PAST_GRACE).await;
    server.age_task(b, PAST_GRACE).await;
    let before = head_seq(&server).await;

    let run = run_once(&server, ReconcilerSide::Unspecified).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.trigger(), ReconcilerTrigger::Manual);
    assert!(run.gate_side_ran && run.tracker_side_ran);
    assert!(run.end_time.is_some());
    assert_eq!(
        run.gate_side,
        counts(2, 1, 0, 1, 0),
        "b's developer is still to come"
    );
    let task = server.task(a).await;
    assert_eq!(task.stage(), Stage::Review);
    assert_eq!(task.stage_role(), pb::Role::Reviewer);
    assert!(task.stage_session_active);
    let gate = task.last_gate.clone().unwrap();
    assert_eq!(
        (gate.stage(), gate.status()),
        (Stage::Development, pb::GateStatus::Passed)
    );
    assert_eq!(gate.head_sha, SHA_B);
    assert_eq!(task.rollback_count, 0);
    let reviewer = session(&server, &task.stage_session_id).await;
    assert_eq!(reviewer.state(), pb::SessionState::NotStarted);
    assert_eq!((reviewer.role(), reviewer.task_id), (pb::Role::Reviewer, a));
    assert_ne!(task.stage_session_id, stuck.stage_session_id);
    let [action] = run.actions.as_slice() else {
        panic!("one action: {run:?}");
    };
    assert_eq!(
        action,
        &pb::ReconcilerAction {
            run_id: run.id,
            side: ReconcilerSide::Gate.into(),
            kind: ReconcilerActionKind::Advanced.into(),
            task_id: a,
            project_id: "shop".into(),
            work_item_id: "SHOP-1".into(),
            tracker_issue_id: String::new(),
            from_stage: Stage::Development.into(),
            to_stage: Stage::Review.into(),
            session_id: task.stage_session_id.clone(),
            action_time: action.action_time,
        }
    );
    assert!(action.action_time.is_some());
    assert!(run.error_details.is_empty());
    assert_eq!(server.task(b).await.stage(), Stage::Development);
    // The move is on the change log as AdvanceTask's are: the task entering
    // its new stage, and the new session.
    let moved: Vec<String> = events(&server, before, "", a)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        moved,
        ["session.created", "task.stage_changed"],
        "{moved:?}"
    );

    let again = run_once(&server, ReconcilerSide::Unspecified).await;
    assert_eq!(again.gate_side, counts(2, 0, 0, 2, 0));
    assert!(again.actions.is_empty());
    assert_eq!(server.task(a).await, task);
}

#[tokio::test]
async fn fresh_held_busy_and_red_tasks_are_left_alone() {
    let server = TestServer::start_with(|config| config.tasks.retry_budget = 0).await;
    server.project("shop", |_| {}).await;
    // Red: CI failed, and its session was lost.
    let red = stuck_in_development(
        &server,
        "issue-red",
        "SHOP-1",
        SHA_A,
        CiStatusState::Failure,
    )
    .await;
    // Fresh: green, but changed just now.
    let fresh = just_stuck_in_development(
        &server,
        "issue-fresh",
        "SHOP-2",
        SHA_B,
        CiStatusState::Success,
    )
    .await;
    // Busy: green, but its developer session has not ended.
    let busy = server
        .start_task("shop", "issue-busy", "SHOP-3")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(busy, Stage::Development).await;
    server
        .pull_request(busy, PullRequestState::Open, SHA_C)
        .await;
    server
        .ci(SHA_C, "", "ci/test", CiStatusState::Success)
        .await;
    server.age_task(busy, PAST_GRACE).await;
    // Held: green, but out of retries.
    let held = server
        .start_task("shop", "issue-held", "SHOP-4")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(held, Stage::Development).await;
    server
        .pull_request(held, PullRequestState::Open, SHA_D)
        .await;
    server
        .ci(SHA_D, "", "ci/test", CiStatusState::Success)
        .await;
    let session_id = server.task(held).await.stage_session_id;
    let failed = server
        .tasks()
        .advance_task(pb::AdvanceTaskRequest {
            task_id: held,
            session_id,
            outcome: StageSessionOutcome::FailedTransient.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.outcome(), AdvanceOutcome::Held);
    server.age_task(held, PAST_GRACE).await;
    // Analysis: a human gate.
    let analysis = server
        .start_task("shop", "issue-new", "SHOP-5")
        .await
        .task
        .unwrap()
        .id;
    server.age_task(analysis, PAST_GRACE).await;

    let ids = [red, fresh, busy, held, analysis];
    for id in [fresh, busy, held] {
        let gate = facts(&server, id).await.current_gate.unwrap();
        assert_eq!(gate.status(), pb::GateStatus::Passed, "task {id}");
    }
    let red_gate = facts(&server, red).await.current_gate.unwrap();
    assert_eq!(red_gate.status(), pb::GateStatus::Failed);
    let mut before = Vec::new();
    for id in ids {
        before.push(server.task(id).await);
    }
    let seq = head_seq(&server).await;

    let run = run_once(&server, ReconcilerSide::Gate).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.side(), ReconcilerSide::Gate);
    assert!(run.gate_side_ran && !run.tracker_side_ran);
    // Held and analysis tasks are not even scanned.
    assert_eq!(run.gate_side, counts(3, 0, 0, 3, 0));
    assert!(run.actions.is_empty() && run.error_details.is_empty());
    for (id, task) in ids.iter().zip(&before) {
        assert_eq!(&server.task(*id).await, task, "task {id} changed");
    }
    assert!(server.lesson_rows("gate_failure").await.is_empty());
    assert!(events(&server, seq, "task.", 0).await.is_empty());
    assert!(events(&server, seq, "session.", 0).await.is_empty());

    // What held the fresh and the busy ones back: once past the grace, and
    // once the session is gone, they move.
    server.age_task(fresh, PAST_GRACE).await;
    let busy_session = server.task(busy).await.stage_session_id;
    server.kill_session(&busy_session).await;
    let run = run_once(&server, ReconcilerSide::Gate).await;
    assert_eq!(run.gate_side, counts(3, 2, 0, 1, 0));
    let moved: Vec<i64> = run.actions.iter().map(|a| a.task_id).collect();
    assert_eq!(moved, [fresh, busy]);
    assert_eq!(server.task(red).await, before[0], "red stays red and put");
    assert_eq!(server.task(held).await, before[3]);
    assert!(server.lesson_rows("gate_failure").await.is_empty());
}

#[tokio::test]
async fn scanned_tasks_add_up_to_advanced_skipped_and_errors_across_stages() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let dev =
        stuck_in_development(&server, "issue-1", "SHOP-1", SHA_A, CiStatusState::Success).await;
    // In review, the reviewer gone and an approval recorded meanwhile by hand
    // would advance at once; a PR review verdict recorded while the reviewer
    // was active does not.
    let review = server
        .start_task("shop", "issue-2", "SHOP-2")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(review, Stage::Review).await;
    let recorded = server
        .tasks()
        .record_verdict(pb::RecordVerdictRequest {
            task_ref: Some(pb::record_verdict_request::TaskRef::TaskId(review)),
            decision: VerdictDecision::Approved.into(),
            source: VerdictSource::PrReview.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(recorded.advance.is_none(), "the reviewer was active");
    let reviewer = server.task(review).await.stage_session_id;
    server.kill_session(&reviewer).await;
    server.age_task(review, PAST_GRACE).await;

    let run = run_once(&server, ReconcilerSide::Gate).await;

    let gate = run.gate_side.unwrap();
    assert_eq!(gate.scanned, gate.advanced + gate.skipped + gate.errors);
    assert_eq!(run.gate_side, counts(2, 2, 0, 0, 0));
    let moves: Vec<(i64, Stage, Stage)> = run
        .actions
        .iter()
        .map(|a| (a.task_id, a.from_stage(), a.to_stage()))
        .collect();
    assert_eq!(
        moves,
        [
            (dev, Stage::Development, Stage::Review),
            (review, Stage::Review, Stage::Testing)
        ]
    );
    assert_eq!(server.task(review).await.stage(), Stage::Testing);
}

#[tokio::test]
async fn one_task_that_cannot_be_evaluated_does_not_stop_the_sweep() {
    let server = TestServer::start().await;
    server.project("a-broken", |_| {}).await;
    server.project("shop", |_| {}).await;
    let broken = stuck_in(
        "a-broken",
        &server,
        "issue-1",
        "SHOP-1",
        SHA_A,
        CiStatusState::Success,
    )
    .await;
    let fine =
        stuck_in_development(&server, "issue-2", "SHOP-2", SHA_B, CiStatusState::Success).await;
    // Valid JSON the gate cannot read as a list of contexts.
    let mut conn = server.sqlite().await;
    sqlx::query(
        "UPDATE projects SET required_ci_contexts = '{\"not\": \"a list\"}' WHERE id = 'a-broken'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let run = run_once(&server, ReconcilerSide::Gate).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.error.is_empty());
    assert_eq!(run.gate_side, counts(2, 1, 0, 0, 1), "{run:?}");
    let [failure] = run.error_details.as_slice() else {
        panic!("one failure: {run:?}");
    };
    assert_eq!(
        (
            failure.side(),
            failure.project_id.as_str(),
            failure.task_id,
            failure.reason.as_str()
        ),
        (
            ReconcilerSide::Gate,
            "a-broken",
            broken,
            "GATE_EVALUATION_FAILED"
        )
    );
    assert!(!failure.message.is_empty());
    assert_eq!(run.actions.len(), 1);
    assert_eq!(run.actions[0].task_id, fine);
    assert_eq!(server.task(fine).await.stage(), Stage::Review);
    assert_eq!(server.task(broken).await.stage(), Stage::Development);
}

#[tokio::test]
async fn a_pass_that_cannot_list_the_tasks_fails_and_says_why() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let id =
        stuck_in_development(&server, "issue-1", "SHOP-1", SHA_A, CiStatusState::Success).await;
    let mut conn = server.sqlite().await;
    sqlx::query("UPDATE tasks SET last_gate = '{\"bogus\": 1}' WHERE id = ?")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    let seq = head_seq(&server).await;

    let run = run_once(&server, ReconcilerSide::Unspecified).await;

    assert_eq!(run.state(), ReconcilerRunState::Failed, "{run:?}");
    assert!(run.end_time.is_some());
    assert!(!run.error.is_empty());
    let data_dir = server.config.data_dir.display().to_string();
    assert!(!run.error.contains(&data_dir), "{}", run.error);
    assert!(!run.error.contains("SELECT"), "{}", run.error);
    assert_eq!(status(&server).await.totals.unwrap().failed_passes, 1);
    let logged = events(&server, seq, "reconciler_run.", 0).await;
    let types: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["reconciler_run.started", "reconciler_run.failed"]);
    let Some(Payload::ReconcilerRun(failed)) = &logged[1].payload else {
        panic!("a run payload: {:?}", logged[1]);
    };
    assert_eq!(failed, &run);
    assert_eq!(
        run_ids(
            &server,
            ListReconcilerRunsRequest {
                state: ReconcilerRunState::Failed.into(),
                ..Default::default()
            }
        )
        .await,
        [run.id]
    );
}

// ---------------------------------------------------------------------------
// Settings and kill-switches.

#[tokio::test]
async fn settings_show_the_configuration_and_the_switches_now() {
    let server = TestServer::start_with(|config| {
        config.reconciler.gate_side_enabled = false;
        config.reconciler.interval = Duration::from_secs(90);
        config.reconciler.grace.review = Duration::from_secs(300);
        config.reconciler.tracker_grace = Duration::from_secs(30);
    })
    .await;
    let secs = |s: i64| {
        Some(prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    };
    let grace = |stage: Stage, s: i64| pb::StageGrace {
        stage: stage.into(),
        grace: secs(s),
    };
    let expected = pb::ReconcilerSettings {
        gate_side_enabled: false,
        tracker_side_enabled: true,
        interval: secs(90),
        stage_grace: vec![
            grace(Stage::Development, 600),
            grace(Stage::Review, 300),
            grace(Stage::Testing, 600),
            grace(Stage::Deploy, 900),
        ],
        tracker_grace: secs(30),
    };
    assert_eq!(settings(&server).await, expected);
    assert_eq!(status(&server).await.settings, Some(expected.clone()));

    let both_off = pb::ReconcilerSettings {
        tracker_side_enabled: false,
        ..expected.clone()
    };
    let changed = switch(&server, both_off, &["tracker_side_enabled"])
        .await
        .unwrap();
    assert!(!changed.gate_side_enabled && !changed.tracker_side_enabled);
    assert_eq!(settings(&server).await, changed);
    assert!(
        status(&server).await.next_run_time.is_none(),
        "no pass is coming with both sides off"
    );
    let err = run_error(&server, ReconcilerSide::Unspecified).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");

    // "*" names both switches; the read-only fields sent along are ignored.
    let on = pb::ReconcilerSettings {
        gate_side_enabled: true,
        tracker_side_enabled: true,
        interval: secs(1),
        ..Default::default()
    };
    let changed = switch(&server, on, &["*"]).await.unwrap();
    assert_eq!(changed, expected_with(&expected, true, true));
    assert!(status(&server).await.next_run_time.is_some());
}

fn expected_with(
    base: &pb::ReconcilerSettings,
    gate: bool,
    tracker: bool,
) -> pb::ReconcilerSettings {
    pb::ReconcilerSettings {
        gate_side_enabled: gate,
        tracker_side_enabled: tracker,
        ..base.clone()
    }
}

#[tokio::test]
async fn read_only_unknown_and_empty_mask_paths_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let before = settings(&server).await;
    let off = pb::ReconcilerSettings {
        gate_side_enabled: false,
        tracker_side_enabled: false,
        interval: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    };
    for paths in [
        &["interval"][..],
        &["stage_grace"],
        &["tracker_grace"],
        &["gate_side_enabled", "interval"],
        &["bogus"],
        &["tracker_side_enabled", "bogus"],
        &[],
    ] {
        let err = switch(&server, off.clone(), paths).await.unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&err), ["update_mask"], "{paths:?}");
        assert_eq!(
            settings(&server).await,
            before,
            "{paths:?} changed something"
        );
    }
    let err = server
        .reconciler_client()
        .update_reconciler_settings(pb::UpdateReconcilerSettingsRequest {
            settings: Some(off),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(settings(&server).await, before);
}

#[tokio::test]
async fn a_side_switched_off_is_refused_alone_and_not_run_in_a_full_pass() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let id =
        stuck_in_development(&server, "issue-1", "SHOP-1", SHA_A, CiStatusState::Success).await;
    let off = pb::ReconcilerSettings {
        gate_side_enabled: false,
        ..Default::default()
    };
    let changed = switch(&server, off, &["gate_side_enabled"]).await.unwrap();
    assert!(!changed.gate_side_enabled && changed.tracker_side_enabled);

    let err = run_error(&server, ReconcilerSide::Gate).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");
    let run = run_once(&server, ReconcilerSide::Unspecified).await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.side(), ReconcilerSide::Unspecified);
    assert!(!run.gate_side_ran, "{run:?}");
    assert!(run.tracker_side_ran);
    assert_eq!(run.gate_side, counts(0, 0, 0, 0, 0));
    assert_eq!(server.task(id).await.stage(), Stage::Development);
    // Only the refused RunOnce left no row.
    assert_eq!(run_ids(&server, Default::default()).await, [run.id]);

    let on = pb::ReconcilerSettings {
        gate_side_enabled: true,
        ..Default::default()
    };
    switch(&server, on, &["gate_side_enabled"]).await.unwrap();
    let run = run_once(&server, ReconcilerSide::Gate).await;
    assert!(run.gate_side_ran && !run.tracker_side_ran);
    assert_eq!(run.gate_side, counts(1, 1, 0, 0, 0));
    assert_eq!(server.task(id).await.stage(), Stage::Review);

    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["tracker_side_enabled"])
        .await
        .unwrap();
    let err = run_error(&server, ReconcilerSide::Tracker).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");
    let run = run_once(&server, ReconcilerSide::Unspecified).await;
    assert!(run.gate_side_ran && !run.tracker_side_ran);
}

#[tokio::test]
async fn a_bad_side_is_refused() {
    let server = TestServer::start().await;
    let err = server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: 99 })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&err), ["side"]);
    assert!(run_ids(&server, Default::default()).await.is_empty());
}

// ---------------------------------------------------------------------------
// Tracker side.

#[tokio::test]
async fn an_in_progress_issue_without_a_task_is_replayed_as_start_task() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-backlog", 11, "Someday", BACKLOG, LONG_AGO),
            issue("iss-1", 12, "Fix the checkout", IN_PROGRESS, LONG_AGO),
            issue("iss-done", 13, "Shipped", DONE, LONG_AGO),
        ],
    );
    plane.add(
        PLANE_OTHER,
        "OLD",
        vec![issue("iss-old", 1, "Old", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    server.project("plain", |_| {}).await;
    bound_project(&server, "old", PLANE_OTHER).await;
    server
        .sessions_client()
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "old".into(),
        })
        .await
        .unwrap();

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.tracker_side_ran && !run.gate_side_ran);
    assert_eq!(
        run.projects_polled, 1,
        "only active projects with a binding"
    );
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    assert!(run.error_details.is_empty(), "{:?}", run.error_details);
    let [task] = all_tasks(&server).await.try_into().expect("one task");
    assert_eq!(task.project_id, "shop");
    assert_eq!(task.tracker_issue_id, "iss-1");
    assert_eq!(task.work_item_id, "SHOP-12");
    assert_eq!(task.title, "Fix the checkout");
    assert_eq!(task.repo, REPO);
    assert_eq!(task.branch, "feature/SHOP-12");
    assert_eq!(task.stage(), Stage::Analysis);
    let analyst = session(&server, &task.stage_session_id).await;
    assert_eq!(
        (analyst.role(), analyst.state()),
        (pb::Role::Analyst, pb::SessionState::NotStarted)
    );
    let [action] = run.actions.as_slice() else {
        panic!("one action: {run:?}");
    };
    assert_eq!(
        action,
        &pb::ReconcilerAction {
            run_id: run.id,
            side: ReconcilerSide::Tracker.into(),
            kind: ReconcilerActionKind::Started.into(),
            task_id: task.id,
            project_id: "shop".into(),
            work_item_id: "SHOP-12".into(),
            tracker_issue_id: "iss-1".into(),
            from_stage: Stage::Unspecified.into(),
            to_stage: Stage::Analysis.into(),
            session_id: task.stage_session_id.clone(),
            action_time: action.action_time,
        }
    );
    assert!(plane.requests().iter().all(|r| r.project == PLANE_SHOP));
    assert_eq!(plane.unauthorized(), 0);
}

#[tokio::test]
async fn approved_and_rejected_issues_are_replayed_as_tracker_verdicts() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // Two tasks whose reviewers finished with no verdict yet; their analysis
    // was approved an hour ago.
    let mut reviewed = Vec::new();
    for n in [1, 2] {
        let id = server
            .start_task("shop", &format!("iss-{n}"), &format!("SHOP-{n}"))
            .await
            .task
            .unwrap()
            .id;
        server.walk_to(id, Stage::Review).await;
        let waiting = server.finish_stage(id).await;
        assert_eq!(waiting.outcome(), AdvanceOutcome::Waiting);
        server.age_verdicts(id, Duration::from_secs(3600)).await;
        reviewed.push(id);
    }
    let [approved, rejected] = reviewed[..] else {
        unreachable!()
    };
    let five_minutes_ago = ago(Duration::from_secs(300));
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-1", 1, "One", APPROVED, &five_minutes_ago),
            issue("iss-2", 2, "Two", REJECTED, &five_minutes_ago),
        ],
    );

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(2, 2, 2, 0, 0), "{run:?}");
    let to_testing = server.task(approved).await;
    assert_eq!(to_testing.stage(), Stage::Testing);
    assert_eq!(to_testing.stage_role(), pb::Role::Tester);
    let to_development = server.task(rejected).await;
    assert_eq!(to_development.stage(), Stage::Development);
    assert_eq!(to_development.rollback_count, 1);
    let kinds: Vec<_> = run
        .actions
        .iter()
        .map(|a| {
            (
                a.kind(),
                a.side(),
                a.task_id,
                a.tracker_issue_id.as_str(),
                a.from_stage(),
                a.to_stage(),
                a.session_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                ReconcilerActionKind::VerdictReplayed,
                ReconcilerSide::Tracker,
                approved,
                "iss-1",
                Stage::Review,
                Stage::Testing,
                to_testing.stage_session_id.as_str()
            ),
            (
                ReconcilerActionKind::VerdictReplayed,
                ReconcilerSide::Tracker,
                rejected,
                "iss-2",
                Stage::Review,
                Stage::Development,
                to_development.stage_session_id.as_str()
            ),
        ]
    );
    for (id, decision) in [
        (approved, VerdictDecision::Approved),
        (rejected, VerdictDecision::Rejected),
    ] {
        let newest = facts(&server, id).await.verdicts[0].clone();
        assert_eq!(
            (newest.decision(), newest.source(), newest.stage()),
            (decision, VerdictSource::Tracker, Stage::Review),
            "task {id}"
        );
    }
    // The rejection rolled back through the one path: with its lesson.
    let lessons = server.lesson_rows("gate_failure").await;
    assert_eq!(lessons.len(), 1, "{lessons:?}");
    assert_eq!(lessons[0].0, Some(rejected));
}

#[tokio::test]
async fn every_page_is_read_and_the_bindings_state_names_are_honoured() {
    let plane = FakePlane::start().await;
    let mut states = vec![
        state("st-doing", "Doing"),
        state("st-signed", "Signed Off"),
        state("st-back", "Sent Back"),
    ];
    // Plane's usual names are there too, and mean nothing to this project.
    states.extend(standard_states());
    let mut issues: Vec<Value> = (1..=5)
        .map(|n| {
            issue(
                &format!("iss-{n}"),
                n,
                &format!("Issue {n}"),
                "st-doing",
                LONG_AGO,
            )
        })
        .collect();
    // The state as an expanded object, as Plane sends it with ?expand=state.
    issues.push(json!({
        "id": "iss-6", "name": "Issue 6", "sequence_id": 6,
        "state": {"id": "st-doing", "name": "Doing"}, "updated_at": LONG_AGO,
    }));
    let five_minutes_ago = ago(Duration::from_secs(300));
    issues.extend([
        issue("iss-signed", 50, "Reviewed", "st-signed", &five_minutes_ago),
        issue("iss-sent", 51, "No task", "st-back", LONG_AGO),
        issue("iss-decoy", 90, "Decoy", IN_PROGRESS, LONG_AGO),
        issue("iss-approved-1", 92, "Decoy", APPROVED, LONG_AGO),
        issue("iss-approved-2", 93, "Decoy", APPROVED, LONG_AGO),
        issue("iss-rejected-1", 94, "Decoy", REJECTED, LONG_AGO),
        issue("iss-rejected-2", 95, "Decoy", REJECTED, LONG_AGO),
        issue("iss-backlog", 91, "Later", BACKLOG, LONG_AGO),
    ]);
    issues.swap(2, 8); // mix the pages
    plane.add_project(
        PLANE_SHOP,
        PlaneProject {
            identifier: "SHOP".into(),
            states,
            issues,
            fault: Fault::None,
        },
    );
    let server = start_with_plane(&plane, |_| {}).await;
    server
        .project("shop", |p| {
            p.plane = Some(pb::PlaneBinding {
                in_progress_state: "Doing".into(),
                approved_state: "Signed Off".into(),
                rejected_state: "Sent Back".into(),
                ..binding(PLANE_SHOP)
            })
        })
        .await;
    let signed = server
        .start_task("shop", "iss-signed", "SHOP-50")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(signed, Stage::Review).await;
    server.finish_stage(signed).await;
    server.age_verdicts(signed, Duration::from_secs(3600)).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    // Six "Doing", one "Signed Off" and one "Sent Back" (no task) issue.
    assert_eq!(run.tracker_side, counts(8, 1, 7, 1, 0), "{run:?}");
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.work_item_id)
        .collect();
    assert_eq!(
        started,
        [
            "SHOP-50", "SHOP-1", "SHOP-2", "SHOP-4", "SHOP-5", "SHOP-6", "SHOP-3"
        ]
    );
    assert_eq!(server.task(signed).await.stage(), Stage::Testing);
    let replayed: Vec<_> = run
        .actions
        .iter()
        .filter(|a| a.kind() == ReconcilerActionKind::VerdictReplayed)
        .map(|a| (a.tracker_issue_id.as_str(), a.to_stage()))
        .collect();
    assert_eq!(replayed, [("iss-signed", Stage::Testing)]);
    // 14 issues, 2 a page: 7 pages, each asked for with the cursor the page
    // before gave.
    let expected: Vec<Option<String>> = (0..7)
        .map(|page| (page > 0).then(|| format!("2:{page}:0")))
        .collect();
    assert_eq!(plane.issue_cursors(PLANE_SHOP), expected);
    let states_pages = plane
        .requests()
        .into_iter()
        .filter(|r| r.listing == "states")
        .count();
    assert_eq!(states_pages, 4, "8 states, 2 a page");
    assert!(
        plane
            .requests()
            .iter()
            .filter(|r| r.listing != "project")
            .all(|r| r.per_page.as_deref() == Some("2"))
    );
}

#[tokio::test]
async fn a_pass_lists_its_first_100_actions_and_counts_them_all() {
    let plane = FakePlane::start().await;
    let issues = (1..=101)
        .map(|n| issue(&format!("iss-{n}"), n, "Bulk", IN_PROGRESS, LONG_AGO))
        .collect();
    plane.add(PLANE_SHOP, "SHOP", issues);
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.page_size = 100;
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(101, 0, 101, 0, 0));
    assert_eq!(run.actions.len(), 100);
    assert_eq!(run.actions[0].tracker_issue_id, "iss-1");
    assert_eq!(run.actions[99].tracker_issue_id, "iss-100");
    assert_eq!(plane.issue_cursors(PLANE_SHOP).len(), 2);
    let stored = list_runs(&server, Default::default()).await.unwrap().runs;
    assert_eq!(stored, [run]);
}

#[tokio::test]
async fn tracker_issues_within_grace_of_busy_tasks_or_without_a_task_are_left_alone() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // In review with the reviewer still at work.
    let busy = server
        .start_task("shop", "iss-busy", "SHOP-1")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(busy, Stage::Review).await;
    server.age_verdicts(busy, Duration::from_secs(3600)).await;
    let busy_before = server.task(busy).await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue(
                "iss-fresh",
                2,
                "Fresh",
                IN_PROGRESS,
                &ago(Duration::from_secs(5)),
            ),
            // Changed after the task's last verdict: only the busy reviewer
            // keeps it from being replayed.
            issue(
                "iss-busy",
                1,
                "Busy",
                APPROVED,
                &ago(Duration::from_secs(300)),
            ),
            issue("iss-unknown", 3, "Unknown", APPROVED, LONG_AGO),
            issue("iss-unknown-2", 4, "Unknown", REJECTED, LONG_AGO),
        ],
    );

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(4, 0, 0, 4, 0), "{run:?}");
    assert!(run.actions.is_empty());
    assert_eq!(
        all_tasks(&server).await.len(),
        1,
        "the fresh issue started nothing"
    );
    assert_eq!(server.task(busy).await, busy_before);
    assert_eq!(
        facts(&server, busy).await.verdicts.len(),
        1,
        "only the analysis approval"
    );
}

#[tokio::test]
async fn a_second_pass_replays_nothing() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let reviewed = server
        .start_task("shop", "iss-1", "SHOP-1")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(reviewed, Stage::Review).await;
    server.finish_stage(reviewed).await;
    server
        .age_verdicts(reviewed, Duration::from_secs(3600))
        .await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-1", 1, "One", APPROVED, &ago(Duration::from_secs(300))),
            issue("iss-2", 2, "Two", IN_PROGRESS, LONG_AGO),
        ],
    );
    let first = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(first.tracker_side, counts(2, 1, 2, 0, 0), "{first:?}");
    // The tester session is lost at once, so only the recorded verdict can
    // keep the approval from being replayed again.
    let tester = server.task(reviewed).await.stage_session_id;
    server.kill_session(&tester).await;
    let tasks = all_tasks(&server).await;
    let verdicts = facts(&server, reviewed).await.verdicts;

    let second = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(second.tracker_side, counts(2, 0, 0, 2, 0), "{second:?}");
    assert!(second.actions.is_empty());
    assert_eq!(all_tasks(&server).await, tasks);
    assert_eq!(facts(&server, reviewed).await.verdicts, verdicts);
}

#[tokio::test]
async fn a_failing_or_unmapped_tracker_costs_only_its_own_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_DOWN,
        "DOWN",
        vec![issue("iss-down", 1, "Down", IN_PROGRESS, LONG_AGO)],
    );
    plane.set_fault(PLANE_DOWN, Fault::Status(500));
    plane.add(
        PLANE_OTHER,
        "ODD",
        vec![issue("iss-odd", 1, "Odd", IN_PROGRESS, LONG_AGO)],
    );
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    // Projects are polled in id order: the failing ones come first.
    bound_project(&server, "a-down", PLANE_DOWN).await;
    server
        .project("b-odd", |p| {
            p.plane = Some(pb::PlaneBinding {
                approved_state: "Signed Off".into(),
                ..binding(PLANE_OTHER)
            })
        })
        .await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Unspecified).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.error.is_empty());
    assert_eq!(run.projects_polled, 3);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 2), "{run:?}");
    let failures: Vec<_> = run
        .error_details
        .iter()
        .map(|e| {
            (
                e.side(),
                e.project_id.as_str(),
                e.task_id,
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (ReconcilerSide::Tracker, "a-down", 0, "TRACKER_UNAVAILABLE"),
            (
                ReconcilerSide::Tracker,
                "b-odd",
                0,
                "TRACKER_STATE_UNMAPPED"
            ),
        ]
    );
    assert!(
        run.error_details[0].message.contains("500"),
        "{:?}",
        run.error_details[0]
    );
    assert!(
        run.error_details[1].message.contains("Signed Off"),
        "{:?}",
        run.error_details[1]
    );
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(started, ["iss-1"]);
    assert_eq!(run.actions.len(), 1);
    assert_eq!(run.actions[0].project_id, "shop");
    // The unmapped project's issues were never listed.
    assert!(plane.issue_cursors(PLANE_OTHER).is_empty());
}

#[tokio::test]
async fn one_issue_that_cannot_be_replayed_does_not_stop_the_others() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-clash", 1, "Clash", IN_PROGRESS, LONG_AGO),
            issue("iss-2", 2, "Two", IN_PROGRESS, LONG_AGO),
        ],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // Started by hand for another issue, on the branch SHOP-1 would take.
    let manual = server
        .start_task("shop", "manual-1", "SHOP-1")
        .await
        .task
        .unwrap();
    assert_eq!(manual.branch, "feature/SHOP-1");

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(2, 0, 1, 0, 1), "{run:?}");
    let [failure] = run.error_details.as_slice() else {
        panic!("one failure: {run:?}");
    };
    assert_eq!(
        (
            failure.side(),
            failure.project_id.as_str(),
            failure.tracker_issue_id.as_str(),
            failure.reason.as_str()
        ),
        (
            ReconcilerSide::Tracker,
            "shop",
            "iss-clash",
            "REPLAY_FAILED"
        )
    );
    let issues: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(issues, ["manual-1", "iss-2"]);
}

#[tokio::test]
async fn a_tracker_slower_than_the_timeout_costs_only_its_own_project() {
    let plane = FakePlane::start().await;
    plane.add(PLANE_DOWN, "SLOW", vec![]);
    plane.set_fault(PLANE_DOWN, Fault::Hang);
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.timeout = Duration::from_millis(500);
    })
    .await;
    bound_project(&server, "a-slow", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 1), "{run:?}");
    let [failure] = run.error_details.as_slice() else {
        panic!("one failure: {run:?}");
    };
    assert_eq!(
        (failure.project_id.as_str(), failure.reason.as_str()),
        ("a-slow", "TRACKER_TIMEOUT")
    );
    assert_eq!(run.actions.len(), 1);
    assert_eq!(all_tasks(&server).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_api_key_or_no_plane_configured_is_an_error_of_the_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.api_key = "not-the-key".into();
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let run = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(run.tracker_side, counts(0, 0, 0, 0, 1));
    assert_eq!(run.error_details[0].reason, "TRACKER_UNAVAILABLE");
    assert!(
        run.error_details[0].message.contains("401"),
        "{:?}",
        run.error_details
    );
    assert!(
        !run.error_details[0].message.contains("not-the-key"),
        "the key leaked"
    );
    assert_eq!(plane.unauthorized(), 1);
    assert!(all_tasks(&server).await.is_empty());

    let unconfigured = TestServer::start().await;
    bound_project(&unconfigured, "shop", PLANE_SHOP).await;
    let run = run_once(&unconfigured, ReconcilerSide::Tracker).await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(0, 0, 0, 0, 1));
    assert_eq!(run.error_details[0].reason, "TRACKER_NOT_CONFIGURED");
    assert_eq!(run.error_details[0].project_id, "shop");
}

// ---------------------------------------------------------------------------
// One pass at a time.

#[tokio::test]
async fn run_once_while_a_pass_runs_is_aborted_with_the_running_pass() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut client = server.reconciler_client();
    let first = tokio::spawn(async move {
        client
            .run_once(pb::RunOnceRequest::default())
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");

    let during = status(&server).await;
    assert!(during.running);
    let running_id = during.running_run_id;
    assert!(running_id > 0);
    let err = run_error(&server, ReconcilerSide::Tracker).await;
    assert_error(&err, Code::Aborted, "RECONCILER_PASS_RUNNING");
    assert_eq!(error_metadata(&err, "run_id"), Some(running_id.to_string()));
    let listed = list_runs(&server, Default::default()).await.unwrap().runs;
    let [running] = listed.as_slice() else {
        panic!("one pass: {listed:?}");
    };
    assert_eq!(running.id, running_id);
    assert_eq!(running.state(), ReconcilerRunState::Running);
    assert!(running.end_time.is_none());
    assert!(during.last_run.is_none(), "no pass has ended");

    release.notify_one();
    let run = first.await.unwrap().expect("the first pass");
    assert_eq!(run.id, running_id);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    let after = status(&server).await;
    assert!(!after.running);
    assert_eq!(after.running_run_id, 0);
    assert_eq!(after.last_run, Some(run));
    // The slot is free again.
    run_once(&server, ReconcilerSide::Unspecified).await;
}

#[tokio::test]
async fn run_once_during_a_scheduled_pass_is_aborted_with_that_pass() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |config| {
        config.reconciler.interval = Duration::from_secs(1);
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("a scheduled pass reached Plane");

    let err = run_error(&server, ReconcilerSide::Unspecified).await;
    assert_error(&err, Code::Aborted, "RECONCILER_PASS_RUNNING");
    let run_id: i64 = error_metadata(&err, "run_id").unwrap().parse().unwrap();
    let during = status(&server).await;
    assert!(during.running);
    assert_eq!(during.running_run_id, run_id);
    let listed = list_runs(&server, Default::default()).await.unwrap().runs;
    assert_eq!(listed[0].id, run_id);
    assert_eq!(listed[0].trigger(), ReconcilerTrigger::Scheduled);
    assert_eq!(listed[0].state(), ReconcilerRunState::Running);
    // Both sides off: once this pass ends, the loop starts no other.
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["gate_side_enabled", "tracker_side_enabled"])
        .await
        .unwrap();
    // From now: an earlier scheduled pass (before the project was
    // registered) may have ended already.
    let mut finished = watch_finished(&server, head_seq(&server).await).await;
    release.notify_one();
    let run = next_finished(&mut finished, "the pass ended").await;
    assert_eq!(run.id, run_id);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(
        run.tracker_side_ran,
        "switched off after the side had started: {run:?}"
    );
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
}

#[tokio::test]
async fn a_switch_turned_off_during_a_pass_stops_its_side_before_the_next_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_DOWN,
        "AAA",
        vec![issue("iss-a", 1, "A", IN_PROGRESS, LONG_AGO)],
    );
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_DOWN);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "a-first", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut client = server.reconciler_client();
    let pass = tokio::spawn(async move {
        client
            .run_once(pb::RunOnceRequest::default())
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["tracker_side_enabled"])
        .await
        .unwrap();
    release.notify_one();

    let run = pass.await.unwrap().expect("the pass");
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.tracker_side_ran);
    assert_eq!(run.projects_polled, 1, "{run:?}");
    assert_eq!(
        run.tracker_side,
        counts(1, 0, 1, 0, 0),
        "the project under way finished"
    );
    assert!(plane.requests().iter().all(|r| r.project == PLANE_DOWN));
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(started, ["iss-a"]);
}

#[tokio::test]
async fn a_pass_runs_to_its_end_when_its_caller_goes_away() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut finished = watch_finished(&server, head_seq(&server).await).await;
    let mut client = server.reconciler_client();
    let caller = tokio::spawn(async move { client.run_once(pb::RunOnceRequest::default()).await });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    release.notify_one();

    let run = next_finished(&mut finished, "the pass ended").await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    assert_eq!(all_tasks(&server).await.len(), 1);
    assert_eq!(status(&server).await.last_run, Some(run));
}

// ---------------------------------------------------------------------------
// History: GetStatus, ListReconcilerRuns, the change log.

#[tokio::test]
async fn status_runs_and_the_change_log_show_every_pass() {
    let plane = FakePlane::start().await;
    plane.add(PLANE_DOWN, "DOWN", vec![]);
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "down", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let empty = status(&server).await;
    assert!(empty.last_run.is_none() && !empty.running && empty.recent_unblocks.is_empty());
    assert_eq!(
        empty.totals.unwrap(),
        pb::ReconcilerTotals {
            gate_side: counts(0, 0, 0, 0, 0),
            tracker_side: counts(0, 0, 0, 0, 0),
            ..Default::default()
        }
    );
    assert!(
        empty.next_run_time.is_some(),
        "the loop is waiting for its first pass"
    );
    let seq = head_seq(&server).await;

    // 1: the tracker side starts a task.
    let first = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(first.actions.len(), 1);
    // 2: one tracker is down; nothing to do otherwise.
    plane.set_fault(PLANE_DOWN, Fault::Status(503));
    let second = run_once(&server, ReconcilerSide::Unspecified).await;
    assert_eq!(second.error_details.len(), 1);
    assert!(second.actions.is_empty());
    // 3: the gate side advances a stuck task.
    let stuck = stuck_in_development(
        &server,
        "manual-1",
        "SHOP-100",
        SHA_A,
        CiStatusState::Success,
    )
    .await;
    let third = run_once(&server, ReconcilerSide::Gate).await;
    assert_eq!(third.actions.len(), 1);
    assert_eq!(third.actions[0].task_id, stuck);
    assert!(first.id < second.id && second.id < third.id);

    let now = status(&server).await;
    assert!(!now.running);
    assert_eq!(now.running_run_id, 0);
    assert_eq!(now.last_run, Some(third.clone()));
    let sum = |side: fn(&pb::ReconcilerRun) -> pb::ReconcilerSideCounts| {
        let mut total = pb::ReconcilerSideCounts::default();
        for run in [&first, &second, &third] {
            let c = side(run);
            total.scanned += c.scanned;
            total.advanced += c.advanced;
            total.replayed += c.replayed;
            total.skipped += c.skipped;
            total.errors += c.errors;
        }
        total
    };
    let totals = now.totals.unwrap();
    assert_eq!((totals.passes, totals.failed_passes), (3, 0));
    assert_eq!(totals.gate_side, Some(sum(|r| r.gate_side.unwrap())));
    assert_eq!(totals.tracker_side, Some(sum(|r| r.tracker_side.unwrap())));
    assert_eq!(totals.tracker_side.unwrap().errors, 1);
    assert_eq!(totals.gate_side.unwrap().advanced, 1);
    assert_eq!(
        now.recent_unblocks,
        [third.actions[0].clone(), first.actions[0].clone()],
        "newest first"
    );

    let all = list_runs(&server, Default::default()).await.unwrap();
    assert_eq!(all.runs, [third.clone(), second.clone(), first.clone()]);
    assert!(all.next_page_token.is_empty());
    let filtered = |f: fn(&mut ListReconcilerRunsRequest)| {
        let mut request = ListReconcilerRunsRequest::default();
        f(&mut request);
        request
    };
    assert_eq!(
        run_ids(&server, filtered(|r| r.with_actions_only = true)).await,
        [third.id, first.id]
    );
    assert_eq!(
        run_ids(&server, filtered(|r| r.with_errors_only = true)).await,
        [second.id]
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| {
                r.with_errors_only = true;
                r.with_actions_only = true;
            })
        )
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| r.trigger = ReconcilerTrigger::Manual.into())
        )
        .await,
        [third.id, second.id, first.id]
    );
    assert!(
        run_ids(
            &server,
            filtered(|r| r.trigger = ReconcilerTrigger::Scheduled.into())
        )
        .await
        .is_empty()
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| r.state = ReconcilerRunState::Succeeded.into())
        )
        .await
        .len(),
        3
    );
    assert!(
        run_ids(
            &server,
            filtered(|r| r.state = ReconcilerRunState::Failed.into())
        )
        .await
        .is_empty()
    );

    // Paging.
    let page = list_runs(
        &server,
        ListReconcilerRunsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.runs, [third.clone(), second.clone()]);
    assert!(!page.next_page_token.is_empty());
    let rest = list_runs(
        &server,
        ListReconcilerRunsRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.runs, std::slice::from_ref(&first));
    assert!(rest.next_page_token.is_empty());
    for bad in [
        ListReconcilerRunsRequest {
            page_token: page.next_page_token.clone(),
            with_errors_only: true,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            page_size: -1,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            trigger: 42,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            state: 42,
            ..Default::default()
        },
    ] {
        let err = list_runs(&server, bad.clone()).await.unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert!(!bad_fields(&err).is_empty(), "{bad:?}");
    }

    // The change log: started and finished for each pass, in order, with the
    // pass as it was.
    let logged = events(&server, seq, "reconciler_run.", 0).await;
    let summary: Vec<(String, String, String)> = logged
        .iter()
        .map(|e| {
            (
                e.event_type.clone(),
                e.entity_kind.clone(),
                e.entity_id.clone(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for run in [&first, &second, &third] {
        for verb in ["started", "finished"] {
            expected.push((
                format!("reconciler_run.{verb}"),
                "reconciler_run".to_string(),
                run.id.to_string(),
            ));
        }
    }
    assert_eq!(summary, expected);
    for (pair, run) in logged.chunks(2).zip([&first, &second, &third]) {
        let Some(Payload::ReconcilerRun(started)) = &pair[0].payload else {
            panic!("a run payload: {:?}", pair[0]);
        };
        assert_eq!(started.state(), ReconcilerRunState::Running);
        assert_eq!(
            (started.id, started.trigger, started.side),
            (run.id, run.trigger, run.side)
        );
        assert_eq!(
            (started.gate_side_ran, started.tracker_side_ran),
            (run.gate_side_ran, run.tracker_side_ran)
        );
        assert_eq!(started.start_time, run.start_time);
        assert!(started.end_time.is_none() && started.actions.is_empty());
        let Some(Payload::ReconcilerRun(finished)) = &pair[1].payload else {
            panic!("a run payload: {:?}", pair[1]);
        };
        assert_eq!(finished, run);
    }
}

#[tokio::test]
async fn the_background_loop_runs_scheduled_passes_at_its_interval() {
    let server = TestServer::start_with(|config| {
        config.reconciler.interval = Duration::from_secs(1);
    })
    .await;
    let mut stream = watch_finished(&server, 0).await;
    let run = next_finished(&mut stream, "a scheduled pass within the interval").await;
    assert_eq!(run.trigger(), ReconcilerTrigger::Scheduled);
    assert_eq!(run.side(), ReconcilerSide::Unspecified);
    assert!(run.gate_side_ran && run.tracker_side_ran);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);

    // Both sides off: the loop starts nothing more.
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["gate_side_enabled", "tracker_side_enabled"])
        .await
        .unwrap();
    assert!(status(&server).await.next_run_time.is_none());
    let scheduled = run_ids(
        &server,
        ListReconcilerRunsRequest {
            trigger: ReconcilerTrigger::Scheduled.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(scheduled.contains(&run.id));
    assert!(
        run_ids(
            &server,
            ListReconcilerRunsRequest {
                trigger: ReconcilerTrigger::Manual.into(),
                ..Default::default()
            },
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn a_pass_left_running_by_a_crash_is_marked_failed_on_the_next_start() {
    let mut server = TestServer::start().await;
    let finished = run_once(&server, ReconcilerSide::Unspecified).await;
    server.stop().await;
    {
        let mut conn = server.sqlite().await;
        sqlx::query(
            "INSERT INTO reconciler_runs (trigger, state, start_time, gate_side_ran, tracker_side_ran) \
             VALUES ('scheduled', 'running', ?, 1, 1)",
        )
        .bind(finished.end_time.unwrap().seconds * 1_000_000 + 1)
        .execute(&mut conn)
        .await
        .expect("insert a running pass");
    }
    let seq = {
        let mut conn = server.sqlite().await;
        let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM change_log")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        seq
    };
    server.restart().await;

    let runs = list_runs(&server, Default::default()).await.unwrap().runs;
    let [crashed, earlier] = runs.as_slice() else {
        panic!("two passes: {runs:?}");
    };
    assert_eq!(earlier, &finished);
    assert_eq!(crashed.state(), ReconcilerRunState::Failed);
    assert_eq!(crashed.trigger(), ReconcilerTrigger::Scheduled);
    assert!(crashed.end_time.is_some());
    assert!(!crashed.error.is_empty());
    let failed = run_ids(
        &server,
        ListReconcilerRunsRequest {
            state: ReconcilerRunState::Failed.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(failed, [crashed.id]);
    let now = status(&server).await;
    assert!(!now.running);
    assert_eq!(now.last_run.as_ref(), Some(crashed));
    assert_eq!(now.totals.unwrap().failed_passes, 1);
    let logged = events(&server, seq, "reconciler_run.", 0).await;
    let types: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["reconciler_run.failed"]);
    // Nothing holds the slot.
    run_once(&server, ReconcilerSide::Unspecified).await;
}

// ---------------------------------------------------------------------------
// Roles.

#[tokio::test]
async fn passes_and_switches_need_an_admin_and_reads_any_token() {
    let server = TestServer::start_with_auth().await;
    let mut client = server.reconciler_client();
    for token in [AGENT_TOKEN, WEBHOOK_TOKEN, READ_TOKEN] {
        let err = client
            .run_once(with_token(pb::RunOnceRequest::default(), token))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        let err = client
            .update_reconciler_settings(with_token(
                pb::UpdateReconcilerSettingsRequest {
                    settings: Some(pb::ReconcilerSettings::default()),
                    update_mask: Some(FieldMask {
                        paths: vec!["gate_side_enabled".into()],
                    }),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    let err = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let listed = client
        .list_reconciler_runs(with_token(ListReconcilerRunsRequest::default(), READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.runs.is_empty(), "the refused calls ran nothing");
    let read_settings = client
        .get_reconciler_settings(with_token(pb::GetReconcilerSettingsRequest {}, READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(
        read_settings.gate_side_enabled,
        "the refused update changed nothing"
    );

    let run = client
        .run_once(with_token(pb::RunOnceRequest::default(), ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    let seen = client
        .get_status(with_token(pb::GetStatusRequest {}, READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.last_run, Some(run));
    let changed = client
        .update_reconciler_settings(with_token(
            pb::UpdateReconcilerSettingsRequest {
                settings: Some(pb::ReconcilerSettings::default()),
                update_mask: Some(FieldMask {
                    paths: vec!["gate_side_enabled".into()],
                }),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!changed.gate_side_enabled);
}
