//! The rules for matching deliveries (README "Matching deliveries"),
//! through the real server: GitHub's published examples, varied the way
//! real senders vary them (another commit, a fork, another spelling of the
//! repository, a repository bosun does not know, a partial object), signed
//! and posted over HTTP, and their effect read back through the gRPC API.

mod common;

use bosun::pb;
use common::TestServer;
use common::forge_payloads::{
    check_run, example, from_fork, gitea, gitea_example, gitea_from_fork, gitea_pull_request,
    github, mergeable, on_repo, pull_request,
};
use common::webhooks::{HELLO_BRANCH, HELLO_HEAD, HELLO_WORLD, with_secrets};
use serde_json::json;

/// master's head in the published examples.
const MASTER_HEAD: &str = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

/// Project "hello" on `origin` and a task on the PR branch, in development
/// with its pull request's head at HELLO_HEAD.
async fn task_in_development(server: &TestServer, origin: &str) -> pb::Task {
    server
        .project("hello", |p| p.origin_url = origin.into())
        .await;
    let task = server
        .tasks()
        .start_task(pb::StartTaskRequest {
            project_id: "hello".into(),
            tracker_issue_id: "issue-2".into(),
            work_item_id: "HELLO-2".into(),
            branch: HELLO_BRANCH.into(),
            ..Default::default()
        })
        .await
        .expect("start task")
        .into_inner()
        .task
        .expect("task");
    server.walk_to(task.id, pb::Stage::Development).await;
    server
        .pull_request(task.id, pb::PullRequestState::Open, HELLO_HEAD)
        .await;
    server.task(task.id).await
}

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
async fn a_pull_request_from_a_fork_never_reaches_the_agents_session() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let ours = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "open",
        false,
        "2019-05-15T15:20:33Z",
    );
    let answer = server.deliver(&github("pull_request", "f-1", &ours)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let head = server.head().await;

    let fork_head = "abababababababababababababababababababab";
    let deliveries = [
        (
            "pull_request",
            from_fork(
                pull_request(
                    HELLO_BRANCH,
                    fork_head,
                    "open",
                    false,
                    "2019-05-16T00:00:00Z",
                ),
                "mallory",
            ),
        ),
        (
            "pull_request",
            from_fork(
                pull_request(
                    HELLO_BRANCH,
                    fork_head,
                    "closed",
                    true,
                    "2019-05-17T00:00:00Z",
                ),
                "mallory",
            ),
        ),
        (
            "check_run",
            from_fork(
                check_run("check_run.completed.failure", HELLO_BRANCH, fork_head),
                "mallory",
            ),
        ),
    ];
    for (i, (event, body)) in deliveries.iter().enumerate() {
        let answer = server
            .deliver(&github(event, &format!("f-{}", i + 2), body))
            .await;
        assert_eq!(
            (answer.status, answer.outcome.as_str()),
            (202, "ignored"),
            "{event}"
        );
        assert!(answer.detail.contains("fork"), "{answer:?}");
    }
    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert!(now.termination_reason == pb::TerminationReason::Unspecified as i32);
    assert_eq!(now.pull_request.unwrap().head_sha, HELLO_HEAD);
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
async fn a_review_keeps_the_mergeability_it_does_not_carry() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let conflicting = mergeable(
        pull_request(
            HELLO_BRANCH,
            HELLO_HEAD,
            "open",
            false,
            "2019-05-15T15:20:33Z",
        ),
        false,
        "dirty",
    );
    let answer = server
        .deliver(&github("pull_request", "m-1", &conflicting))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let before = server.session(&session.id).await;
    assert_eq!(
        before.pull_request.as_ref().unwrap().mergeability,
        pb::Mergeability::Conflicting as i32
    );
    let pending = |reactions: &[pb::Reaction]| {
        reactions
            .iter()
            .filter(|r| r.status == pb::ReactionStatus::Pending as i32)
            .count()
    };
    assert_eq!(
        pending(&server.reactions(&session.id, "merge-conflicts").await),
        1
    );

    for (i, state) in ["commented", "approved"].iter().enumerate() {
        let mut review = example("pull_request_review.submitted");
        review["review"]["state"] = json!(state);
        let answer = server
            .deliver(&github(
                "pull_request_review",
                &format!("m-{}", i + 2),
                &review,
            ))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let after = server.session(&session.id).await;
        let pr = after.pull_request.unwrap();
        assert_eq!(
            pr.mergeability,
            pb::Mergeability::Conflicting as i32,
            "{state}"
        );
        assert_eq!(
            pending(&server.reactions(&session.id, "merge-conflicts").await),
            1,
            "{state}"
        );
        if *state == "commented" {
            assert_eq!(after.display_status, before.display_status);
        } else {
            assert_eq!(pr.review_decision, pb::ReviewDecision::Approved as i32);
        }
    }
}

