//! Usage on Sessions: a session shows the usage of its transcript.

use super::*;

#[tokio::test]
async fn a_session_shows_the_usage_of_its_transcript() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(pb::Project {
                id: "orch".into(),
                origin_url: "https://github.com/acme/orch.git".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let spawn = |agent_session_id: &'static str| {
        let mut sessions = sessions.clone();
        async move {
            let session = sessions
                .spawn_session(pb::SpawnSessionRequest {
                    project_id: "orch".into(),
                    harness: pb::Harness::ClaudeCode.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            sessions
                .complete_spawn(pb::CompleteSpawnRequest {
                    session_id: session.id,
                    runtime_handle_id: "tmux:%1".into(),
                    agent_session_id: agent_session_id.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let with_transcript = spawn("sess-a").await;
    let without = spawn("").await;
    assert_eq!(with_transcript.usage, None, "not counted yet");

    run(&server, "usage").await;
    let get = |id: String| {
        let mut sessions = sessions.clone();
        async move {
            sessions
                .get_session(pb::GetSessionRequest { session_id: id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let counted = get(with_transcript.id.clone()).await;
    assert_eq!(counted.usage, Some(tokens(125, 262, 1000, 14000, 3)));
    assert_eq!(get(without.id.clone()).await.usage, None);
    let listed = (server.sessions_client())
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let listed = listed.iter().find(|s| s.id == with_transcript.id).unwrap();
    assert_eq!(listed.usage, counted.usage);
    // Write replies carry it too: a spawn completed after the count (the call
    // that sets the agent session), and an activity report.
    let late = spawn("sess-a").await;
    assert_eq!(late.usage, counted.usage, "CompleteSpawn's reply");
    let reported = (server.sessions_client())
        .report_activity(pb::ReportActivityRequest {
            session_id: with_transcript.id.clone(),
            state: pb::ActivityState::Active.into(),
            source: pb::ActivitySource::Hook.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reported.usage, counted.usage, "ReportActivity's reply");

    let events = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                session_id: with_transcript.id.clone(),
                event_type_prefixes: vec!["transcript_usage.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        events.len(),
        1,
        "the usage change is an event about the session"
    );
    assert_eq!(events[0].entity_id, SESS_A);
}
