//! Failures: a processor that fails leaves no state and succeeds on
//! retry, a result that cannot be stored fails alone, and a transcript
//! that keeps failing is quarantined until reset.

use super::*;

#[tokio::test]
async fn a_failing_processor_leaves_no_state_and_succeeds_on_retry() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &session_lines("s1"), HOUR);
    let (server, flaky) = start_flaky(&transcripts).await;

    flaky.fail.store(true, Ordering::SeqCst);
    let failed = run(&server, "flaky").await;
    assert_eq!(counts(&failed), [1, 0, 0, 0, 0, 1, 0]);
    assert_eq!(failed.error_details.len(), 1);
    assert_eq!(failed.error_details[0].transcript, "alice/s1.jsonl");
    assert_eq!(failed.error_details[0].message, "told to fail");
    let remembered = state(&server, "flaky", "alice/s1.jsonl").await.unwrap();
    assert_eq!(remembered.processed_time, None, "not marked processed");
    assert_eq!(remembered.content_hash, "");
    assert_eq!(remembered.consecutive_failures, 1);
    assert_eq!(remembered.last_error, "told to fail");
    assert!(remembered.last_error_time.is_some() && !remembered.quarantined);
    assert_eq!(
        run(&server, "usage").await.processed,
        1,
        "usage is unaffected"
    );

    flaky.fail.store(false, Ordering::SeqCst);
    let retried = run(&server, "flaky").await;
    assert_eq!(
        counts(&retried),
        [1, 1, 0, 0, 0, 0, 0],
        "retried on the next pass"
    );
    assert_eq!(retried.items, 2);
    let done = state(&server, "flaky", "alice/s1.jsonl").await.unwrap();
    assert!(done.processed_time.is_some());
    assert_eq!(
        (done.consecutive_failures, done.last_error.as_str()),
        (0, "")
    );
    assert_eq!(done.last_error_time, None);

    // A failure after a success keeps what the success stored.
    transcripts.append("alice/s1.jsonl", &[user("s1", "and the docs")]);
    flaky.panic.store(true, Ordering::SeqCst);
    let panicked = run(&server, "flaky").await;
    assert_eq!(panicked.errors, 1);
    assert_eq!(panicked.error_details[0].message, "the processor panicked");
    let kept = state(&server, "flaky", "alice/s1.jsonl").await.unwrap();
    assert_eq!(
        (&kept.processed_time, &kept.content_hash, kept.items),
        (&done.processed_time, &done.content_hash, done.items)
    );
    assert_eq!(kept.consecutive_failures, 1);
    assert_eq!(flaky.seen().len(), 3);
}

/// A pass stores its transcripts a batch at a time; a result the database
/// refuses rolls its batch back, the batch is stored again one transcript at
/// a time, and only that transcript fails (to be read again next pass).
#[tokio::test]
async fn a_result_that_cannot_be_stored_fails_alone_and_is_read_again() {
    let transcripts = Transcripts::new();
    let keys = ["alice/s1.jsonl", "alice/unstorable.jsonl", "bob/s2.jsonl"];
    for key in keys {
        transcripts.write_old(key, &session_lines("s1"), HOUR);
    }
    let (server, flaky) = start_flaky(&transcripts).await;

    let first = run(&server, "flaky").await;
    assert_eq!(counts(&first), [3, 2, 0, 0, 0, 1, 0]);
    assert_eq!(first.error_details.len(), 1);
    assert_eq!(first.error_details[0].transcript, "alice/unstorable.jsonl");
    assert_eq!(
        first.error_details[0].message,
        "storing the result failed; it will be retried"
    );
    for key in [keys[0], keys[2]] {
        let stored = state(&server, "flaky", key).await.expect("stored");
        assert!(stored.processed_time.is_some(), "{key}");
        assert_eq!(stored.items, 2);
    }
    assert_eq!(state(&server, "flaky", keys[1]).await, None, "nothing kept");

    let second = run(&server, "flaky").await;
    assert_eq!(
        counts(&second),
        [3, 0, 2, 0, 0, 1, 0],
        "only it is read again"
    );
    let seen = flaky.seen();
    assert_eq!(seen.iter().filter(|key| *key == keys[1]).count(), 2);
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn quarantine_after_the_failure_limit_then_reset() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/ok.jsonl", &session_lines("ok"), HOUR);
    transcripts.symlink("alice/gone.jsonl", "elsewhere/gone.jsonl");
    let server = start(&transcripts, |config| {
        config.processors.usage.quarantine_after_failures = 3;
    })
    .await;

    for attempt in 1..=2 {
        let failing = run(&server, "usage").await;
        assert_eq!(failing.errors, 1, "attempt {attempt}");
        if attempt == 1 {
            assert_eq!(failing.processed, 1, "the failure did not stop the pass");
        }
        assert!(!failing.error_details[0].quarantined);
        let message = &failing.error_details[0].message;
        assert!(
            message.starts_with("cannot read the transcript:") && !message.contains("elsewhere"),
            "no server paths: {message}"
        );
    }
    let third = run(&server, "usage").await;
    assert_eq!((third.errors, third.quarantined), (1, 1));
    assert!(third.error_details[0].quarantined);
    let held = state(&server, "usage", "alice/gone.jsonl").await.unwrap();
    assert!(held.quarantined && held.quarantine_time.is_some());
    assert_eq!(held.consecutive_failures, 3);
    assert!(held.last_error.starts_with("cannot read the transcript:"));

    // Quarantined transcripts are skipped, even once they could be read.
    transcripts.write_old("elsewhere/gone.jsonl", &session_lines("gone"), HOUR);
    let skipping = run(&server, "usage").await;
    assert_eq!(
        counts(&skipping),
        [3, 1, 1, 0, 1, 0, 0],
        "the link's target is a transcript of its own"
    );
    let listed = server
        .processors_client()
        .list_processors(pb::ListProcessorsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .processors;
    let usage = listed.iter().find(|p| p.name == "usage").unwrap();
    assert_eq!(usage.quarantined, 1);
    let quarantined = states(
        &server,
        ListProcessorStateRequest {
            quarantined_only: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].transcript, "alice/gone.jsonl");

    let reset = server
        .processors_client()
        .reset_processor_state(ResetProcessorStateRequest {
            processor: "usage".into(),
            transcripts: vec!["alice/gone.jsonl".into(), "alice/never-seen.jsonl".into()],
            quarantined_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.forgotten, 1, "keys with no state are ignored");
    let after = run(&server, "usage").await;
    assert_eq!(counts(&after), [3, 1, 2, 0, 0, 0, 0]);
    assert!(
        state(&server, "usage", "alice/ok.jsonl").await.is_some(),
        "quarantined_only spared the others"
    );
}