#[tokio::test]
async fn another_spelling_of_the_repository_reaches_the_session() {
    let server = server().await;
    let session = server
        .session_on(
            "hello",
            "git@github.com:CODERTOCAT/hello-world.git",
            HELLO_BRANCH,
        )
        .await;
    let body = on_repo(
        pull_request(
            HELLO_BRANCH,
            HELLO_HEAD,
            "open",
            false,
            "2019-05-15T15:20:33Z",
        ),
        "codertocat/HELLO-world",
    );
    let answer = server.deliver(&github("pull_request", "r-1", &body)).await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!((pr.number, pr.head_sha.as_str()), (2, HELLO_HEAD));
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

#[tokio::test]
async fn a_pull_request_delivery_older_than_the_merge_changes_nothing() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let opened = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "open",
        false,
        "2019-05-15T15:20:33Z",
    );
    let merged = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "closed",
        true,
        "2019-05-15T15:22:00Z",
    );
    for (id, body) in [("p-1", &opened), ("p-2", &merged)] {
        let answer = server.deliver(&github("pull_request", id, body)).await;
        assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    }
    let head = server.head().await;
    let late = server
        .deliver(&github("pull_request", "p-3", &opened))
        .await;
    assert_eq!(
        (late.status, late.outcome.as_str()),
        (200, "stale"),
        "{late:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
    assert!(
        server
            .reactions(&session.id, "approved-and-green")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn gitea_deliveries_follow_the_same_rules() {
    let server = server().await;
    let session = server
        .session_on(
            "passkey",
            "http://localhost:3000/Gitea/WebHooks.git",
            "feature/passkey",
        )
        .await;
    let opened = gitea_pull_request("open", false, "2024-06-11T15:02:40Z");
    let answer = server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let head = server.head().await;

    let fork = gitea_from_fork(
        gitea_pull_request("closed", true, "2024-06-12T00:00:00Z"),
        "mallory",
    );
    let answer = server.deliver(&gitea("pull_request", "g-2", &fork)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "{answer:?}"
    );
    let mut elsewhere = gitea_example("status.failure");
    elsewhere["repository"]["full_name"] = json!("gitea/other");
    let answer = server.deliver(&gitea("status", "g-3", &elsewhere)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "{answer:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");

    let failed = gitea_example("status.failure");
    let answer = server.deliver(&gitea("status", "g-4", &failed)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let stale = server
        .deliver(&gitea("status", "g-5", &{
            let mut older = failed.clone();
            older["state"] = json!("pending");
            older["updated_at"] = json!("2024-06-11T15:00:00Z");
            older
        }))
        .await;
    assert_eq!(
        (stale.status, stale.outcome.as_str()),
        (200, "stale"),
        "{stale:?}"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );

    let merged = gitea_pull_request("closed", true, "2024-06-12T00:00:00Z");
    let answer = server.deliver(&gitea("pull_request", "g-6", &merged)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let late = server.deliver(&gitea("pull_request", "g-7", &opened)).await;
    assert_eq!(
        (late.status, late.outcome.as_str()),
        (200, "stale"),
        "{late:?}"
    );
    let now = server.session(&session.id).await;
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
}

#[tokio::test]
async fn a_report_older_than_the_applied_one_is_stale_from_runners_and_webhooks() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let at = |seconds: i64| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let report = |head: &str, observed_time| pb::ReportPullRequestRequest {
        session_id: session.id.clone(),
        fetched: true,
        pull_request: Some(pb::PullRequest {
            url: "https://github.com/Codertocat/Hello-World/pull/2".into(),
            number: 2,
            state: pb::PullRequestState::Open.into(),
            head_sha: head.into(),
            branch: HELLO_BRANCH.into(),
            ..Default::default()
        }),
        observed_time,
        ..Default::default()
    };
    let other = "cccccccccccccccccccccccccccccccccccccccc";
    // 2019-05-15T15:30:00Z: after every published pull request example.
    let newest = 1_557_934_200;
    let mut sessions = server.sessions_client();
    let first = sessions
        .report_pull_request(report(HELLO_HEAD, at(newest)))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.stale);
    let head = server.head().await;
    let older = sessions
        .report_pull_request(report(other, at(newest - 60)))
        .await
        .unwrap()
        .into_inner();
    assert!(older.stale && !older.dropped, "{older:?}");
    assert_eq!(server.head().await, head, "nothing written");
    assert_eq!(
        older.session.unwrap().pull_request.unwrap().head_sha,
        HELLO_HEAD
    );

    // A webhook older than the runner's report: stale by bosun's guard.
    let opened = pull_request(HELLO_BRANCH, other, "open", false, "2019-05-15T15:20:33Z");
    let answer = server
        .deliver(&github("pull_request", "w-1", &opened))
        .await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "stale"),
        "{answer:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");

    // A report without a time is a fresh fetch: applied.
    let fresh = sessions
        .report_pull_request(report(other, None))
        .await
        .unwrap()
        .into_inner();
    assert!(!fresh.stale);
    assert_eq!(fresh.session.unwrap().pull_request.unwrap().head_sha, other);
}
