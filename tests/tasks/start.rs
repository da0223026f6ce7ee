//! StartTask: one task and one analyst session per issue, however many
//! calls race, bad input refused; SpawnSession's check of the task it names.

use super::*;

#[tokio::test]
async fn start_task_creates_the_task_in_analysis_with_an_analyst_session_once() {
    let server = server().await;
    let started = server.start_task("shop", "issue-1", "SHOP-1").await;
    assert!(started.created);
    let task = started.task.unwrap();
    assert_eq!(stage(&task), Stage::Analysis);
    assert_eq!(task.stage_role, Role::Analyst as i32);
    assert_eq!(task.repo, REPO, "the repo comes from the origin_url");
    assert_eq!(task.branch, "feature/SHOP-1");
    assert_eq!(task.stage_session_id, started.session_id);
    assert!(task.stage_session_active);
    assert!(!task.held);
    let analyst = session(&server, &started.session_id).await;
    assert_eq!(analyst.task_id, task.id);
    assert_eq!(analyst.role, Role::Analyst as i32);
    assert_eq!(analyst.state, pb::SessionState::NotStarted as i32);
    assert_eq!(analyst.branch, "feature/SHOP-1");

    let again = server.start_task("shop", "issue-1", "OTHER-9").await;
    assert!(!again.created);
    assert_eq!(again.task.unwrap().id, task.id);
    assert_eq!(again.session_id, started.session_id);
    assert_eq!(task_events(&server, task.id).await, ["task.created"]);
    let created = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                task_id: task.id,
                event_type_prefixes: vec!["task.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .remove(0);
    assert_eq!(created.session_id, started.session_id);
    match created.payload {
        Some(pb::event::Payload::Task(payload)) => assert_eq!(payload, task),
        other => panic!("a task payload, got {other:?}"),
    }
}

#[tokio::test]
async fn eight_simultaneous_start_task_calls_create_exactly_one_task_and_one_session() {
    let server = server().await;
    let calls = (0..8).map(|_| server.start_task("shop", "issue-race", "SHOP-99"));
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let ids: std::collections::HashSet<i64> = results
        .iter()
        .map(|r| r.task.as_ref().unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1, "every caller gets the one task");
    let sessions: std::collections::HashSet<&str> =
        results.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(sessions.len(), 1);
    let task_id = *ids.iter().next().unwrap();
    let listed = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            task_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1, "one first session");
}

#[tokio::test]
async fn start_task_refuses_bad_input_and_changes_nothing() {
    let server = server().await;
    server
        .project("local", |p| {
            p.origin_url = String::new();
            p.repo_path = "/srv/local".into();
        })
        .await;
    let mut tasks = server.tasks();
    let status = tasks
        .start_task(pb::StartTaskRequest::default())
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        bad_fields(&status),
        ["project_id", "tracker_issue_id", "work_item_id"]
    );
    let request = |project: &str, issue: &str| pb::StartTaskRequest {
        project_id: project.into(),
        tracker_issue_id: issue.into(),
        work_item_id: "W-1".into(),
        ..Default::default()
    };
    let status = tasks.start_task(request("nope", "i-1")).await.unwrap_err();
    assert_error(&status, Code::NotFound, "PROJECT_NOT_FOUND");
    let status = tasks.start_task(request("local", "i-2")).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["repo"]);

    server.start_task("shop", "i-3", "W-1").await;
    let status = tasks.start_task(request("shop", "i-4")).await.unwrap_err();
    assert_error(&status, Code::AlreadyExists, "BRANCH_IN_USE");
    assert_eq!(
        error_metadata(&status, "branch").as_deref(),
        Some("feature/W-1")
    );

    server
        .sessions_client()
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "shop".into(),
        })
        .await
        .unwrap();
    let status = tasks
        .start_task(pb::StartTaskRequest {
            work_item_id: "W-2".into(),
            ..request("shop", "i-5")
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "PROJECT_ARCHIVED");
    let listed = tasks
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(listed.len(), 1, "only the task that was valid");
}

#[tokio::test]
async fn spawn_session_checks_the_task_it_names() {
    let server = server().await;
    server
        .project("other", |p| {
            p.origin_url = "https://github.com/acme/other".into()
        })
        .await;
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let spawn = |project: &str, task_id: i64| pb::SpawnSessionRequest {
        project_id: project.into(),
        task_id,
        harness: pb::Harness::ClaudeCode.into(),
        ..Default::default()
    };
    let mut sessions = server.sessions_client();
    let status = sessions
        .spawn_session(spawn("shop", 999))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "TASK_NOT_FOUND");
    let status = sessions
        .spawn_session(spawn("other", task.id))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TASK_PROJECT_MISMATCH");
    let spawned = sessions
        .spawn_session(spawn("shop", task.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spawned.task_id, task.id);
}
