//! The Tasks pipeline through the real server: StartTask, the gates of every
//! stage, rollback and hold, the retry budget, auto lessons, CI resolution,
//! ReleaseTask, and bad input.

mod common;

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

#[tokio::test]
async fn start_task_creates_the_task_in_analysis_with_an_analyst_session_once() {
    let server = server().await;
    let started = server.start_task("shop", "issue-1", "SHOP-1").await;
    assert!(started.created);
    let task = started.task.unwrap();
    assert_eq!(stage(&task), Stage::Analysis);
    assert_eq!(task.stage_role, Role::Analyst as i32);
    assert_eq!(task.repo, REPO, "the repo comes from the origin_url");
    assert_eq!(task.branch, "feature/SHOP-1");
    assert_eq!(task.stage_session_id, started.session_id);
    assert!(task.stage_session_active);
    assert!(!task.held);
    let analyst = session(&server, &started.session_id).await;
    assert_eq!(analyst.task_id, task.id);
    assert_eq!(analyst.role, Role::Analyst as i32);
    assert_eq!(analyst.state, pb::SessionState::NotStarted as i32);
    assert_eq!(analyst.branch, "feature/SHOP-1");

    let again = server.start_task("shop", "issue-1", "OTHER-9").await;
    assert!(!again.created);
    assert_eq!(again.task.unwrap().id, task.id);
    assert_eq!(again.session_id, started.session_id);
    assert_eq!(task_events(&server, task.id).await, ["task.created"]);
    let created = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                task_id: task.id,
                event_type_prefixes: vec!["task.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .remove(0);
    assert_eq!(created.session_id, started.session_id);
    match created.payload {
        Some(pb::event::Payload::Task(payload)) => assert_eq!(payload, task),
        other => panic!("a task payload, got {other:?}"),
    }
}

#[tokio::test]
async fn eight_simultaneous_start_task_calls_create_exactly_one_task_and_one_session() {
    let server = server().await;
    let calls = (0..8).map(|_| server.start_task("shop", "issue-race", "SHOP-99"));
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let ids: std::collections::HashSet<i64> = results
        .iter()
        .map(|r| r.task.as_ref().unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1, "every caller gets the one task");
    let sessions: std::collections::HashSet<&str> =
        results.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(sessions.len(), 1);
    let task_id = *ids.iter().next().unwrap();
    let listed = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            task_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1, "one first session");
}

#[tokio::test]
async fn start_task_refuses_bad_input_and_changes_nothing() {
    let server = server().await;
    server
        .project("local", |p| {
            p.origin_url = String::new();
            p.repo_path = "/srv/local".into();
        })
        .await;
    let mut tasks = server.tasks();
    let status = tasks
        .start_task(pb::StartTaskRequest::default())
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        bad_fields(&status),
        ["project_id", "tracker_issue_id", "work_item_id"]
    );
    let request = |project: &str, issue: &str| pb::StartTaskRequest {
        project_id: project.into(),
        tracker_issue_id: issue.into(),
        work_item_id: "W-1".into(),
        ..Default::default()
    };
    let status = tasks.start_task(request("nope", "i-1")).await.unwrap_err();
    assert_error(&status, Code::NotFound, "PROJECT_NOT_FOUND");
    let status = tasks.start_task(request("local", "i-2")).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["repo"]);

    server.start_task("shop", "i-3", "W-1").await;
    let status = tasks.start_task(request("shop", "i-4")).await.unwrap_err();
    assert_error(&status, Code::AlreadyExists, "BRANCH_IN_USE");
    assert_eq!(
        error_metadata(&status, "branch").as_deref(),
        Some("feature/W-1")
    );

    server
        .sessions_client()
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "shop".into(),
        })
        .await
        .unwrap();
    let status = tasks
        .start_task(pb::StartTaskRequest {
            work_item_id: "W-2".into(),
            ..request("shop", "i-5")
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "PROJECT_ARCHIVED");
    let listed = tasks
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(listed.len(), 1, "only the task that was valid");
}

