//! The processor framework (SPEC §9) through the real server: the pass
//! algorithm over real transcript files, per-processor state, failures and
//! the quarantine, the cap and the time budget, and each pass as a row and an
//! event. Scheduling, concurrency and validation are in processors_api.rs.

mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

use bosun::storage::sql::query;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bosun::config::Config;
use bosun::pb::{
    self, EventFilter, ListProcessorStateRequest, ProcessorRunState, ResetProcessorStateRequest,
    RunProcessorRequest, event::Payload,
};
use common::TestServer;
use transcripts::{
    Flaky, Transcripts, assistant, registration, settings, tool_result, tool_use, user,
};

const HOUR: Duration = Duration::from_secs(3600);

async fn start(transcripts: &Transcripts, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = transcripts.path();
    TestServer::start_with(move |config| {
        config.processors.transcripts_dir = dir;
        tweak(config);
    })
    .await
}

async fn run(server: &TestServer, name: &str) -> pb::ProcessorRun {
    let run = server
        .processors_client()
        .run_processor(RunProcessorRequest { name: name.into() })
        .await
        .expect("run processor")
        .into_inner();
    assert_eq!(run.state(), ProcessorRunState::Succeeded, "{run:?}");
    assert_eq!(
        run.scanned,
        run.processed + run.skipped + run.errors + run.deferred,
        "counts add up: {run:?}"
    );
    assert_eq!(
        run.skipped,
        run.skipped_unchanged + run.skipped_same_hash + run.skipped_quarantined
    );
    run
}

/// A server running the test processor `flaky` (hourly) over `transcripts`.
async fn start_flaky(transcripts: &Transcripts) -> (TestServer, Arc<Flaky>) {
    let flaky = Flaky::new("flaky");
    let dir = transcripts.path();
    let server = TestServer::start_with_processors(
        move |config| config.processors.transcripts_dir = dir,
        vec![registration(flaky.clone(), settings(HOUR))],
    )
    .await;
    (server, flaky)
}

/// (scanned, processed, skipped unchanged, same hash, quarantined, errors, deferred)
fn counts(run: &pb::ProcessorRun) -> [i64; 7] {
    [
        run.scanned,
        run.processed,
        run.skipped_unchanged,
        run.skipped_same_hash,
        run.skipped_quarantined,
        run.errors,
        run.deferred,
    ]
}

async fn states(
    server: &TestServer,
    request: ListProcessorStateRequest,
) -> Vec<pb::ProcessorState> {
    server
        .processors_client()
        .list_processor_state(request)
        .await
        .expect("list state")
        .into_inner()
        .states
}

async fn state(server: &TestServer, processor: &str, key: &str) -> Option<pb::ProcessorState> {
    let request = ListProcessorStateRequest {
        processor: processor.into(),
        transcript: key.into(),
        ..Default::default()
    };
    states(server, request).await.into_iter().next()
}

/// A timestamp as microseconds, to compare.
fn micros(time: &Option<prost_types::Timestamp>) -> i64 {
    let time = (*time).expect("a timestamp");
    time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000
}

fn session_lines(session: &str) -> Vec<String> {
    vec![
        user(session, "fix the flaky test"),
        assistant(session, "msg_1", "claude-sonnet-4-5", (10, 20, 30, 40)),
    ]
}

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

