//! Gitea and Plane deliveries through the real server, built from each
//! sender's own shapes (Gitea's `modules/structs` payloads and event
//! headers, Plane's v1 issue webhook from `webhook_task.py`), in the order
//! and with the variants real senders produce: redelivered, out of order,
//! from a fork, about another repository or project, another spelling of
//! the repository, partial objects. Each asserts the state written (the
//! session's pull request, the task's CI, the task and its verdicts), not
//! only the HTTP answer.

mod common;

use bosun::pb;
use common::TestServer;
use common::forge_payloads::{
    GITEA_HEAD, gitea, gitea_from_fork, gitea_pr, gitea_review, gitea_status, plane_issue,
};
use common::webhooks::{Answer, Delivery, with_secrets};
use serde_json::{Value, json};

const GITEA_ORIGIN: &str = "http://localhost:3000/gitea/webhooks.git";
const GITEA_BRANCH: &str = "feature/passkey";
const NEXT_HEAD: &str = "5d3f0a9c1e2b4d6f8a0c2e4b6d8f0a1c3e5b7d9f";

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

fn outcome(answer: &Answer) -> (u16, &str) {
    (answer.status, answer.outcome.as_str())
}

async fn pull_request(server: &TestServer, session: &str) -> pb::PullRequest {
    server
        .session(session)
        .await
        .pull_request
        .expect("a pull request")
}

#[tokio::test]
async fn gitea_pull_request_actions_set_the_sessions_pull_request() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let deliver = |id: &'static str, body: Value| {
        let server = &server;
        async move { server.deliver(&gitea("pull_request", id, &body)).await }
    };

    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    assert_eq!(
        outcome(&deliver("g-1", opened.clone()).await),
        (200, "processed")
    );
    let pr = pull_request(&server, &session.id).await;
    assert_eq!(
        (
            pr.number,
            pr.state,
            pr.head_sha.as_str(),
            pr.branch.as_str()
        ),
        (
            3,
            pb::PullRequestState::Open as i32,
            GITEA_HEAD,
            GITEA_BRANCH
        )
    );
    assert_eq!(pr.mergeability, pb::Mergeability::Mergeable as i32);

    let edited = gitea_pr("edited", GITEA_HEAD, false, "2024-06-11T15:10:00Z");
    assert_eq!(outcome(&deliver("g-2", edited).await), (200, "processed"));
    let synced = gitea_pr("synchronized", NEXT_HEAD, false, "2024-06-11T15:20:00Z");
    assert_eq!(
        outcome(&deliver("g-3", synced.clone()).await),
        (200, "processed")
    );
    assert_eq!(pull_request(&server, &session.id).await.head_sha, NEXT_HEAD);

    // Gitea redelivers with the same X-Gitea-Delivery.
    let head = server.head().await;
    assert_eq!(outcome(&deliver("g-3", synced).await), (200, "duplicate"));
    // The opening, older than the push, arrives again (another id).
    assert_eq!(outcome(&deliver("g-4", opened).await), (200, "stale"));
    assert_eq!(server.head().await, head, "nothing written");
    assert_eq!(pull_request(&server, &session.id).await.head_sha, NEXT_HEAD);

    let closed = gitea_pr("closed", NEXT_HEAD, false, "2024-06-11T16:00:00Z");
    assert_eq!(outcome(&deliver("g-5", closed).await), (200, "processed"));
    assert_eq!(
        pull_request(&server, &session.id).await.state,
        pb::PullRequestState::Closed as i32
    );
    let reopened = gitea_pr("reopened", NEXT_HEAD, false, "2024-06-11T16:30:00Z");
    assert_eq!(outcome(&deliver("g-6", reopened).await), (200, "processed"));
    assert_eq!(
        pull_request(&server, &session.id).await.state,
        pb::PullRequestState::Open as i32
    );

    let merged = gitea_pr("closed", NEXT_HEAD, true, "2024-06-12T09:00:00Z");
    assert_eq!(outcome(&deliver("g-7", merged).await), (200, "processed"));
    let now = server.session(&session.id).await;
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
}