#[tokio::test]
async fn green_gates_walk_a_task_from_analysis_to_done() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Done).await;
    let done = server.task(task.id).await;
    assert_eq!(stage(&done), Stage::Done);
    assert_eq!(done.stage_role, Role::Unspecified as i32);
    assert!(done.stage_session_id.is_empty());
    assert_eq!(done.last_gate.as_ref().unwrap().gate, "deploy_verified");
    let roles: Vec<i32> = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            task_id: task.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sessions
        .iter()
        .rev()
        .map(|s| s.role)
        .collect();
    let expected: Vec<i32> = [
        Role::Analyst,
        Role::Developer,
        Role::Reviewer,
        Role::Tester,
        Role::Deployer,
    ]
    .map(|r| r as i32)
    .into();
    assert_eq!(roles, expected, "one session per stage, in order");
    let finished = pb::Task {
        stage_session_id: "shop-5".into(),
        ..done
    };
    let status = advance(&server, &finished, StageSessionOutcome::Completed)
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TASK_DONE");
    let stage_changes = task_events(&server, task.id)
        .await
        .iter()
        .filter(|e| *e == "task.stage_changed")
        .count();
    assert_eq!(stage_changes, 5);
}

#[tokio::test]
async fn analysis_waits_for_the_tracker_and_a_late_approval_moves_it() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Waiting);
    assert_eq!(
        result.gate.unwrap().status,
        GateStatus::Pending as i32,
        "a human gate"
    );
    let rejected = server.verdict(task.id, VerdictDecision::Rejected).await;
    let advance = rejected.advance.expect("the gate was evaluated");
    assert_eq!(outcome(&advance), AdvanceOutcome::Waiting, "never red");
    let approved = server.verdict(task.id, VerdictDecision::Approved).await;
    let advance = approved.advance.expect("the gate was evaluated");
    assert_eq!(outcome(&advance), AdvanceOutcome::Advanced);
    assert_eq!(advance.to_stage, Stage::Development as i32);
    let developer = session(&server, &advance.session_id).await;
    assert_eq!(developer.role, Role::Developer as i32);
    assert_eq!(developer.state, pb::SessionState::NotStarted as i32);
}

#[tokio::test]
async fn a_fact_for_a_task_whose_session_is_still_working_moves_nothing() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let recorded = server.verdict(task.id, VerdictDecision::Approved).await;
    assert!(recorded.advance.is_none());
    assert_eq!(stage(&recorded.task.unwrap()), Stage::Analysis);
    let result = server.finish_stage(task.id).await;
    assert_eq!(
        outcome(&result),
        AdvanceOutcome::Advanced,
        "read at the session's end"
    );
}

#[tokio::test]
async fn the_development_gate_reads_ci_on_the_head_commit() {
    let server = server_with(|_| {}).await;
    server
        .sessions_client()
        .update_project(pb::UpdateProjectRequest {
            project: Some(pb::Project {
                id: "shop".into(),
                required_ci_contexts: vec!["ci/test".into(), "lint".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["required_ci_contexts".into()],
            }),
        })
        .await
        .unwrap();
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(
        outcome(&result),
        AdvanceOutcome::Waiting,
        "no head commit yet"
    );

    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    let ci = server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Success)
        .await;
    assert_eq!(ci.resolution, ShaResolution::HeadSha as i32);
    assert_eq!(ci.task_id, task.id);
    let advance = ci.advance.expect("evaluated: the session ended");
    assert_eq!(
        outcome(&advance),
        AdvanceOutcome::Waiting,
        "lint is missing"
    );
    assert_eq!(server.task(task.id).await.head_sha, SHA_A);
    let ci = server.ci(SHA_A, "", "lint", CiStatusState::Pending).await;
    assert_eq!(ci.resolution, ShaResolution::HeadSha as i32);
    assert_eq!(
        outcome(ci.advance.as_ref().unwrap()),
        AdvanceOutcome::Waiting
    );
    let ci = server.ci(SHA_A, "", "lint", CiStatusState::Success).await;
    let advance = ci.advance.unwrap();
    assert_eq!(outcome(&advance), AdvanceOutcome::Advanced);
    assert_eq!(advance.to_stage, Stage::Review as i32);
    assert_eq!(advance.gate.unwrap().head_sha, SHA_A);
}

