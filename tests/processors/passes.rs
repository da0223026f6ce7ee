//! What a pass does with each transcript: an empty or missing folder,
//! a transcript processed once, skipped unread while unchanged, read again
//! when it grows or is touched, and two processors that keep apart.

use super::*;

#[tokio::test]
async fn a_missing_transcripts_dir_is_an_empty_pass() {
    let transcripts = Transcripts::new();
    let server = TestServer::start_with(|config| {
        config.processors.transcripts_dir = transcripts.dir().join("not-there");
    })
    .await;
    let run = run(&server, "usage").await;
    assert_eq!(counts(&run), [0; 7]);
    assert!(run.end_time.is_some() && !run.capped && run.error.is_empty());
}

#[tokio::test]
async fn a_transcript_with_nothing_to_count_is_processed_once() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/quiet.jsonl", &[user("quiet", "hello")], HOUR);
    let server = start(&transcripts, |_| {}).await;
    let first = run(&server, "usage").await;
    assert_eq!(
        (first.processed, first.items),
        (1, 0),
        "zero items is a success"
    );
    let stored = state(&server, "usage", "alice/quiet.jsonl").await.unwrap();
    assert!(stored.processed_time.is_some());
    assert_eq!(stored.items, 0);
    assert_eq!(run(&server, "usage").await.skipped_unchanged, 1);
}

#[tokio::test]
async fn processed_then_skipped_unread_then_processed_again_when_it_grows() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let server = start(&transcripts, |_| {}).await;

    let first = run(&server, "usage").await;
    assert_eq!(counts(&first), [1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(first.items, 1, "one assistant message");
    let stored = state(&server, "usage", "alice/s1.jsonl").await.unwrap();
    assert_eq!((stored.owner.as_str(), stored.items), ("alice", 1));
    assert_eq!(stored.content_hash.len(), 64);
    let processed_time = micros(&stored.processed_time);
    assert!(
        (micros(&first.start_time)..=micros(&first.end_time)).contains(&processed_time),
        "the read time, taken during the pass"
    );

    let second = run(&server, "usage").await;
    assert_eq!(counts(&second), [1, 0, 1, 0, 0, 0, 0], "not read again");
    assert_eq!(
        state(&server, "usage", "alice/s1.jsonl").await.unwrap(),
        stored
    );

    transcripts.append(
        "alice/s1.jsonl",
        &[assistant("s1", "msg_2", "claude-sonnet-4-5", (1, 2, 3, 4))],
    );
    let third = run(&server, "usage").await;
    assert_eq!(
        counts(&third),
        [1, 1, 0, 0, 0, 0, 0],
        "a grown file is read"
    );
    assert_eq!(third.items, 2);
    let grown = state(&server, "usage", "alice/s1.jsonl").await.unwrap();
    assert_ne!(grown.content_hash, stored.content_hash);
    assert!(micros(&grown.processed_time) > processed_time);
}

#[tokio::test]
async fn a_touched_but_unchanged_transcript_is_hashed_and_skipped() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let server = start(&transcripts, |_| {}).await;
    run(&server, "usage").await;
    let before = state(&server, "usage", "alice/s1.jsonl").await.unwrap();

    transcripts.set_mtime("alice/s1.jsonl", SystemTime::now() + Duration::from_secs(1));
    let touched = run(&server, "usage").await;
    assert_eq!(counts(&touched), [1, 0, 0, 1, 0, 0, 0], "read, same hash");
    let after = state(&server, "usage", "alice/s1.jsonl").await.unwrap();
    assert_eq!(
        (&after.content_hash, after.items),
        (&before.content_hash, before.items)
    );
    assert!(
        micros(&after.processed_time) > micros(&before.processed_time),
        "the processed time moves to the new read, so the next passes need not read it"
    );
}

#[tokio::test]
async fn two_processors_on_one_transcript_are_independent() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let server = start(&transcripts, |_| {}).await;

    assert_eq!(run(&server, "usage").await.processed, 1);
    assert!(
        state(&server, "tool_errors", "alice/s1.jsonl")
            .await
            .is_none(),
        "what usage did is not tool_errors' state"
    );
    assert_eq!(run(&server, "tool_errors").await.processed, 1);
    assert_eq!(run(&server, "usage").await.skipped_unchanged, 1);

    let forgotten = server
        .processors_client()
        .reset_processor_state(ResetProcessorStateRequest {
            processor: "usage".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .forgotten;
    assert_eq!(forgotten, 1);
    assert!(state(&server, "usage", "alice/s1.jsonl").await.is_none());
    assert!(
        state(&server, "tool_errors", "alice/s1.jsonl")
            .await
            .is_some()
    );
    assert_eq!(
        run(&server, "usage").await.processed,
        1,
        "usage starts over"
    );
    assert_eq!(run(&server, "tool_errors").await.skipped_unchanged, 1);
}
