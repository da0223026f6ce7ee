//! ListSessions' filters, requests refused cleanly, and projects.

use super::*;

#[tokio::test]
async fn list_sessions_filters_by_stored_and_derived_fields() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    spawn(&server, "mer").await;
    started(&server, "two").await;
    activity(&server, "two-1", ActivityState::WaitingInput).await;
    let list = |request: pb::ListSessionsRequest| {
        let mut client = server.sessions_client();
        async move {
            let mut ids: Vec<String> = client
                .list_sessions(request)
                .await
                .unwrap()
                .into_inner()
                .sessions
                .into_iter()
                .map(|s| s.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(Default::default()).await, ["mer-1", "mer-2", "two-1"]);
    assert_eq!(
        list(pb::ListSessionsRequest {
            project_id: "mer".into(),
            ..Default::default()
        })
        .await,
        ["mer-1", "mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            state: SessionState::NotStarted.into(),
            ..Default::default()
        })
        .await,
        ["mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            is_alive: Some(true),
            ..Default::default()
        })
        .await,
        ["mer-1", "two-1"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            is_alive: Some(false),
            ..Default::default()
        })
        .await,
        ["mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            display_status: DisplayStatus::NeedsInput.into(),
            ..Default::default()
        })
        .await,
        ["two-1"]
    );
    let page = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.sessions
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["two-1", "mer-2"],
        "newest first"
    );
    let rest = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rest.sessions
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["mer-1"]
    );
    assert!(rest.next_page_token.is_empty());

    // Walking the pages, with or without a display-status filter (applied
    // after reading, a page's worth of rows at a time), gives every
    // session of the single answer once, in order.
    let mut client = server.sessions_client();
    let mut statuses: Vec<i32> = client
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions
        .iter()
        .map(|s| s.display_status)
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    for display_status in std::iter::once(DisplayStatus::Unspecified as i32).chain(statuses) {
        let request = pb::ListSessionsRequest {
            display_status,
            ..Default::default()
        };
        let whole: Vec<String> = client
            .list_sessions(request.clone())
            .await
            .unwrap()
            .into_inner()
            .sessions
            .into_iter()
            .map(|s| s.id)
            .collect();
        for page_size in 1..=3 {
            let (mut walked, mut token) = (Vec::new(), String::new());
            loop {
                let page = client
                    .list_sessions(pb::ListSessionsRequest {
                        page_size,
                        page_token: token,
                        ..request.clone()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(page.sessions.len() <= page_size as usize);
                walked.extend(page.sessions.into_iter().map(|s| s.id));
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            assert_eq!(walked, whole, "{display_status:?}, pages of {page_size}");
        }
    }
}

#[tokio::test]
async fn unknown_ids_bad_enums_and_wrong_states_are_refused_cleanly() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let mut client = server.sessions_client();
    let status = client
        .get_session(pb::GetSessionRequest {
            session_id: "mer-99".into(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "SESSION_NOT_FOUND");
    let status = client
        .kill_session(pb::KillSessionRequest {
            session_id: "nope-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "SESSION_NOT_FOUND");
    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "ghost".into(),
            harness: Harness::Aider.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "PROJECT_NOT_FOUND");

    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: 99,
            role: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["role", "harness"]);
    let status = client
        .report_activity(pb::ReportActivityRequest {
            session_id: "mer-1".into(),
            state: 77,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["state"]);
    let status = client
        .report_runtime_probe(pb::ReportRuntimeProbeRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["runtime", "process"]);

    let session = spawn(&server, "mer").await;
    let status = client
        .report_activity(pb::ReportActivityRequest {
            session_id: session.id.clone(),
            state: ActivityState::Active.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_STARTED");
    complete(&server, &session.id).await;
    let status = client
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: session.id.clone(),
            runtime_handle_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_SPAWNING");
    let status = client
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(Project {
                id: "mer".into(),
                repo_path: "/r".into(),
                ..Project::default()
            }),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "PROJECT_ALREADY_EXISTS");
}

#[tokio::test]
async fn projects_register_update_archive_and_list() {
    let server = TestServer::start().await;
    let mut client = server.sessions_client();
    let status = client
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(Project {
                id: "Bad_Id".into(),
                repo_path: "relative".into(),
                coverage_threshold: 101.0,
                ..Project::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "project.id",
            "project.repo_path",
            "project.coverage_threshold"
        ]
    );
    let project = register(&server, "mer").await;
    assert_eq!(project.display_name, "mer", "defaults to the id");
    register(&server, "alpha").await;

    let updated = client
        .update_project(pb::UpdateProjectRequest {
            project: Some(Project {
                id: "mer".into(),
                coverage_threshold: 80.0,
                display_name: "Merchant".into(),
                ..Project::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["coverage_threshold".into(), "display_name".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.coverage_threshold, updated.display_name.as_str()),
        (80.0, "Merchant")
    );
    assert!(updated.update_time.is_some());

    let archived = client
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "mer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archive_time.is_some());
    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: Harness::Other.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "PROJECT_ARCHIVED");
    let active: Vec<String> = client
        .list_projects(pb::ListProjectsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(active, ["alpha"]);
    let first = client
        .list_projects(pb::ListProjectsRequest {
            include_archived: true,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.projects[0].id, "alpha");
    let second = client
        .list_projects(pb::ListProjectsRequest {
            include_archived: true,
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.projects[0].id, "mer");
    assert!(second.next_page_token.is_empty());
}
