//! The scheduler and RunProcessor: a second run is ABORTED and a pass
//! outlives its caller, an append during a pass is seen by the next,
//! processors run in parallel on their cadence and never twice at once, and
//! a failing pass still advances the schedule.

use super::*;

#[tokio::test]
async fn a_second_run_is_aborted_and_a_pass_outlives_its_caller() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let (blocker, mut handle) = Blocking::new("blocker");
    let dir = transcripts.path();
    let server = TestServer::start_with_processors(
        move |config| {
            config.processors.transcripts_dir = dir;
            config.replica_name = Some("replica-a".into());
        },
        vec![registration(blocker, settings(HOUR))],
    )
    .await;
    let mut events = RunEvents::watch(&server).await;

    let mut client = server.processors_client();
    let caller = tokio::spawn(async move {
        client
            .run_processor(RunProcessorRequest {
                name: "blocker".into(),
            })
            .await
    });
    handle.wait_entered().await;

    let second = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "blocker".into(),
        })
        .await
        .unwrap_err();
    assert_error(&second, Code::Aborted, "PROCESSOR_RUNNING");
    assert_eq!(
        error_metadata(&second, "processor").as_deref(),
        Some("blocker")
    );
    let reset = server
        .processors_client()
        .reset_processor_state(ResetProcessorStateRequest {
            processor: "blocker".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&reset, Code::Aborted, "PROCESSOR_RUNNING");
    assert!(processor(&server, "blocker").await.running);
    let usage = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "usage".into(),
        })
        .await
        .expect("another processor runs meanwhile")
        .into_inner();
    assert_eq!(usage.processed, 1);
    assert_eq!(usage.replica, "replica-a", "the replica that ran it");

    caller.abort();
    handle.release();
    events
        .until(|seen| count(seen, "blocker", "processor_run.succeeded") == 1)
        .await;
    let started = events.of("blocker", "processor_run.started")[0];
    assert_eq!(started.replica, "replica-a");
    let ended = events.of("blocker", "processor_run.succeeded")[0].clone();
    assert_eq!(
        (ended.processed, ended.trigger(), ended.replica.as_str()),
        (1, ProcessorRunTrigger::Manual, "replica-a")
    );
    let listed = processor(&server, "blocker").await;
    assert!(!listed.running);
    assert_eq!(listed.last_run, Some(ended));
}

#[tokio::test]
async fn an_append_made_during_processing_is_seen_by_the_next_pass() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let (blocker, mut handle) = Blocking::new("blocker");
    let dir = transcripts.path();
    let server = TestServer::start_with_processors(
        move |config| config.processors.transcripts_dir = dir,
        vec![registration(blocker, settings(HOUR))],
    )
    .await;
    let run = |server: &TestServer| {
        let mut client = server.processors_client();
        tokio::spawn(async move {
            client
                .run_processor(RunProcessorRequest {
                    name: "blocker".into(),
                })
                .await
                .unwrap()
                .into_inner()
        })
    };

    let first = run(&server);
    handle.wait_entered().await;
    transcripts.append("alice/s1.jsonl", &[user("s1", "one more thing")]);
    // Processing goes on well past the append (beyond the mtime margin), so
    // a processed time taken after processing would hide the append.
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.release();
    assert_eq!(first.await.unwrap().processed, 1);

    // The processed time is the read time, taken before the append: the
    // next pass reads the transcript again.
    let second = run(&server);
    assert_eq!(handle.wait_entered().await, "alice/s1.jsonl");
    handle.release();
    let second = second.await.unwrap();
    assert_eq!((second.processed, second.skipped_unchanged), (1, 0));
}

#[tokio::test]
async fn processors_run_in_parallel_on_their_cadence_and_never_twice_at_once() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let (blocker, mut handle) = Blocking::new("blocker");
    let dir = transcripts.path();
    let server = TestServer::start_with_processors(
        move |config| {
            config.processors.transcripts_dir = dir;
            config.processors.usage.cadence = CADENCE;
            config.processors.tool_errors.enabled = false;
        },
        vec![registration(blocker, settings(CADENCE))],
    )
    .await;
    let mut events = RunEvents::watch(&server).await;

    // The blocker's first scheduled pass holds it; usage goes on meanwhile.
    handle.wait_entered().await;
    events
        .until(|seen| count(seen, "usage", "processor_run.succeeded") >= 3)
        .await;
    assert_eq!(
        count(&events.seen, "blocker", "processor_run.started"),
        1,
        "several cadences went by, but the blocker is still running"
    );
    let usage = events.of("usage", "processor_run.started");
    for run in &usage {
        assert_eq!(run.trigger(), ProcessorRunTrigger::Scheduled);
    }
    for pair in usage.windows(2) {
        let gap = micros(&pair[1].start_time) - micros(&pair[0].start_time);
        assert!(gap >= CADENCE.as_micros() as i64, "passes {gap} us apart");
    }
    assert!(processor(&server, "blocker").await.running);

    handle.release();
    events
        .until(|seen| count(seen, "blocker", "processor_run.succeeded") == 1)
        .await;
    // Released, the blocker is scheduled again (its transcript is now
    // unchanged, so the pass ends without processing it).
    events
        .until(|seen| count(seen, "blocker", "processor_run.succeeded") == 2)
        .await;
    let second = events.of("blocker", "processor_run.succeeded")[1];
    assert_eq!((second.skipped_unchanged, second.processed), (1, 0));
}

#[tokio::test]
async fn a_failing_pass_still_advances_the_schedule() {
    let transcripts = Transcripts::new();
    let not_a_dir = transcripts.dir().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let server = TestServer::start_with(move |config| {
        config.processors.transcripts_dir = not_a_dir;
        config.processors.usage.cadence = CADENCE;
        config.processors.tool_errors.enabled = false;
    })
    .await;
    let mut events = RunEvents::watch(&server).await;
    events
        .until(|seen| count(seen, "usage", "processor_run.failed") >= 3)
        .await;
    let failed = events.of("usage", "processor_run.failed");
    for run in &failed {
        assert_eq!(run.state(), ProcessorRunState::Failed);
        assert_eq!(
            run.error,
            "cannot list the transcripts dir: Not a directory (os error 20)"
        );
    }
    for pair in failed.windows(2) {
        let gap = micros(&pair[1].start_time) - micros(&pair[0].start_time);
        assert!(
            gap >= CADENCE.as_micros() as i64,
            "a failing pass waits its cadence, no hot loop: {gap} us"
        );
    }
    let listed = processor(&server, "usage").await;
    assert!(micros(&listed.last_run_time) >= micros(&failed[2].start_time));
    assert_eq!(listed.last_run.unwrap().state(), ProcessorRunState::Failed);
}
