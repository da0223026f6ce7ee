//! What stays: a transcript deleted from the folder is forgotten by every
//! processor, each pass is a row and events, and state and runs survive a
//! restart (an interrupted pass ends failed).

use super::*;

#[tokio::test]
async fn a_transcript_deleted_from_the_folder_is_forgotten_by_every_processor() {
    let transcripts = Transcripts::new();
    let failing = |session: &str| {
        let mut lines = session_lines(session);
        lines.push(tool_use(session, "msg_2", "toolu_1", "Bash"));
        lines.push(tool_result(session, "toolu_1", true));
        lines
    };
    transcripts.write_old("alice/s1.jsonl", &failing("s1"), HOUR);
    transcripts.write_old("bob/s2.jsonl", &failing("s2"), HOUR);
    let server = start(&transcripts, |_| {}).await;
    let both = ["alice/s1.jsonl", "bob/s2.jsonl"];
    let pass = || async {
        (
            run(&server, "usage").await,
            run(&server, "tool_errors").await,
        )
    };
    pass().await;
    assert_eq!(remembered(&server, "usage").await, both);
    assert_eq!(remembered(&server, "tool_errors").await, both);

    // Out of sight is not gone: the whole folder away (not mounted yet),
    // then one owner's folder out of reach, forget nothing.
    let away = transcripts.dir().with_extension("away");
    std::fs::rename(transcripts.dir(), &away).unwrap();
    let (usage, tool_errors) = pass().await;
    assert_eq!((counts(&usage), counts(&tool_errors)), ([0; 7], [0; 7]));
    assert_eq!((usage.forgotten, tool_errors.forgotten), (0, 0));
    std::fs::rename(&away, transcripts.dir()).unwrap();
    let bob = transcripts.dir().join("bob");
    std::fs::rename(&bob, &away).unwrap();
    std::os::unix::fs::symlink("/nonexistent/bob", &bob).unwrap();
    let (usage, tool_errors) = pass().await;
    assert_eq!((usage.forgotten, tool_errors.forgotten), (0, 0));
    std::fs::remove_file(&bob).unwrap();
    std::fs::rename(&away, &bob).unwrap();
    for processor in ["usage", "tool_errors"] {
        assert_eq!(remembered(&server, processor).await, both, "{processor}");
    }

    transcripts.remove("alice/s1.jsonl");
    let (usage, tool_errors) = pass().await;
    assert_eq!(counts(&usage), [1, 0, 1, 0, 0, 0, 0], "bob's is unchanged");
    assert_eq!(counts(&tool_errors), counts(&usage));
    assert_eq!((usage.forgotten, tool_errors.forgotten), (1, 1), "alice's");
    for processor in ["usage", "tool_errors"] {
        assert_eq!(remembered(&server, processor).await, ["bob/s2.jsonl"]);
    }
    let usage = server
        .processors_client()
        .get_usage(pb::GetUsageRequest::default())
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = usage
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(keys, ["bob/s2.jsonl"]);
    assert_eq!(
        usage.total.unwrap().input_tokens,
        11,
        "bob's 10 + 1 (the tool call); alice's are gone"
    );
    let failures = server
        .processors_client()
        .get_tool_errors(pb::GetToolErrorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failures.errors, 1, "alice's failure is gone");

    // Each deletion is an event carrying the row as it was.
    let events = events_of(
        &server,
        &[
            "processor_state.forgotten",
            "transcript_usage.deleted",
            "transcript_tool_errors.deleted",
        ],
    )
    .await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.entity_id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("transcript_usage.deleted", "alice/s1.jsonl"),
            ("processor_state.forgotten", "usage/alice/s1.jsonl"),
            ("transcript_tool_errors.deleted", "alice/s1.jsonl"),
            ("processor_state.forgotten", "tool_errors/alice/s1.jsonl"),
        ]
    );
    let Some(Payload::TranscriptUsage(gone)) = &events[0].payload else {
        panic!("a typed usage payload: {:?}", events[0]);
    };
    assert_eq!(gone.usage.unwrap().input_tokens, 11);
    let Some(Payload::TranscriptToolErrors(gone)) = &events[2].payload else {
        panic!("a typed tool errors payload: {:?}", events[2]);
    };
    assert_eq!(gone.errors, 1);

    // Written again, it is read again, as a new transcript.
    transcripts.write_old("alice/s1.jsonl", &failing("s1"), HOUR);
    let (usage, _) = pass().await;
    assert_eq!(
        (counts(&usage), usage.forgotten),
        ([2, 1, 1, 0, 0, 0, 0], 0)
    );
    assert_eq!(remembered(&server, "usage").await, both);
}

#[tokio::test]
async fn each_pass_is_a_row_and_events() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let server = start(&transcripts, |_| {}).await;
    let done = run(&server, "usage").await;

    let events = events_of(&server, &["processor_"]).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "processor_run.started",
            "processor_state.created",
            "processor_run.succeeded"
        ]
    );
    let Some(Payload::ProcessorRun(started)) = &events[0].payload else {
        panic!("a typed run payload: {:?}", events[0]);
    };
    assert_eq!(
        (started.id, started.state()),
        (done.id, ProcessorRunState::Running)
    );
    let Some(Payload::ProcessorRun(ended)) = &events[2].payload else {
        panic!("a typed run payload");
    };
    assert_eq!(ended, &done, "the event carries the run as returned");
    let Some(Payload::ProcessorState(stored)) = &events[1].payload else {
        panic!("a typed state payload");
    };
    assert_eq!(
        Some(stored),
        state(&server, "usage", "alice/s1.jsonl").await.as_ref()
    );
    assert_eq!(events[1].entity_id, "usage/alice/s1.jsonl");
}

#[tokio::test]
async fn state_and_runs_survive_a_restart_and_interrupted_passes_end_failed() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let mut server = start(&transcripts, |_| {}).await;
    let first = run(&server, "usage").await;
    {
        let mut db = server.direct().await;
        query(
            "INSERT INTO processor_runs (processor, run_trigger, state, start_time) \
             VALUES ('usage', 'scheduled', 'running', 1)",
        )
        .execute(&mut db.conn())
        .await
        .unwrap();
        db.close().await;
    }
    server.restart().await;
    let usage = server
        .processors_client()
        .list_processors(pb::ListProcessorsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .processors
        .into_iter()
        .find(|p| p.name == "usage")
        .unwrap();
    let last = usage.last_run.unwrap();
    assert_eq!(last.id, first.id + 1, "the interrupted pass ended");
    assert_eq!(last.state(), ProcessorRunState::Failed);
    assert_eq!(
        last.error,
        "interrupted: the bosun running the pass stopped, or lost its lease, before the pass ended"
    );
    assert_eq!(run(&server, "usage").await.skipped_unchanged, 1);
}
