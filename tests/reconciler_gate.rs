//! The Reconciler's gate side (SPEC §8) through the real server and
//! generated client: tasks stuck by a lost webhook or session advance as
//! AdvanceTask would; fresh, busy, held and red ones are left alone; one task
//! that cannot be evaluated costs only itself; a pass that cannot list the
//! tasks fails and says why.

mod common;

use bosun::pb::{
    self, AdvanceOutcome, CiStatusState, ListReconcilerRunsRequest, PullRequestState,
    ReconcilerActionKind, ReconcilerRunState, ReconcilerSide, ReconcilerTrigger, Stage,
    StageSessionOutcome, VerdictDecision, VerdictSource, event::Payload,
};
use bosun::storage::sql::query;
use common::TestServer;
use common::pipeline::{SHA_A, SHA_B, events, facts, head_seq, session};
use common::reconciler::{
    PAST_GRACE, counts, just_stuck_in_development, run_ids, run_once, status, stuck_in,
    stuck_in_development,
};

const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccc";
const SHA_D: &str = "dddddddddddddddddddddddddddddddddddddddd";

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
    let mut conn = server.direct().await;
    query(
        "UPDATE projects SET required_ci_contexts = '{\"not\": \"a list\"}' WHERE id = 'a-broken'",
    )
    .execute(&mut conn.conn())
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
    let mut conn = server.direct().await;
    query("UPDATE tasks SET last_gate = '{\"bogus\": 1}' WHERE id = $1")
        .bind(id)
        .execute(&mut conn.conn())
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