#[tokio::test]
async fn gitea_deliveries_about_other_heads_and_repositories_change_nothing() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    let answer = server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    assert_eq!(outcome(&answer), (200, "processed"));
    let head = server.head().await;

    // A fork's pull request on a branch of the same name, then its merge.
    for (id, action, merged) in [("g-2", "synchronized", false), ("g-3", "closed", true)] {
        let fork = gitea_from_fork(
            gitea_pr(action, NEXT_HEAD, merged, "2024-06-12T00:00:00Z"),
            "mallory",
        );
        let answer = server.deliver(&gitea("pull_request", id, &fork)).await;
        assert_eq!(outcome(&answer), (202, "ignored"), "{action}: {answer:?}");
    }
    // The same pull request number in another repository of the instance.
    let mut elsewhere = gitea_pr("closed", NEXT_HEAD, true, "2024-06-12T00:00:00Z");
    for pointer in [
        "/repository",
        "/pull_request/base/repo",
        "/pull_request/head/repo",
    ] {
        let repo = elsewhere.pointer_mut(pointer).expect("a repository");
        repo["full_name"] = json!("gitea/other");
        repo["name"] = json!("other");
        repo["id"] = json!(141);
    }
    let answer = server
        .deliver(&gitea("pull_request", "g-4", &elsewhere))
        .await;
    assert_eq!(outcome(&answer), (202, "ignored"), "{answer:?}");
    let mut status = gitea_status("success", NEXT_HEAD, "2024-06-12T00:00:00Z");
    status["repository"]["full_name"] = json!("gitea/other");
    let answer = server.deliver(&gitea("status", "g-5", &status)).await;
    assert_eq!(outcome(&answer), (202, "ignored"), "{answer:?}");

    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert_eq!(now.termination_reason, 0, "still alive");
    let pr = now.pull_request.unwrap();
    assert_eq!(
        (pr.state, pr.head_sha.as_str()),
        (pb::PullRequestState::Open as i32, GITEA_HEAD)
    );
}

#[tokio::test]
async fn gitea_reviews_set_the_decision_and_keep_what_they_do_not_carry() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    let cases = [
        (
            "pull_request_rejected",
            "2024-06-11T15:30:00Z",
            pb::ReviewDecision::ChangesRequested,
        ),
        (
            "pull_request_comment",
            "2024-06-11T15:40:00Z",
            pb::ReviewDecision::ChangesRequested,
        ),
        (
            "pull_request_approved",
            "2024-06-11T15:50:00Z",
            pb::ReviewDecision::Approved,
        ),
    ];
    for (n, (event, at, decision)) in cases.into_iter().enumerate() {
        let mut review = gitea_review(event, at);
        // Gitea's review payloads carry the pull request without a
        // computed mergeability: it must not erase the known one.
        review["pull_request"]["mergeable"] = json!(false);
        let answer = server
            .deliver(&gitea(event, &format!("r-{n}"), &review))
            .await;
        assert_eq!(outcome(&answer), (200, "processed"), "{event}: {answer:?}");
        let pr = pull_request(&server, &session.id).await;
        assert_eq!(pr.review_decision, decision as i32, "{event}");
        assert_eq!(
            pr.mergeability,
            pb::Mergeability::Mergeable as i32,
            "{event} keeps the mergeability"
        );
    }
}

/// Project "passkey" on Gitea and a task on the PR branch, in development
/// with its pull request's head at GITEA_HEAD.
async fn gitea_task(server: &TestServer, origin: &str) -> pb::Task {
    server
        .project("passkey", |p| p.origin_url = origin.into())
        .await;
    let task = server
        .tasks()
        .start_task(pb::StartTaskRequest {
            project_id: "passkey".into(),
            tracker_issue_id: "issue-3".into(),
            work_item_id: "PASS-3".into(),
            branch: GITEA_BRANCH.into(),
            ..Default::default()
        })
        .await
        .expect("start task")
        .into_inner()
        .task
        .expect("task");
    server.walk_to(task.id, pb::Stage::Development).await;
    server
        .pull_request(task.id, pb::PullRequestState::Open, GITEA_HEAD)
        .await;
    server.task(task.id).await
}

