//! Plane's issue deliveries: a state change starts the task and records
//! the verdict (Plane's API faked on loopback, the one outside edge).

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
