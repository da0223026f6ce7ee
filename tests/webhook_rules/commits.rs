//! CI by commit: another commit never moves a task, the head reaches it
//! whatever the repository's case, a repository with no project writes
//! nothing, and a stale check run changes nothing.

use super::*;

#[tokio::test]
async fn ci_for_another_commit_never_moves_a_task() {
    let server = server().await;
    let task = task_in_development(&server, HELLO_WORLD).await;
    assert_eq!(task.head_sha, HELLO_HEAD);

    // The unmodified published status: success on a commit of master.
    let status = server
        .deliver(&github("status", "s-1", &example("status")))
        .await;
    assert_eq!(status.status, 200, "{status:?}");
    // A suite for master with no pull request.
    let mut suite = example("check_suite.completed");
    suite["check_suite"]["head_branch"] = json!("master");
    suite["check_suite"]["head_sha"] = json!(MASTER_HEAD);
    suite["check_suite"]["pull_requests"] = json!([]);
    let suite = server.deliver(&github("check_suite", "s-2", &suite)).await;
    assert_eq!(suite.status, 200, "{suite:?}");

    let now = server.task(task.id).await;
    assert_eq!(now.head_sha, HELLO_HEAD, "CI never rewrites a task's head");
    let facts = common::pipeline::facts(&server, task.id).await;
    assert!(facts.ci_statuses.is_empty(), "{:?}", facts.ci_statuses);
    let finished = server.finish_stage(task.id).await;
    assert_ne!(
        finished.outcome,
        pb::AdvanceOutcome::Advanced as i32,
        "the gate has no CI on the head: {finished:?}"
    );
    assert_eq!(
        server.task(task.id).await.stage,
        pb::Stage::Development as i32
    );

    // A result naming a branch no task has resolves nothing; one naming no
    // branch falls back to the single development task, as history only.
    let named = server
        .tasks()
        .record_ci_status(pb::RecordCiStatusRequest {
            repo: "Codertocat/Hello-World".into(),
            sha: MASTER_HEAD.into(),
            branch: "master".into(),
            context: "ci/other".into(),
            state: pb::CiStatusState::Success.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.resolution, pb::ShaResolution::Unresolved as i32);
    let unnamed = server
        .tasks()
        .record_ci_status(pb::RecordCiStatusRequest {
            repo: "Codertocat/Hello-World".into(),
            sha: MASTER_HEAD.into(),
            context: "ci/other".into(),
            state: pb::CiStatusState::Success.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (unnamed.resolution, unnamed.task_id),
        (pb::ShaResolution::SingleDevelopmentTask as i32, task.id)
    );
    assert_eq!(server.task(task.id).await.head_sha, HELLO_HEAD);
}

#[tokio::test]
async fn ci_on_the_head_reaches_a_task_whatever_the_repositorys_case() {
    let server = server().await;
    let task = task_in_development(&server, "https://github.com/codertocat/hello-world.git").await;
    let green = check_run("check_run.completed.success", HELLO_BRANCH, HELLO_HEAD);
    let answer = server.deliver(&github("check_run", "c-1", &green)).await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));

    let facts = common::pipeline::facts(&server, task.id).await;
    let contexts: Vec<(&str, &str)> = facts
        .ci_statuses
        .iter()
        .map(|s| (s.repo.as_str(), s.context.as_str()))
        .collect();
    assert_eq!(contexts, [("codertocat/hello-world", "Octocoders-linter")]);
    let finished = server.finish_stage(task.id).await;
    assert_eq!(
        finished.outcome,
        pb::AdvanceOutcome::Advanced as i32,
        "{finished:?}"
    );
}

#[tokio::test]
async fn ci_for_a_repository_with_no_project_writes_nothing() {
    let server = server().await;
    server.project("shop", |_| {}).await;
    let head = server.head().await;
    let deliveries = [
        ("status", example("status")),
        ("check_run", example("check_run.completed.success")),
        ("check_suite", example("check_suite.completed")),
        ("workflow_run", example("workflow_run.completed")),
    ];
    for (i, (event, body)) in deliveries.iter().enumerate() {
        let answer = server
            .deliver(&github(event, &format!("n-{i}"), body))
            .await;
        assert_eq!(
            (answer.status, answer.outcome.as_str()),
            (202, "ignored"),
            "{event}"
        );
        assert!(answer.detail.contains("no project"), "{answer:?}");
    }
    assert_eq!(server.head().await, head, "no ci_status.recorded");
}

#[tokio::test]
async fn a_stale_check_run_changes_nothing() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let completed = check_run("check_run.completed.success", HELLO_BRANCH, HELLO_HEAD);
    let answer = server
        .deliver(&github("check_run", "o-1", &completed))
        .await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    let head = server.head().await;

    // The same run's queued delivery, arriving late.
    let queued = check_run("check_run.created", HELLO_BRANCH, HELLO_HEAD);
    let answer = server.deliver(&github("check_run", "o-2", &queued)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "stale"),
        "{answer:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Passing as i32);
    assert_eq!(pr.checks[0].status, pb::CheckStatus::Passed as i32);

    // Redelivered under its own id: a duplicate; the completed one again
    // under a new id: the same rank, applied (and changes nothing).
    let again = server.deliver(&github("check_run", "o-2", &queued)).await;
    assert_eq!(again.outcome, "duplicate");
    let same = server
        .deliver(&github("check_run", "o-3", &completed))
        .await;
    assert_eq!(same.status, 200, "{same:?}");
    assert_eq!(server.head().await, head);
}
