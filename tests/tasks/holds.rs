//! Holds: an unmerged pull request, a degraded deploy, the rollback limit,
//! the retry budget; ReleaseTask; a journal that fails never stops a
//! transition.

use super::*;

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
