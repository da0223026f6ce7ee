//! CI statuses resolved to their task, GetTaskFacts, AdvanceTask's checks
//! and request_id, ListTasks.

use super::*;

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