#[tokio::test]
async fn a_red_gate_rolls_back_to_development_with_a_gate_failure_lesson() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    let developer_before = server.task(task.id).await.stage_session_id;
    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Failure)
        .await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::RolledBack);
    assert_eq!(result.from_stage, Stage::Development as i32);
    assert_eq!(result.to_stage, Stage::Development as i32);
    assert_ne!(
        result.session_id, developer_before,
        "a new developer session"
    );
    assert!(result.lesson_id > 0);
    let after = result.task.unwrap();
    assert_eq!(after.rollback_count, 1);
    assert_eq!(after.stage_session_id, result.session_id);
    assert_eq!(
        server.lesson_rows("gate_failure").await,
        [(
            Some(task.id),
            Some("development".into()),
            Some("developer".into()),
            Some(REPO.into()),
            Some("ci_green".into())
        )]
    );
    let prompt = session(&server, &result.session_id).await.prompt;
    assert!(prompt.contains("ci/test: failure"), "{prompt}");
}

#[tokio::test]
async fn review_rejected_rolls_back_and_a_pull_request_review_approval_passes() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Review).await;
    server.verdict(task.id, VerdictDecision::Rejected).await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::RolledBack);
    let lesson = server.lesson_rows("gate_failure").await;
    assert_eq!(lesson[0].1.as_deref(), Some("review"));
    assert_eq!(lesson[0].2.as_deref(), Some("reviewer"));
    assert_eq!(lesson[0].4.as_deref(), Some("review_approved"));

    server.walk_to(task.id, Stage::Review).await;
    let reviewed = server
        .tasks()
        .record_verdict(pb::RecordVerdictRequest {
            task_ref: Some(pb::record_verdict_request::TaskRef::TrackerIssueId(
                "i-1".into(),
            )),
            decision: VerdictDecision::Approved.into(),
            source: VerdictSource::PrReview.into(),
            author: "octocat".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reviewed.verdict.unwrap().stage, Stage::Review as i32);
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Advanced);
    assert_eq!(result.to_stage, Stage::Testing as i32);
}

#[tokio::test]
async fn testing_needs_coverage_and_hands_the_failures_to_the_next_developer() {
    let server = server().await;
    server
        .sessions_client()
        .update_project(pb::UpdateProjectRequest {
            project: Some(pb::Project {
                id: "shop".into(),
                coverage_threshold: 80.0,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["coverage_threshold".into()],
            }),
        })
        .await
        .unwrap();
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Testing).await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Waiting, "no report yet");
    let recorded = server
        .test_report(task.id, true, 78.5, "checkout_test: 2 branches uncovered")
        .await;
    assert_eq!(
        recorded.report.unwrap().sha,
        head_of(task.id),
        "the head commit"
    );
    let advance = recorded.advance.unwrap();
    assert_eq!(outcome(&advance), AdvanceOutcome::RolledBack);
    let gate = advance.gate.unwrap();
    let coverage = gate
        .checks
        .iter()
        .find(|c| c.name == "coverage_threshold")
        .unwrap();
    assert_eq!(coverage.status, GateStatus::Failed as i32);
    assert_eq!(coverage.reason, "coverage 78.5% < threshold 80%");
    let prompt = session(&server, &advance.session_id).await.prompt;
    assert!(
        prompt.contains("checkout_test: 2 branches uncovered"),
        "{prompt}"
    );
    assert_eq!(
        server.lesson_rows("gate_failure").await[0].4.as_deref(),
        Some("tests_passed")
    );
}

#[tokio::test]
async fn an_unmerged_pull_request_holds_the_task_on_deploy_with_a_merge_hold_lesson() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Deploy).await;
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Held);
    let held = result.task.unwrap();
    assert_eq!(
        stage(&held),
        Stage::Deploy,
        "a red deploy gate never rolls back"
    );
    assert!(held.held);
    assert_eq!(held.hold_reason, HoldReason::MergeUnverified as i32);
    assert!(
        held.hold_detail.contains("#42 is not merged"),
        "{}",
        held.hold_detail
    );
    assert_eq!(server.lesson_rows("merge_hold").await.len(), 1);
    assert!(
        task_events(&server, task.id)
            .await
            .contains(&"task.held".to_string())
    );

    // Merged by hand, then released: the gate is read again.
    server
        .pull_request(task.id, pb::PullRequestState::Merged, SHA_A)
        .await;
    let released = release(&server, task.id, ReleaseAction::EvaluateGate)
        .await
        .unwrap();
    let advance = released.advance.unwrap();
    assert_eq!(outcome(&advance), AdvanceOutcome::Advanced);
    assert_eq!(stage(&released.task.unwrap()), Stage::Done);
}