#[tokio::test]
async fn the_cap_defers_the_newest_transcripts_to_the_next_pass() {
    let transcripts = Transcripts::new();
    for (index, age_hours) in [(1, 5), (2, 1), (3, 4), (4, 2), (5, 3)] {
        let key = format!("alice/s{index}.jsonl");
        transcripts.write_old(&key, &session_lines("s"), HOUR * age_hours);
    }
    let server = start(&transcripts, |config| {
        config.processors.usage.max_transcripts_per_pass = 2;
    })
    .await;

    let first = run(&server, "usage").await;
    assert_eq!(counts(&first), [5, 2, 0, 0, 0, 0, 3]);
    assert!(first.capped);
    let processed = |states: Vec<pb::ProcessorState>| -> Vec<String> {
        states.into_iter().map(|s| s.transcript).collect()
    };
    let usage_states = || ListProcessorStateRequest {
        processor: "usage".into(),
        ..Default::default()
    };
    assert_eq!(
        processed(states(&server, usage_states()).await),
        ["alice/s1.jsonl", "alice/s3.jsonl"],
        "oldest modification first"
    );
    let second = run(&server, "usage").await;
    assert_eq!(counts(&second), [5, 2, 2, 0, 0, 0, 1]);
    let third = run(&server, "usage").await;
    assert_eq!(counts(&third), [5, 1, 4, 0, 0, 0, 0]);
    assert!(!third.capped);
    assert_eq!(processed(states(&server, usage_states()).await).len(), 5);
}

/// A pass large enough to be read in chunks on several threads still takes
/// exactly the oldest transcripts up to the cap.
#[tokio::test]
async fn the_cap_takes_exactly_the_oldest_of_a_large_pass() {
    let transcripts = Transcripts::new();
    // s000 is the oldest; the names sort in age order too.
    for index in 0..300u32 {
        let age = HOUR + Duration::from_secs(u64::from(300 - index));
        transcripts.write_old(
            &format!("alice/s{index:03}.jsonl"),
            &session_lines("s"),
            age,
        );
    }
    let server = start(&transcripts, |config| {
        config.processors.usage.max_transcripts_per_pass = 70;
    })
    .await;
    let first = run(&server, "usage").await;
    assert_eq!(counts(&first), [300, 70, 0, 0, 0, 0, 230]);
    let request = ListProcessorStateRequest {
        processor: "usage".into(),
        page_size: 1000,
        ..Default::default()
    };
    let processed: Vec<String> = states(&server, request)
        .await
        .into_iter()
        .map(|s| s.transcript)
        .collect();
    let oldest: Vec<String> = (0..70).map(|i| format!("alice/s{i:03}.jsonl")).collect();
    assert_eq!(processed, oldest);
}

#[tokio::test]
async fn the_time_budget_stops_starting_transcripts() {
    let transcripts = Transcripts::new();
    for index in 0..6 {
        transcripts.write_old(&format!("alice/s{index}.jsonl"), &session_lines("s"), HOUR);
    }
    let (blocking, mut handle) = transcripts::Blocking::new("slow");
    let dir = transcripts.path();
    let budget = transcripts::settings(HOUR);
    let server = TestServer::start_with_processors(
        move |config| config.processors.transcripts_dir = dir,
        vec![registration(
            blocking,
            bosun::processors::ProcessorSettings {
                time_budget: Duration::from_millis(50),
                ..budget
            },
        )],
    )
    .await;
    let mut client = server.processors_client();
    let pass = tokio::spawn(async move {
        client
            .run_processor(RunProcessorRequest {
                name: "slow".into(),
            })
            .await
    });
    // Hold the first transcript past the budget, then let everything go.
    handle.wait_entered().await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    for _ in 0..6 {
        handle.release();
    }
    let run = pass.await.unwrap().unwrap().into_inner();
    assert!(run.capped, "{run:?}");
    assert!(run.processed >= 1 && run.deferred >= 1, "{run:?}");
    assert_eq!(run.processed + run.deferred, 6);
}

/// Every event whose type starts with one of `prefixes`, oldest first.
async fn events_of(server: &TestServer, prefixes: &[&str]) -> Vec<pb::Event> {
    let filter = EventFilter {
        event_type_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    server.list_events(0, filter).await
}

/// The transcripts each processor remembers, by key.
async fn remembered(server: &TestServer, processor: &str) -> Vec<String> {
    let request = ListProcessorStateRequest {
        processor: processor.into(),
        ..Default::default()
    };
    let states = states(server, request).await;
    states.into_iter().map(|s| s.transcript).collect()
}

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
    assert_eq!(last.error, "interrupted: bosun stopped during the pass");
    assert_eq!(run(&server, "usage").await.skipped_unchanged, 1);
}
