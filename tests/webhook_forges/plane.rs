//! Plane: issue deliveries start one task and ignore the rest, verdicts
//! follow the issue's state, and an older state change is stale.

use super::*;

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