#[tokio::test]
async fn a_degraded_deploy_holds_the_task_and_freezes_the_repo_until_healthy() {
    let server = server().await;
    let first = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let second = server
        .start_task("shop", "i-2", "SHOP-2")
        .await
        .task
        .unwrap();
    server.walk_to(first.id, Stage::Deploy).await;
    server.walk_to(second.id, Stage::Testing).await;

    let degraded = server
        .tasks()
        .record_deploy_status(pb::RecordDeployStatusRequest {
            task_id: first.id,
            health: DeployHealth::Degraded.into(),
            detail: "error rate 7% after rollout".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let held = degraded.task.unwrap();
    assert_eq!(held.hold_reason, HoldReason::DeployDegraded as i32);
    assert_eq!(degraded.deploy_freeze.unwrap().task_id, first.id);
    assert_eq!(
        server.lesson_rows("deploy_degraded").await,
        [(
            Some(first.id),
            Some("deploy".into()),
            Some("deployer".into()),
            Some(REPO.into()),
            Some("deploy degraded: error rate 7% after rollout".into())
        )]
    );

    // The other task of the repo may not leave testing while frozen.
    let report = server.test_report(second.id, true, 100.0, "").await;
    let _ = report;
    let result = server.finish_stage(second.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Waiting);
    let frozen = result
        .gate
        .unwrap()
        .checks
        .into_iter()
        .find(|c| c.name == "deploys_not_frozen")
        .unwrap();
    assert_eq!(frozen.status, GateStatus::Pending as i32);

    let healthy = server
        .tasks()
        .record_deploy_status(pb::RecordDeployStatusRequest {
            task_id: first.id,
            health: DeployHealth::Healthy.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(healthy.deploy_freeze.is_none(), "the freeze is lifted");
    let report = server.test_report(second.id, true, 100.0, "").await;
    assert_eq!(
        outcome(&report.advance.unwrap()),
        AdvanceOutcome::Advanced,
        "the second task leaves testing"
    );
}

#[tokio::test]
async fn past_the_rollback_limit_a_red_gate_holds_and_release_resets_the_counts() {
    let server = server_with(|config| config.tasks.rollback_limit = 1).await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Failure)
        .await;
    let rolled_back = server.finish_stage(task.id).await;
    assert_eq!(outcome(&rolled_back), AdvanceOutcome::RolledBack);
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::Held);
    let held = result.task.unwrap();
    assert_eq!(held.hold_reason, HoldReason::RollbackLimit as i32);
    assert_eq!(held.rollback_count, 1);
    assert_eq!(
        result.lesson_id, rolled_back.lesson_id,
        "a lesson all the same, deduplicated into the equal one"
    );

    // Held: facts are recorded, nothing moves.
    let ci = server
        .ci(SHA_A, "", "ci/test", CiStatusState::Success)
        .await;
    assert!(ci.advance.is_none());
    assert!(server.task(task.id).await.held);

    let status = release(&server, task.id, ReleaseAction::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["action"]);
    let released = release(&server, task.id, ReleaseAction::EvaluateGate)
        .await
        .unwrap();
    let task_after = released.task.unwrap();
    assert!(!task_after.held);
    assert_eq!(task_after.rollback_count, 0);
    assert_eq!(stage(&task_after), Stage::Review, "CI is green now");
    let status = release(&server, task.id, ReleaseAction::EvaluateGate)
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TASK_NOT_HELD");
}

#[tokio::test]
async fn transient_failures_retry_within_the_budget_then_hold_with_a_lesson() {
    let server = server_with(|config| config.tasks.retry_budget = 2).await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    let mut sessions = vec![server.task(task.id).await.stage_session_id];
    for retry in 1..=2 {
        let current = server.task(task.id).await;
        let result = advance(&server, &current, StageSessionOutcome::FailedTransient)
            .await
            .unwrap();
        assert_eq!(outcome(&result), AdvanceOutcome::Retried);
        assert!(result.gate.is_none());
        let after = result.task.unwrap();
        assert_eq!(after.transient_retries, retry);
        assert_eq!(stage(&after), Stage::Development);
        assert_eq!(
            session(&server, &result.session_id).await.role,
            Role::Developer as i32
        );
        sessions.push(result.session_id);
    }
    let current = server.task(task.id).await;
    let result = advance(&server, &current, StageSessionOutcome::FailedTransient)
        .await
        .unwrap();
    assert_eq!(outcome(&result), AdvanceOutcome::Held);
    let held = result.task.unwrap();
    assert_eq!(held.hold_reason, HoldReason::RetryBudgetExhausted as i32);
    assert!(result.lesson_id > 0);
    let lessons = server.lesson_rows("transient_retry").await;
    assert_eq!(lessons.len(), 1);
    assert_eq!(lessons[0].2.as_deref(), Some("developer"));
    assert!(lessons[0].4.as_deref().unwrap().contains("rate limited"));
    sessions.dedup();
    assert_eq!(sessions.len(), 3, "each retry is a new session");

    // RERUN_STAGE asks for a new session in the same stage.
    let released = release(&server, task.id, ReleaseAction::RerunStage)
        .await
        .unwrap();
    let after = released.task.unwrap();
    assert_eq!(after.transient_retries, 0);
    assert_eq!(after.stage_session_id, released.session_id);
    assert!(!sessions.contains(&released.session_id));
}

#[tokio::test]
async fn a_held_task_only_marks_its_session_finished_and_release_checks_the_session() {
    let server = server_with(|config| config.tasks.retry_budget = 0).await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let current = server.task(task.id).await;
    let held = advance(&server, &current, StageSessionOutcome::FailedTransient)
        .await
        .unwrap();
    assert_eq!(outcome(&held), AdvanceOutcome::Held);
    let rerun = release(&server, task.id, ReleaseAction::RerunStage)
        .await
        .unwrap();
    // Held again with the new session still pending.
    let current = server.task(task.id).await;
    assert_eq!(current.stage_session_id, rerun.session_id);
    advance(&server, &current, StageSessionOutcome::FailedTransient)
        .await
        .unwrap();
    let status = release(&server, task.id, ReleaseAction::RollBack).await;
    assert!(status.is_ok(), "the stage session was reported finished");
    let rolled = status.unwrap().task.unwrap();
    assert_eq!(stage(&rolled), Stage::Development);
    assert_eq!(
        rolled.rollback_count, 0,
        "a release's rollback is not counted"
    );

    // A session still running blocks RERUN_STAGE and ROLL_BACK.
    let current = server.task(task.id).await;
    let mut conn = server.direct().await;
    query("UPDATE tasks SET hold_reason = 'rollback_limit', hold_time = 1 WHERE id = $1")
        .bind(task.id)
        .execute(&mut conn.conn())
        .await
        .unwrap();
    let status = release(&server, task.id, ReleaseAction::RollBack)
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "STAGE_SESSION_ACTIVE");
    assert_eq!(
        error_metadata(&status, "stage_session_id"),
        Some(current.stage_session_id.clone())
    );
    let held_again = advance(&server, &current, StageSessionOutcome::Completed)
        .await
        .unwrap();
    assert_eq!(outcome(&held_again), AdvanceOutcome::Held);
    assert!(held_again.gate.is_none());
    assert!(!held_again.task.unwrap().stage_session_active);
}

#[tokio::test]
async fn a_failing_or_switched_off_journal_never_stops_a_transition() {
    let server = server_with(|config| config.lessons.enabled = false).await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Failure)
        .await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::RolledBack);
    assert_eq!(result.lesson_id, 0, "the journal is off");

    let server = self::server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    let mut conn = server.direct().await;
    // Every insert into lessons now fails: a trigger on either engine.
    let statements: &[&str] = if common::on_postgres() {
        &[
            "CREATE FUNCTION journal_down() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'journal down'; END $$",
            "CREATE TRIGGER journal_down BEFORE INSERT ON lessons \
             FOR EACH ROW EXECUTE FUNCTION journal_down()",
        ]
    } else {
        &["CREATE TRIGGER journal_down BEFORE INSERT ON lessons \
           BEGIN SELECT RAISE(ABORT, 'journal down'); END"]
    };
    for statement in statements {
        query(statement).execute(&mut conn.conn()).await.unwrap();
    }
    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Failure)
        .await;
    let result = server.finish_stage(task.id).await;
    assert_eq!(outcome(&result), AdvanceOutcome::RolledBack);
    assert_eq!(result.lesson_id, 0, "the journal failed");
    assert_eq!(server.task(task.id).await.rollback_count, 1, "committed");
    assert!(server.lesson_rows("gate_failure").await.is_empty());
}