#[tokio::test]
async fn gitea_statuses_reach_the_task_on_its_head_only() {
    let server = server().await;
    // The operator spelled the repository another way.
    let task = gitea_task(&server, "http://localhost:3000/Gitea/WebHooks.git").await;
    let deliver = |id: &'static str, body: Value| {
        let server = &server;
        async move { server.deliver(&gitea("status", id, &body)).await }
    };

    // A status on a commit that is not the task's head: history only.
    let other = gitea_status("success", NEXT_HEAD, "2024-06-11T15:03:00Z");
    deliver("s-1", other).await;
    assert_eq!(server.task(task.id).await.head_sha, GITEA_HEAD);
    let facts = common::pipeline::facts(&server, task.id).await;
    assert!(
        facts.ci_statuses.iter().all(|s| s.sha != GITEA_HEAD),
        "{:?}",
        facts.ci_statuses
    );

    let pending = gitea_status("pending", GITEA_HEAD, "2024-06-11T15:04:00Z");
    assert_eq!(outcome(&deliver("s-2", pending).await), (200, "processed"));
    // A partial status: no commit object, no sender, no link.
    let mut success = gitea_status("success", GITEA_HEAD, "2024-06-11T15:09:00Z");
    success["commit"] = Value::Null;
    success["sender"] = Value::Null;
    success["target_url"] = json!("");
    success["description"] = json!("");
    assert_eq!(
        outcome(&deliver("s-3", success.clone()).await),
        (200, "processed")
    );
    // Redelivered, and the older pending one again with another id.
    let head = server.head().await;
    assert_eq!(outcome(&deliver("s-3", success).await), (200, "duplicate"));
    let late = gitea_status("pending", GITEA_HEAD, "2024-06-11T15:04:00Z");
    assert_eq!(outcome(&deliver("s-4", late).await), (200, "stale"));
    assert_eq!(server.head().await, head, "nothing written");

    let facts = common::pipeline::facts(&server, task.id).await;
    let on_head: Vec<_> = facts
        .ci_statuses
        .iter()
        .filter(|s| s.sha == GITEA_HEAD)
        .collect();
    assert_eq!(on_head.len(), 1, "{on_head:?}");
    assert_eq!(on_head[0].state, pb::CiStatusState::Success as i32);
    assert_eq!(on_head[0].repo, "gitea/webhooks", "one repository identity");
    assert_eq!(facts.head_sha, GITEA_HEAD);
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

async fn plane_server() -> TestServer {
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
    server
}

async fn tasks_of(server: &TestServer, issue: &str) -> Vec<pb::Task> {
    server
        .tasks()
        .list_tasks(pb::ListTasksRequest {
            tracker_issue_id: issue.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
}

fn plane(id: &str, body: &Value) -> Delivery {
    Delivery::plane(id, body.to_string().into_bytes())
}

#[tokio::test]
async fn plane_issue_deliveries_start_one_task_and_ignore_the_rest() {
    let server = plane_server().await;
    let started = plane_issue("updated", "In Progress", "2024-06-11T09:00:00Z");
    assert_eq!(
        outcome(&server.deliver(&plane("p-1", &started)).await),
        (200, "processed")
    );
    let tasks = tasks_of(&server, PLANE_ISSUE).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].work_item_id, "SHOP-98");
    assert_eq!(tasks[0].stage, pb::Stage::Analysis as i32);
    let head = server.head().await;

    // Redelivered with the same id; another work item's project; a state
    // bosun has no meaning for; a deletion; a partial `data`.
    let mut other_project = started.clone();
    other_project["data"]["project"] = json!("5b1e6c2a-0000-4000-8000-00000000ffff");
    other_project["data"]["id"] = json!("0b9e7c55-0000-4000-8000-000000000099");
    let mut other_workspace = other_project.clone();
    other_workspace["workspace_id"] = json!("0c0c0c0c-0000-4000-8000-000000000000");
    other_workspace["data"]["workspace"] = other_workspace["workspace_id"].clone();
    let unknown = plane_issue("updated", "Needs Triage", "2024-06-11T09:30:00Z");
    let deleted = plane_issue("deleted", "", "");
    let mut no_state = started.clone();
    no_state["data"] = json!({"id": PLANE_ISSUE, "project": PLANE_PROJECT, "name": "x"});
    let cases = [
        ("p-1", &started, (200, "duplicate")),
        ("p-2", &other_project, (202, "ignored")),
        ("p-3", &other_workspace, (202, "ignored")),
        ("p-4", &unknown, (202, "ignored")),
        ("p-5", &deleted, (202, "unused")),
    ];
    for (id, body, expected) in cases {
        let answer = server.deliver(&plane(id, body)).await;
        assert_eq!(outcome(&answer), expected, "{id}: {answer:?}");
    }
    let answer = server.deliver(&plane("p-6", &no_state)).await;
    assert_eq!(answer.status, 400, "a clear error: {answer:?}");
    assert!(answer.detail.contains("state"), "{answer:?}");

    assert_eq!(server.head().await, head, "nothing written");
    assert!(
        tasks_of(&server, "0b9e7c55-0000-4000-8000-000000000099")
            .await
            .is_empty()
    );
    let tasks = tasks_of(&server, PLANE_ISSUE).await;
    assert_eq!(tasks.len(), 1, "the deletion leaves the task");
    assert_eq!(tasks[0].stage, pb::Stage::Analysis as i32);
}

