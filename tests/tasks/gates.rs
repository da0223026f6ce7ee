//! The gate of each stage, green and red: the walk from analysis to done,
//! CI on the head commit, rollbacks with their gate-failure lessons.

use super::*;

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