#[tokio::test]
async fn ci_statuses_resolve_by_head_then_branch_then_the_single_development_task() {
    let server = server().await;
    let unresolved = server
        .ci(SHA_B, "", "ci/test", CiStatusState::Success)
        .await;
    assert_eq!(unresolved.resolution, ShaResolution::Unresolved as i32);
    assert_eq!(unresolved.task_id, 0);

    let one = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(one.id, Stage::Development).await;
    // A result naming a branch no task has resolves nothing; one naming
    // no branch falls back to the single development task, as history: the
    // head comes from the pull request only.
    let elsewhere = server
        .ci(SHA_B, "elsewhere", "ci/test", CiStatusState::Pending)
        .await;
    assert_eq!(elsewhere.resolution, ShaResolution::Unresolved as i32);
    let single = server
        .ci(SHA_B, "", "ci/test", CiStatusState::Pending)
        .await;
    assert_eq!(
        single.resolution,
        ShaResolution::SingleDevelopmentTask as i32
    );
    assert_eq!(single.task_id, one.id);
    assert_eq!(server.task(one.id).await.head_sha, "");
    server
        .pull_request(one.id, pb::PullRequestState::Open, SHA_B)
        .await;
    let by_head = server.ci(SHA_B, "", "lint", CiStatusState::Pending).await;
    assert_eq!(by_head.resolution, ShaResolution::HeadSha as i32);

    let two = server
        .start_task("shop", "i-2", "SHOP-2")
        .await
        .task
        .unwrap();
    server.walk_to(two.id, Stage::Development).await;
    let sha_c = "c".repeat(40);
    let ambiguous = server
        .ci(&sha_c, "", "ci/test", CiStatusState::Success)
        .await;
    assert_eq!(ambiguous.resolution, ShaResolution::Ambiguous as i32);
    assert_eq!(ambiguous.task_id, 0);
    let mut candidates = ambiguous.candidate_task_ids.clone();
    candidates.sort();
    assert_eq!(candidates, [one.id, two.id]);
    assert_eq!(
        ambiguous.status.unwrap().state,
        CiStatusState::Success as i32,
        "recorded all the same"
    );

    let upper = server
        .ci(
            &"D".repeat(40),
            "feature/SHOP-2",
            "ci/test",
            CiStatusState::Success,
        )
        .await;
    assert_eq!(
        upper.status.unwrap().sha,
        "d".repeat(40),
        "stored lowercase"
    );
    assert_eq!(upper.resolution, ShaResolution::Branch as i32);

    let status = server
        .tasks()
        .record_ci_status(pb::RecordCiStatusRequest {
            repo: REPO.into(),
            sha: "not-a-sha".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["sha", "context", "state"]);
}

#[tokio::test]
async fn get_task_facts_shows_what_the_gate_reads_and_changes_nothing() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Development).await;
    // The head comes from the pull request; CI reports on it.
    server
        .pull_request(task.id, pb::PullRequestState::Open, SHA_A)
        .await;
    server
        .ci(SHA_A, "feature/SHOP-1", "ci/test", CiStatusState::Success)
        .await;
    server.ci(SHA_A, "", "lint", CiStatusState::Failure).await;
    let before = server.task(task.id).await;
    let facts = server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: task.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(facts.head_sha, SHA_A);
    let contexts: Vec<&str> = facts
        .ci_statuses
        .iter()
        .map(|s| s.context.as_str())
        .collect();
    assert_eq!(contexts, ["ci/test", "lint"]);
    assert_eq!(facts.verdicts.len(), 1, "the analysis approval");
    let gate = facts.current_gate.unwrap();
    assert_eq!(gate.status, GateStatus::Failed as i32);
    let after = server.task(task.id).await;
    assert_eq!(after.update_time, before.update_time);
    assert_eq!(after.last_gate, before.last_gate);
    assert_eq!(stage(&after), Stage::Development);
}

