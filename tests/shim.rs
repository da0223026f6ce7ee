//! The webhook shim through the real server: GitHub's published example
//! deliveries and Gitea's and Plane's documented payload shapes
//! (`tests/fixtures/webhooks`), signed with a known secret, posted over HTTP,
//! and their effect checked through the gRPC API.

mod common;

use bosun::pb;
use common::TestServer;
use common::pipeline::head_of;
use common::webhooks::{
    Delivery, GITHUB_SECRET, HELLO_BRANCH, HELLO_HEAD, HELLO_WORLD, fixture, fixture_json, get,
    with_secrets,
};
use serde_json::json;

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

fn check_run_failure(id: &str) -> Delivery {
    Delivery::github(
        "check_run",
        id,
        fixture("github/check_run.completed.failure.json"),
    )
}

#[tokio::test]
async fn done_when_a_signed_check_run_failure_makes_the_session_ci_failed_once_and_a_tampered_copy_gets_401()
 {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let answer = server.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let now = server.session(&session.id).await;
    assert_eq!(now.display_status, pb::DisplayStatus::CiFailed as i32);
    let pr = now.pull_request.expect("a pull request");
    assert_eq!(pr.number, 2);
    assert_eq!(pr.url, "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(pr.head_sha, HELLO_HEAD);
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Failing as i32);
    assert_eq!(pr.checks.len(), 1);
    assert_eq!(pr.checks[0].name, "Octocoders-linter");
    assert_eq!(pr.checks[0].status, pb::CheckStatus::Failed as i32);
    let reactions = server.reactions(&session.id, "ci-failed").await;
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    let nudge = &reactions[0];
    assert_eq!(nudge.status, pb::ReactionStatus::Pending as i32);
    assert_eq!(nudge.target, pb::ReactionTarget::Agent as i32);
    assert_eq!(
        (nudge.nudge_count, nudge.dedup_key.as_str()),
        (1, HELLO_HEAD)
    );
    assert!(
        nudge.message.contains("Octocoders-linter failed"),
        "{}",
        nudge.message
    );
    let head = server.head().await;

    let again = server.deliver(&failure).await;
    assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    assert_eq!(
        server.head().await,
        head,
        "the same delivery again changes nothing"
    );
    assert_eq!(server.reactions(&session.id, "ci-failed").await, reactions);

    let tampered = failure.with_id("a-tampered-copy").tampered();
    let refused = server.deliver(&tampered).await;
    assert_eq!(
        (refused.status, refused.outcome.as_str()),
        (401, "bad_signature")
    );
    assert!(refused.detail.contains("does not match"), "{refused:?}");
    assert_eq!(server.head().await, head, "a tampered copy changes nothing");
}

#[tokio::test]
async fn githubs_published_signature_vector_passes_over_http() {
    let server = TestServer::start_with(|config| {
        config.webhooks.github.secret = "It's a Secret to Everybody".into();
    })
    .await;
    let mut vector = Delivery::github("check_run", "vector", b"Hello, World!".to_vec());
    vector.signature =
        Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into());
    let answer = server.deliver(&vector).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (400, "bad_request"),
        "the signature is accepted; the body is not JSON: {answer:?}"
    );
    let wrong = server.deliver(&vector.signed_with(GITHUB_SECRET)).await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn wrong_or_missing_signatures_get_401_and_change_nothing() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let head = server.head().await;
    let good = check_run_failure("d-1");
    let mut missing = good.clone();
    missing.signature = None;
    let mut unprefixed = good.clone();
    unprefixed.signature = good
        .signature
        .as_ref()
        .map(|s| s.trim_start_matches("sha256=").to_string());
    let gitea_signed_for_github =
        Delivery::gitea("status", "d-2", fixture("gitea/status.failure.json"))
            .signed_with(GITHUB_SECRET);
    let cases = [
        (
            "wrong secret",
            good.clone().signed_with("not-the-secret"),
            "does not match",
        ),
        ("no signature", missing, "missing"),
        ("no sha256= prefix", unprefixed, "not a hex"),
        (
            "another source's secret",
            gitea_signed_for_github,
            "does not match",
        ),
    ];
    for (name, delivery, says) in cases {
        let answer = server.deliver(&delivery).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        assert!(answer.detail.contains(says), "{name}: {answer:?}");
    }
    assert_eq!(server.head().await, head, "nothing was written");
    let accepted = server.deliver(&good).await;
    assert_eq!(
        accepted.status, 200,
        "refusals are not remembered: {accepted:?}"
    );
}