#[tokio::test]
async fn plane_verdicts_follow_the_issue_state() {
    let server = plane_server().await;
    let started = plane_issue("created", "In Progress", "2024-06-11T09:00:00Z");
    assert_eq!(
        outcome(&server.deliver(&plane("p-1", &started)).await),
        (200, "processed")
    );
    let task = tasks_of(&server, PLANE_ISSUE).await.remove(0);

    // The state's name in another case still means the same state.
    let approved = plane_issue("updated", "approved", "2024-06-12T14:05:00Z");
    let answer = server.deliver(&plane("p-2", &approved)).await;
    assert_eq!(outcome(&answer), (200, "processed"), "{answer:?}");
    let facts = common::pipeline::facts(&server, task.id).await;
    assert_eq!(facts.verdicts.len(), 1, "{:?}", facts.verdicts);
    let verdict = &facts.verdicts[0];
    assert_eq!(verdict.source, pb::VerdictSource::Tracker as i32);
    assert_eq!(verdict.decision, pb::VerdictDecision::Approved as i32);
    assert_eq!(verdict.author, "jane");

    // A later move to In Progress again does not start a second task.
    let again = plane_issue("updated", "In Progress", "2024-06-12T15:00:00Z");
    server.deliver(&plane("p-3", &again)).await;
    assert_eq!(tasks_of(&server, PLANE_ISSUE).await.len(), 1);
}

#[tokio::test]
async fn an_older_plane_state_change_is_stale() {
    let server = plane_server().await;
    let started = plane_issue("created", "In Progress", "2024-06-11T09:00:00Z");
    server.deliver(&plane("p-1", &started)).await;
    let task = tasks_of(&server, PLANE_ISSUE).await.remove(0);

    // A newer edit of another field: ignored, and it hides nothing older.
    let mut priority = plane_issue("updated", "In Progress", "2024-06-12T12:00:00Z");
    priority["activity"]["field"] = json!("priority");
    let answer = server.deliver(&plane("p-2", &priority)).await;
    assert_eq!(outcome(&answer), (202, "ignored"), "{answer:?}");
    let rejected = plane_issue("updated", "Rejected", "2024-06-12T10:00:00Z");
    let approved = plane_issue("updated", "Approved", "2024-06-12T14:05:00Z");
    let answer = server.deliver(&plane("p-3", &approved)).await;
    assert_eq!(outcome(&answer), (200, "processed"), "{answer:?}");
    // The rejection, made before the approval, arrives after it.
    let head = server.head().await;
    let answer = server.deliver(&plane("p-4", &rejected)).await;
    assert_eq!(outcome(&answer), (200, "stale"), "{answer:?}");
    assert_eq!(server.head().await, head, "nothing written");

    let facts = common::pipeline::facts(&server, task.id).await;
    let decisions: Vec<i32> = facts.verdicts.iter().map(|v| v.decision).collect();
    assert_eq!(decisions, [pb::VerdictDecision::Approved as i32]);
    let gate = facts.current_gate.expect("a gate");
    assert!(
        gate.checks.iter().all(|c| !c.reason.contains("rejected")),
        "{gate:?}"
    );
}