#[tokio::test]
async fn advance_task_checks_the_session_and_a_repeated_request_id_moves_once() {
    let server = server().await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let mut tasks = server.tasks();
    let status = tasks
        .advance_task(pb::AdvanceTaskRequest {
            task_id: task.id,
            session_id: "shop-99".into(),
            outcome: StageSessionOutcome::Completed.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_CURRENT");
    assert_eq!(
        error_metadata(&status, "stage_session_id"),
        Some(task.stage_session_id.clone())
    );
    let status = tasks
        .advance_task(pb::AdvanceTaskRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task_id", "session_id", "outcome"]);
    let status = tasks
        .advance_task(pb::AdvanceTaskRequest {
            task_id: 999,
            session_id: "x".into(),
            outcome: StageSessionOutcome::Completed.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "TASK_NOT_FOUND");

    server.verdict(task.id, VerdictDecision::Approved).await;
    let request = pb::AdvanceTaskRequest {
        request_id: "runner-42".into(),
        task_id: task.id,
        session_id: task.stage_session_id.clone(),
        outcome: StageSessionOutcome::Completed.into(),
        ..Default::default()
    };
    let first = tasks
        .advance_task(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = tasks
        .advance_task(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again, "the stored answer");
    assert_eq!(stage(&server.task(task.id).await), Stage::Development);
    let status = tasks
        .advance_task(pb::AdvanceTaskRequest {
            outcome: StageSessionOutcome::FailedTransient.into(),
            ..request
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn spawn_session_checks_the_task_it_names() {
    let server = server().await;
    server
        .project("other", |p| {
            p.origin_url = "https://github.com/acme/other".into()
        })
        .await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let spawn = |project: &str, task_id: i64| pb::SpawnSessionRequest {
        project_id: project.into(),
        task_id,
        harness: pb::Harness::ClaudeCode.into(),
        ..Default::default()
    };
    let mut sessions = server.sessions_client();
    let status = sessions
        .spawn_session(spawn("shop", 999))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "TASK_NOT_FOUND");
    let status = sessions
        .spawn_session(spawn("other", task.id))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TASK_PROJECT_MISMATCH");
    let spawned = sessions
        .spawn_session(spawn("shop", task.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spawned.task_id, task.id);
}

#[tokio::test]
async fn list_tasks_filters_and_pages_newest_first() {
    let server = server().await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        let task = server
            .start_task("shop", &format!("i-{n}"), &format!("SHOP-{n}"))
            .await
            .task
            .unwrap();
        ids.push(task.id);
    }
    server.walk_to(ids[1], Stage::Review).await;
    let mut tasks = server.tasks();
    let list = |request: pb::ListTasksRequest| {
        let mut tasks = tasks.clone();
        async move { tasks.list_tasks(request).await.unwrap().into_inner() }
    };
    let in_review = list(pb::ListTasksRequest {
        stage: Stage::Review.into(),
        ..Default::default()
    })
    .await;
    assert_eq!(in_review.tasks.len(), 1);
    assert_eq!(in_review.tasks[0].id, ids[1]);
    let by_issue = list(pb::ListTasksRequest {
        tracker_issue_id: "i-4".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_issue.tasks[0].id, ids[3]);
    let not_held = list(pb::ListTasksRequest {
        held: Some(false),
        page_size: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(
        not_held.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let next = list(pb::ListTasksRequest {
        held: Some(false),
        page_size: 2,
        page_token: not_held.next_page_token.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        next.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    let status = tasks
        .list_tasks(pb::ListTasksRequest {
            held: Some(true),
            page_token: not_held.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_token"]);
    let status = tasks
        .list_tasks(pb::ListTasksRequest {
            stage: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["stage"]);
}