#[tokio::test]
async fn a_source_without_a_secret_is_refused_unless_explicitly_insecure() {
    let server = TestServer::start_with(|config| {
        config.webhooks.github.secret = GITHUB_SECRET.into();
        config.webhooks.plane.insecure = true;
    })
    .await;
    let gitea = Delivery::gitea("status", "g-1", fixture("gitea/status.failure.json"));
    let refused = server.deliver(&gitea).await;
    assert_eq!(
        (refused.status, refused.outcome.as_str()),
        (403, "not_configured")
    );
    assert!(
        refused.detail.contains("webhooks.gitea.secret"),
        "{refused:?}"
    );

    let mut unsigned = Delivery::plane("p-1", fixture("plane/issue.updated.in_progress.json"));
    unsigned.signature = None;
    let accepted = server.deliver(&unsigned).await;
    assert_eq!(
        (accepted.status, accepted.outcome.as_str()),
        (202, "ignored")
    );
    assert!(accepted.detail.contains("no project binds"), "{accepted:?}");
}

#[tokio::test]
async fn oversize_bodies_get_413_malformed_json_400_and_neither_is_remembered() {
    let server = server().await;
    let mut huge = b"{\"pad\": \"".to_vec();
    huge.resize(5 * 1024 * 1024 + 1, b'x');
    let answer = server
        .deliver(&Delivery::github("check_run", "big", huge))
        .await;
    assert_eq!((answer.status, answer.outcome.as_str()), (413, "too_large"));

    let answer = server
        .deliver(&Delivery::github(
            "check_run",
            "d-bad",
            b"{\"check_run\": ".to_vec(),
        ))
        .await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (400, "bad_request")
    );
    assert!(answer.detail.contains("not valid JSON"), "{answer:?}");
    let mut shapeless = fixture_json("github/check_run.completed.failure.json");
    shapeless["check_run"]["head_sha"] = json!("not-a-sha");
    let answer = server
        .deliver(&Delivery::github(
            "check_run",
            "d-bad",
            shapeless.to_string().into_bytes(),
        ))
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.detail.contains("check_run.head_sha"), "{answer:?}");

    let answer = server.deliver(&check_run_failure("d-bad")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "the sender's retry with a good body is read, not a duplicate (no project has its repo)"
    );
}

