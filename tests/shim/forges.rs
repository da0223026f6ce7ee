//! GitHub's and Gitea's deliveries through to sessions and tasks: pull
//! request lifecycles, CI results, review verdicts, workflow runs, and
//! concurrent deliveries for one branch.

use super::*;

#[tokio::test]
async fn a_pull_request_lifecycle_moves_the_session_and_keeps_what_webhooks_do_not_know() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let send = |event: &str, id: &'static str, file: &str| {
        let delivery = Delivery::github(event, id, fixture(file));
        let server = &server;
        async move {
            let answer = server.deliver(&delivery).await;
            assert_eq!(answer.status, 200, "{id}: {answer:?}");
        }
    };
    let display =
        |session: &pb::Session| pb::DisplayStatus::try_from(session.display_status).unwrap();

    send("pull_request", "l-1", "github/pull_request.opened.json").await;
    let now = server.session(&session.id).await;
    assert_eq!(display(&now), pb::DisplayStatus::PrOpen);
    let pr = now.pull_request.unwrap();
    assert_eq!((pr.number, pr.branch.as_str()), (2, HELLO_BRANCH));
    assert_eq!(pr.mergeability, pb::Mergeability::Unknown as i32);
    assert_eq!(pr.title, "Update the README with new information.");

    // A runner reports a review comment (webhooks never carry the full list).
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: session.id.clone(),
            fetched: true,
            pull_request: Some(pb::PullRequest {
                comments: vec![pb::Comment {
                    id: "c-1".into(),
                    author: "reviewer".into(),
                    body: "Please add a test".into(),
                    ..Default::default()
                }],
                ..pr.clone()
            }),
            ..Default::default()
        })
        .await
        .expect("a runner's report");

    send(
        "check_run",
        "l-2",
        "github/check_run.completed.failure.json",
    )
    .await;
    assert_eq!(
        display(&server.session(&session.id).await),
        pb::DisplayStatus::CiFailed
    );
    send(
        "check_run",
        "l-3",
        "github/check_run.completed.success.json",
    )
    .await;
    let now = server.session(&session.id).await;
    assert_eq!(
        display(&now),
        pb::DisplayStatus::PrOpen,
        "the same check passed"
    );
    let pr = now.pull_request.unwrap();
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Passing as i32);
    assert_eq!(
        pr.comments.len(),
        1,
        "the runner's comment survives webhooks"
    );
    let cleared = server.reactions(&session.id, "ci-failed").await;
    assert_eq!(cleared[0].status, pb::ReactionStatus::Cleared as i32);

    send(
        "pull_request_review",
        "l-4",
        "github/pull_request_review.dismissed.json",
    )
    .await;
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!(pr.review_decision, pb::ReviewDecision::Unspecified as i32);

    send("pull_request", "l-5", "github/pull_request.closed.json").await;
    let now = server.session(&session.id).await;
    assert_eq!(
        now.pull_request.as_ref().unwrap().state,
        pb::PullRequestState::Closed as i32
    );
    assert_eq!(
        display(&now),
        pb::DisplayStatus::Working,
        "a closed PR says nothing"
    );
    assert_eq!(server.reactions(&session.id, "pr-closed").await.len(), 1);
}

