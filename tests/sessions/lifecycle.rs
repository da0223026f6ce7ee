//! A session's life: spawned, started, killed, restored; request_id and
//! concurrent spawns.

use super::*;

#[tokio::test]
async fn story_happy_path_spawn_pr_open_with_ci_passing_then_kill() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let spawned = spawn(&server, "mer").await;
    assert_eq!(spawned.id, "mer-1");
    assert_eq!(
        (spawned.state(), spawned.display_status()),
        (SessionState::NotStarted, DisplayStatus::Spawning)
    );
    assert!(!spawned.is_alive);

    let working = complete(&server, "mer-1").await;
    assert_eq!(
        (working.state(), working.is_alive),
        (SessionState::Working, true)
    );
    assert_eq!(
        (
            working.runtime_handle_id.as_str(),
            working.agent_session_id.as_str()
        ),
        ("tmux:%3", "claude-abc")
    );
    assert!(working.start_time.is_some());

    let checks = vec![
        check("build", SHA1, CheckStatus::Passed, ""),
        check("test", SHA1, CheckStatus::Passed, ""),
    ];
    let with_pr = report(
        &server,
        "mer-1",
        pull_request(
            SHA1,
            PullRequestCiState::Passing,
            ReviewDecision::ReviewRequired,
            checks,
        ),
    )
    .await;
    assert_eq!(with_pr.display_status(), DisplayStatus::ReviewPending);
    let pr = with_pr.pull_request.unwrap();
    assert_eq!(
        (pr.number, pr.checks.len()),
        (7, 2),
        "PR row and its checks written together"
    );

    let killed = server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!killed.already_terminal);
    let session = killed.session.unwrap();
    assert_eq!(
        (session.state(), session.termination_reason()),
        (SessionState::Terminated, TerminationReason::ManuallyKilled)
    );
    assert_eq!(
        (session.is_alive, session.display_status()),
        (false, DisplayStatus::Killed)
    );
    assert!(session.end_time.is_some());

    let types = event_types(&server, "mer-1").await;
    for expected in [
        "session.created",
        "session.updated",
        "pull_request.created",
        "check.recorded",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} in {types:?}"
        );
    }
    assert_eq!(
        types.last().map(String::as_str),
        Some("session.updated"),
        "the kill is the last change"
    );

    // Killing again changes nothing and says so.
    let again = server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_terminal);
    assert_eq!(event_types(&server, "mer-1").await, types, "no new event");
}

#[tokio::test]
async fn story_restore_after_a_full_stop_and_start_keeps_the_metadata() {
    let mut server = TestServer::start().await;
    started(&server, "mer").await;
    server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            reason: TerminationReason::RuntimeLost.into(),
            detail: "host rebooted".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    server.restart().await;

    let restored = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.state(), SessionState::NotStarted);
    assert_eq!(
        restored.termination_reason(),
        TerminationReason::Unspecified
    );
    assert!(
        restored.termination_detail.is_empty()
            && restored.end_time.is_none()
            && restored.restore_time.is_some()
    );
    for (field, value, expected) in [
        ("agent_session_id", &restored.agent_session_id, "claude-abc"),
        ("workspace_path", &restored.workspace_path, "/work/mer-1"),
        ("branch", &restored.branch, "feature/ORCH-1"),
        ("prompt", &restored.prompt, "fix the flaky test"),
        ("runtime_handle_id", &restored.runtime_handle_id, "tmux:%3"),
    ] {
        assert_eq!(value, expected, "{field} survives the restart");
    }
    assert_eq!(
        complete(&server, "mer-1").await.state(),
        SessionState::Working,
        "a runner relaunches it"
    );

    // Restore only leaves terminal states.
    let status = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_TERMINAL");
}

#[tokio::test]
async fn restore_needs_an_agent_session_id_or_a_prompt() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let bare = server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: Harness::Codex.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    server
        .sessions_client()
        .fail_spawn(pb::FailSpawnRequest {
            session_id: bare.id.clone(),
            error: "no tmux".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: bare.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_RESTORABLE");
    let failed = get(&server, &bare.id).await;
    assert_eq!(
        (
            failed.termination_reason(),
            failed.termination_detail.as_str()
        ),
        (TerminationReason::ErrorInProcess, "no tmux")
    );
    assert_eq!(failed.display_status(), DisplayStatus::Errored);
}

#[tokio::test]
async fn concurrent_spawns_get_distinct_numbers() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    register(&server, "two").await;
    let spawns = (0..20).map(|i| spawn(&server, if i % 4 == 0 { "two" } else { "mer" }));
    let mut ids: Vec<String> = join_all(spawns).await.into_iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let mut mer: Vec<u32> = ids
        .iter()
        .filter_map(|id| id.strip_prefix("mer-"))
        .map(|n| n.parse().unwrap())
        .collect();
    mer.sort();
    assert_eq!(
        mer,
        (1..=15).collect::<Vec<_>>(),
        "numbers count up per project"
    );
}

#[tokio::test]
async fn a_repeated_request_id_spawns_once() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let request = pb::SpawnSessionRequest {
        request_id: "runner-1:spawn".into(),
        project_id: "mer".into(),
        harness: Harness::ClaudeCode.into(),
        ..Default::default()
    };
    let spawned = join_all((0..5).map(|_| {
        let mut client = server.sessions_client();
        let request = request.clone();
        async move { client.spawn_session(request).await.unwrap().into_inner() }
    }))
    .await;
    assert!(
        spawned.iter().all(|s| s.id == "mer-1"),
        "one session for one request id"
    );
    let listed = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 1);
}