#[tokio::test]
async fn unused_event_kinds_and_unknown_targets_get_202_and_do_nothing() {
    let server = server().await;
    let head = server.head().await;
    let ping = server
        .deliver(&Delivery::github(
            "ping",
            "p-1",
            fixture("github/ping.json"),
        ))
        .await;
    assert_eq!((ping.status, ping.outcome.as_str()), (202, "unused"));
    let push = server
        .deliver(&Delivery::gitea(
            "push",
            "p-2",
            b"{\"ref\": \"refs/heads/main\"}".to_vec(),
        ))
        .await;
    assert_eq!((push.status, push.outcome.as_str()), (202, "unused"));
    let opened = server
        .deliver(&Delivery::github(
            "pull_request",
            "p-3",
            fixture("github/pull_request.opened.json"),
        ))
        .await;
    assert_eq!((opened.status, opened.outcome.as_str()), (202, "ignored"));
    assert!(
        opened.detail.contains("no project has repository"),
        "{opened:?}"
    );
    assert_eq!(server.head().await, head);

    let mut anonymous = check_run_failure("x");
    anonymous.id = None;
    let answer = server.deliver(&anonymous).await;
    assert_eq!(answer.status, 400);
    assert!(answer.detail.contains("x-github-delivery"), "{answer:?}");
}

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
async fn a_delivery_is_remembered_across_a_restart() {
    let mut server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("r-1");
    assert_eq!(server.deliver(&failure).await.status, 200);
    server.restart().await;
    let head = server.head().await;
    let again = server.deliver(&failure).await;
    assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    server.deliver(&check_run_failure("m-1")).await;
    server.deliver(&check_run_failure("m-1")).await;
    assert_eq!(
        get(server.http_addr, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(server.http_addr, "/readyz").await,
        (200, "ready\n".into())
    );

    let response = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let head = server.head().await;
    for line in [
        r#"bosun_webhook_deliveries_total{source="github",event="check_run",outcome="processed"} 1"#,
        r#"bosun_webhook_deliveries_total{source="github",event="check_run",outcome="duplicate"} 1"#,
        r#"bosun_webhook_upstream_calls_total{method="RecordCiStatus",code="Ok"} 1"#,
        r#"bosun_webhook_upstream_call_duration_seconds_count{method="ReportPullRequest"} 2"#,
        r#"bosun_grpc_server_calls_total{service="bosun.v1.Sessions",method="RegisterProject",code="Ok"} 1"#,
        r#"bosun_grpc_server_call_duration_seconds_count{service="bosun.v1.Tasks",method="RecordCiStatus"} 1"#,
        &format!("bosun_change_log_head_seq {head}"),
        "bosun_watch_streams_open 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

/// A Plane API on loopback that knows one project's identifier.
async fn fake_plane(identifier: &'static str) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/api/v1/workspaces/{workspace}/projects/{project}/",
        axum::routing::get(move || async move { axum::Json(json!({ "identifier": identifier })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

const PLANE_PROJECT: &str = "4af1e7f2-3b1e-4c35-9a8a-5b0e2b0d8f31";
const PLANE_ISSUE: &str = "9a28bd00-ed9c-4f5d-8be9-fc05cbb1fc57";

#[tokio::test]
async fn plane_state_changes_start_the_task_and_record_the_verdict() {
    let plane = fake_plane("SHOP").await;
    let server = TestServer::start_with(|config| {
        with_secrets(config);
        config.reconciler.plane.base_url = format!("http://{plane}");
        config.reconciler.plane.api_key = "plane-api-key".into();
    })
    .await;
    server
        .project("shop", |project| {
            project.plane = Some(pb::PlaneBinding {
                workspace_slug: "acme".into(),
                plane_project_id: PLANE_PROJECT.into(),
                ..Default::default()
            });
        })
        .await;
    let in_progress = fixture("plane/issue.updated.in_progress.json");
    let answer = server
        .deliver(&Delivery::plane("p-1", in_progress.clone()))
        .await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let tasks = server
        .tasks()
        .list_tasks(pb::ListTasksRequest {
            tracker_issue_id: PLANE_ISSUE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let task = &tasks[0];
    assert_eq!(
        task.work_item_id, "SHOP-98",
        "named like the reconciler names it"
    );
    assert_eq!(task.title, "Checkout shows the wrong totals");
    assert_eq!(task.stage, pb::Stage::Analysis as i32);

    // Plane retries with a new delivery id and the same body.
    let head = server.head().await;
    let retry = server.deliver(&Delivery::plane("p-2", in_progress)).await;
    assert_eq!((retry.status, retry.outcome.as_str()), (200, "duplicate"));
    assert_eq!(server.head().await, head);

    let mut priority = fixture_json("plane/issue.updated.in_progress.json");
    priority["activity"]["field"] = json!("priority");
    let other = server
        .deliver(&Delivery::plane("p-3", priority.to_string().into_bytes()))
        .await;
    assert_eq!((other.status, other.outcome.as_str()), (202, "ignored"));
    assert!(other.detail.contains("not of the state"), "{other:?}");

    let approved = server
        .deliver(&Delivery::plane(
            "p-4",
            fixture("plane/issue.updated.approved.json"),
        ))
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    let facts = server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: task.id })
        .await
        .unwrap()
        .into_inner();
    let verdict = &facts.verdicts[0];
    assert_eq!(verdict.source, pb::VerdictSource::Tracker as i32);
    assert_eq!(verdict.decision, pb::VerdictDecision::Approved as i32);
    assert_eq!(verdict.author, "jane");
}

/// A standalone shim served in-process (as `bosun shim` runs it).
struct Standalone {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Standalone {
    async fn start(
        upstream: &str,
        data_dir: &std::path::Path,
        tweak: impl FnOnce(&mut bosun::config::Config),
    ) -> Self {
        let mut config = bosun::config::Config {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        };
        with_secrets(&mut config);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            bosun::webhooks::serve_standalone(config, &upstream, listener, shutdown).await
        });
        Self { addr, stop, task }
    }

    async fn deliver(&self, delivery: &Delivery) -> common::webhooks::Answer {
        common::webhooks::deliver(self.addr, delivery).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("the shim stopped cleanly");
    }
}

/// An address where nothing listens.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn upstream_down_answers_503_and_the_retry_is_processed_later() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let dir = tempfile::tempdir().unwrap();
    let failure = check_run_failure("u-1");

    let down = Standalone::start(&closed_port().await, dir.path(), |_| {}).await;
    let answer = down.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (503, "unavailable"),
        "{answer:?}"
    );
    let (status, body) = get(down.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    down.stop().await;

    let up = Standalone::start(&format!("http://{}", server.addr), dir.path(), |_| {}).await;
    let answer = up.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "a 503'd delivery was not remembered"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );
    up.stop().await;
}

#[tokio::test]
async fn a_redelivery_past_the_dedup_memory_is_idempotent_end_to_end() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("i-1");
    assert_eq!(server.deliver(&failure).await.outcome, "processed");
    let head = server.head().await;
    // Another shim with an empty memory: every call repeats a request_id.
    let dir = tempfile::tempdir().unwrap();
    let fresh = Standalone::start(&format!("http://{}", server.addr), dir.path(), |_| {}).await;
    let answer = fresh.deliver(&failure).await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    assert_eq!(
        server.head().await,
        head,
        "the request_ids made the calls no-ops"
    );
    fresh.stop().await;
}

#[tokio::test]
async fn a_delivery_past_the_deadline_answers_503() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let shim = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.deadline = std::time::Duration::from_millis(300);
    })
    .await;
    let answer = shim.deliver(&check_run_failure("t-1")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (503, "timeout"),
        "{answer:?}"
    );
    shim.stop().await;
    drop(silent);
}

