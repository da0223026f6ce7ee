//! `tool_errors`: counted per tool, and each new burst is one lesson.

use super::*;

#[tokio::test]
async fn tool_errors_are_counted_per_tool_and_each_new_burst_is_one_lesson() {
    const KEY: &str = "alice/sess-t.jsonl";
    let transcripts = Transcripts::new();
    let s = "sess-t";
    transcripts.write_old(
        KEY,
        &[
            tool_use(s, "m1", "t1", "Bash"),
            tool_result(s, "t1", true),
            tool_use(s, "m2", "t2", "Bash"),
            tool_result(s, "t2", true),
            tool_use(s, "m3", "t3", "Edit"),
            tool_result(s, "t3", true),
            tool_use(s, "m4", "t4", "Read"),
            tool_result(s, "t4", false),
            tool_use(s, "m5", "t5", "Bash"),
            tool_result(s, "t5", true),
        ],
        HOUR,
    );
    transcripts.write_old(
        "bob/unknown-session.jsonl",
        &[
            tool_result("nobody", "x1", true),
            tool_result("nobody", "x2", true),
            tool_result("nobody", "x3", true),
        ],
        HOUR,
    );
    let server = start(&transcripts, |config| {
        config.processors.tool_error_burst_threshold = 3;
        config.lessons.dedup_window = Duration::ZERO;
    })
    .await;
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
    let session = sessions
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "orch".into(),
            harness: pb::Harness::ClaudeCode.into(),
            issue_id: "ORCH-7".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    sessions
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: session.id.clone(),
            runtime_handle_id: "tmux:%1".into(),
            agent_session_id: s.into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let lessons = || async {
        let mut lessons = server
            .lessons()
            .list_lessons(ListLessonsRequest {
                lesson_type: "tool_error_burst".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lessons;
        lessons.reverse();
        lessons
    };
    let pass = run(&server, "tool_errors").await;
    assert_eq!((pass.processed, pass.items), (2, 7));
    let recorded = lessons().await;
    assert_eq!(recorded.len(), 2, "one burst per transcript so far");
    let ours = recorded
        .iter()
        .find(|l| l.session_id == session.id)
        .expect("the session's lesson");
    assert_eq!(ours.source(), pb::LessonSource::Auto);
    assert_eq!(ours.work_item_id, "ORCH-7");
    assert!(
        ours.detail.contains(KEY) && ours.detail.contains("Bash 3, Edit 1"),
        "{}",
        ours.detail
    );
    let stranger = recorded
        .iter()
        .find(|l| l.session_id.is_empty())
        .expect("no session matches");
    assert!(stranger.detail.contains("unknown 3"), "{}", stranger.detail);

    let state = |key: &'static str| {
        let mut client = server.processors_client();
        async move {
            client
                .list_processor_state(ListProcessorStateRequest {
                    processor: "tool_errors".into(),
                    transcript: key.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .states
                .remove(0)
        }
    };
    assert_eq!(state(KEY).await.items, 4);

    // Two failures in a row: no new burst, no new lesson.
    transcripts.append(
        KEY,
        &[tool_use(s, "m6", "t6", "Bash"), tool_result(s, "t6", true)],
    );
    assert_eq!(run(&server, "tool_errors").await.processed, 1);
    assert_eq!(state(KEY).await.items, 5);
    assert_eq!(lessons().await.len(), 2);

    // A third: a second burst, one more lesson.
    transcripts.append(
        KEY,
        &[tool_use(s, "m7", "t7", "Grep"), tool_result(s, "t7", true)],
    );
    run(&server, "tool_errors").await;
    assert_eq!(lessons().await.len(), 3);

    // Processing the same transcript again records no burst twice.
    server
        .processors_client()
        .reset_processor_state(pb::ResetProcessorStateRequest {
            processor: "tool_errors".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(run(&server, "tool_errors").await.processed, 2);
    assert_eq!(lessons().await.len(), 3);
}