#[tokio::test]
async fn ci_results_reach_the_task_pipeline() {
    let server = server().await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(pb::RegisterProjectRequest {
            project: Some(pb::Project {
                id: "hello".into(),
                origin_url: HELLO_WORLD.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = server
        .tasks()
        .start_task(pb::StartTaskRequest {
            project_id: "hello".into(),
            tracker_issue_id: "issue-2".into(),
            work_item_id: "HELLO-2".into(),
            branch: HELLO_BRANCH.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let task = started.task.unwrap();
    server.walk_to(task.id, pb::Stage::Development).await;

    let mut status = fixture_json("github/status.json");
    status["sha"] = json!(HELLO_HEAD);
    let deliveries = [
        Delivery::github(
            "check_run",
            "c-1",
            fixture("github/check_run.completed.success.json"),
        ),
        Delivery::github(
            "check_suite",
            "c-2",
            fixture("github/check_suite.completed.json"),
        ),
        Delivery::github("status", "c-3", status.to_string().into_bytes()),
    ];
    for delivery in &deliveries {
        let answer = server.deliver(delivery).await;
        assert_eq!(answer.status, 200, "{}: {answer:?}", delivery.event);
    }
    let facts = server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: task.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        facts.head_sha, HELLO_HEAD,
        "the PR report set the task's head"
    );
    let contexts: Vec<(&str, i32)> = facts
        .ci_statuses
        .iter()
        .map(|s| (s.context.as_str(), s.state))
        .collect();
    let success = pb::CiStatusState::Success as i32;
    assert_eq!(
        contexts,
        [
            ("Octocoders-linter", success),
            ("default", success),
            ("octocoders-linter", success)
        ]
    );
    let developer = server.task(task.id).await.stage_session_id;
    let pr = server.session(&developer).await.pull_request.unwrap();
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Passing as i32);
}

#[tokio::test]
async fn a_review_approval_records_a_pr_review_verdict_on_the_sessions_task() {
    let server = server().await;
    server.project("shop", |_| {}).await;
    let task = server
        .start_task("shop", "issue-9", "SHOP-9")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, pb::Stage::Review).await;
    let task = server.task(task.id).await;

    let mut review = fixture_json("github/pull_request_review.submitted.json");
    review["repository"]["full_name"] = json!(common::pipeline::REPO);
    review["pull_request"]["head"]["repo"]["full_name"] = json!(common::pipeline::REPO);
    review["pull_request"]["head"]["ref"] = json!(task.branch);
    review["pull_request"]["head"]["sha"] = json!(head_of(task.id));
    review["review"]["state"] = json!("approved");
    let answer = server
        .deliver(&Delivery::github(
            "pull_request_review",
            "r-1",
            review.to_string().into_bytes(),
        ))
        .await;
    assert_eq!(
        (answer.status, answer.detail.as_str()),
        (200, "2 call(s) applied")
    );

    let pr = server
        .session(&task.stage_session_id)
        .await
        .pull_request
        .unwrap();
    assert_eq!(pr.review_decision, pb::ReviewDecision::Approved as i32);
    let facts = server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: task.id })
        .await
        .unwrap()
        .into_inner();
    let verdict = &facts.verdicts[0];
    assert_eq!(verdict.source, pb::VerdictSource::PrReview as i32);
    assert_eq!(verdict.decision, pb::VerdictDecision::Approved as i32);
    assert_eq!(verdict.author, "Codertocat");
}

#[tokio::test]
async fn gitea_pull_requests_reviews_and_statuses() {
    let server = server().await;
    let origin = "http://localhost:3000/gitea/webhooks.git";
    let session = server
        .session_on("passkey", origin, "feature/passkey")
        .await;
    let opened = Delivery::gitea(
        "pull_request",
        "g-1",
        fixture("gitea/pull_request.opened.json"),
    );
    let approved = Delivery::gitea(
        "pull_request_approved",
        "g-2",
        fixture("gitea/pull_request_approved.json"),
    );
    let failed = Delivery::gitea("status", "g-3", fixture("gitea/status.failure.json"));
    for delivery in [&opened, &approved, &failed] {
        let answer = server.deliver(delivery).await;
        assert_eq!(answer.status, 200, "{}: {answer:?}", delivery.event);
    }
    let now = server.session(&session.id).await;
    assert_eq!(now.display_status, pb::DisplayStatus::CiFailed as i32);
    let pr = now.pull_request.unwrap();
    assert_eq!(pr.url, "http://localhost:3000/gitea/webhooks/pulls/3");
    assert_eq!(pr.review_decision, pb::ReviewDecision::Approved as i32);
    assert_eq!(pr.mergeability, pb::Mergeability::Mergeable as i32);
    assert_eq!(pr.checks[0].name, "ci/woodpecker/pr/test");
    assert_eq!(pr.checks[0].log_tail, "Pipeline failed: 2 tests");
    assert_eq!(
        pr.title, "Log in with a passkey",
        "the status event carries no title and keeps the pull request's"
    );
    let again = server.deliver(&failed).await;
    assert_eq!(again.outcome, "duplicate");
}

#[tokio::test]
async fn workflow_runs_and_queued_check_runs_report_their_state() {
    let server = server().await;
    let session = server
        .session_on(
            "octo",
            "git@github.com:octo-org/octo-repo.git",
            HELLO_BRANCH,
        )
        .await;
    // GitHub's example ran on a master commit while naming PR #2: a run on
    // another commit than the PR's head is history and decides nothing.
    let example = fixture("github/workflow_run.completed.json");
    let run = Delivery::github("workflow_run", "w-1", example);
    assert_eq!(server.deliver(&run).await.status, 200);
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!((pr.head_sha.as_str(), pr.checks.len()), (HELLO_HEAD, 0));
    assert_eq!(pr.ci_state, pb::PullRequestCiState::None as i32);

    let mut on_head = fixture_json("github/workflow_run.completed.json");
    on_head["workflow_run"]["head_sha"] = json!(HELLO_HEAD);
    on_head["workflow_run"]["head_branch"] = json!(HELLO_BRANCH);
    let run = Delivery::github("workflow_run", "w-2", on_head.to_string().into_bytes());
    assert_eq!(server.deliver(&run).await.status, 200);
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!(pr.checks[0].name, "test", "named after the workflow");
    assert_eq!(pr.checks[0].status, pb::CheckStatus::Passed as i32);
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Passing as i32);

    let mut queued = fixture_json("github/check_run.created.json");
    queued["repository"]["full_name"] = json!("octo-org/octo-repo");
    let queued = Delivery::github("check_run", "w-3", queued.to_string().into_bytes());
    assert_eq!(server.deliver(&queued).await.status, 200);
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!(
        pr.ci_state,
        pb::PullRequestCiState::Pending as i32,
        "one check still runs"
    );
    assert_eq!(pr.checks.len(), 2);
}

#[tokio::test]
async fn concurrent_deliveries_for_one_branch_lose_nothing() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let deliveries: Vec<Delivery> = (0..8)
        .map(|i| {
            let file = if i == 3 {
                "github/check_run.completed.failure.json"
            } else {
                "github/check_run.completed.success.json"
            };
            let mut run = fixture_json(file);
            run["check_run"]["name"] = json!(format!("check-{i}"));
            Delivery::github(
                "check_run",
                &format!("cc-{i}"),
                run.to_string().into_bytes(),
            )
        })
        .collect();
    let answers = futures::future::join_all(deliveries.iter().map(|d| server.deliver(d))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!(pr.checks.len(), 8);
    assert_eq!(
        pr.ci_state,
        pb::PullRequestCiState::Failing as i32,
        "no report overwrote the failure with a stale merge"
    );
}