#[tokio::test]
async fn shims_call_with_a_webhook_token_when_auth_is_on() {
    use common::{ADMIN_TOKEN, READ_TOKEN, WEBHOOK_TOKEN, with_token};
    let server = TestServer::start_with(|config| {
        common::auth_tokens(config);
        with_secrets(config);
    })
    .await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(with_token(
            pb::RegisterProjectRequest {
                project: Some(pb::Project {
                    id: "hello".into(),
                    origin_url: HELLO_WORLD.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let spawned = sessions
        .spawn_session(with_token(
            pb::SpawnSessionRequest {
                project_id: "hello".into(),
                harness: pb::Harness::ClaudeCode.into(),
                branch: HELLO_BRANCH.into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    sessions
        .complete_spawn(with_token(
            pb::CompleteSpawnRequest {
                session_id: spawned.id.clone(),
                runtime_handle_id: "tmux:%1".into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let display = || {
        let mut sessions = server.sessions_client();
        let id = spawned.id.clone();
        async move {
            let request = pb::GetSessionRequest { session_id: id };
            let session = sessions.get_session(with_token(request, READ_TOKEN)).await;
            pb::DisplayStatus::try_from(session.unwrap().into_inner().display_status).unwrap()
        }
    };

    // Inside serve: the shim's own token.
    let inside = server.deliver(&check_run_failure("a-1")).await;
    assert_eq!(inside.status, 200, "{inside:?}");
    assert_eq!(display().await, pb::DisplayStatus::CiFailed);

    // Alone: the configured token, refused (503, retried later) when wrong.
    let upstream = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let wrong = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.upstream_token = "not-a-token-0123456789".into();
    })
    .await;
    let success = Delivery::github(
        "check_run",
        "a-2",
        fixture("github/check_run.completed.success.json"),
    );
    let refused = wrong.deliver(&success).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.detail.contains("refused the shim's token"),
        "{refused:?}"
    );
    wrong.stop().await;
    let right = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.upstream_token = WEBHOOK_TOKEN.into();
    })
    .await;
    assert_eq!(right.deliver(&success).await.status, 200);
    assert_eq!(display().await, pb::DisplayStatus::PrOpen);
    right.stop().await;
}

#[tokio::test]
async fn the_shim_binary_forwards_to_a_separately_started_serve() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bosun"));
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("BOSUN_") {
            command.env_remove(key);
        }
    }
    command
        .args(["shim", "--upstream", &format!("http://{}", server.addr)])
        .args(["--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path());
    // On PostgreSQL the shim shares bosun's database for its dedup memory.
    if let Some(url) = &server.config.database_url {
        command.args(["--database-url", url.reveal()]);
    }
    let mut child = command
        .env("BOSUN_WEBHOOKS__GITHUB__SECRET", GITHUB_SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: the log line that names the bound address.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("the shim exited").unwrap();
        if let Some(rest) = line.split("http_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let answer = common::webhooks::deliver(addr, &check_run_failure("b-1")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("bosun_webhook_deliveries_total"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("bosun_grpc_server_calls"),
        "the shim's figures only"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let local = dir.path().join(bosun::webhooks::DEDUP_FILE).exists();
    if server.config.database_url.is_none() {
        assert!(
            local,
            "on SQLite the shim remembers deliveries in its data dir"
        );
    } else {
        assert!(!local, "on PostgreSQL it keeps no memory of its own");
        // The replica's own endpoint knows the delivery the shim took.
        let again = common::webhooks::deliver(server.http_addr, &check_run_failure("b-1")).await;
        assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    }
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
