//! Processors through the real server, around the pass: the scheduler
//! (parallel, on cadence, never twice at once, advancing even on failure),
//! RunProcessor's ABORTED, ListProcessors with its lag warning, and bad
//! requests.

mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

use std::time::{Duration, SystemTime};

use bosun::pb::{
    self, EventFilter, ListProcessorStateRequest, ListProcessorsRequest, ProcessorRunState,
    ProcessorRunTrigger, ResetProcessorStateRequest, RunProcessorRequest, WatchRequest,
    event::Payload,
};
use common::{TestServer, assert_error, bad_fields, error_metadata};
use futures::StreamExt;
use tonic::Code;
use transcripts::{Blocking, Transcripts, assistant, registration, settings, user};

const HOUR: Duration = Duration::from_secs(3600);
const CADENCE: Duration = Duration::from_millis(200);

fn micros(time: &Option<prost_types::Timestamp>) -> i64 {
    let time = (*time).expect("a timestamp");
    time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000
}

fn lines(session: &str) -> Vec<String> {
    vec![
        user(session, "go"),
        assistant(session, "msg_1", "claude-sonnet-4-5", (1, 2, 3, 4)),
    ]
}

/// The processor_run events of one Watch stream, as they come.
struct RunEvents {
    stream: tonic::Streaming<pb::WatchResponse>,
    /// (event type, run) in seq order.
    seen: Vec<(String, pb::ProcessorRun)>,
}

impl RunEvents {
    async fn watch(server: &TestServer) -> Self {
        let stream = server
            .events()
            .watch(WatchRequest {
                after_seq: 0,
                filter: Some(EventFilter {
                    event_type_prefixes: vec!["processor_run.".into()],
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        Self {
            stream,
            seen: Vec::new(),
        }
    }

    /// Reads events until `done` holds for those seen (20 s at most).
    async fn until(&mut self, done: impl Fn(&[(String, pb::ProcessorRun)]) -> bool) {
        let reading = async {
            while !done(&self.seen) {
                let message = self.stream.next().await.expect("stream open").unwrap();
                for event in message.events {
                    let Some(Payload::ProcessorRun(run)) = event.payload else {
                        panic!("typed payload: {event:?}");
                    };
                    self.seen.push((event.event_type, run));
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), reading)
            .await
            .expect("the awaited passes happened in time");
    }

    fn of<'a>(&'a self, processor: &'a str, event_type: &'a str) -> Vec<&'a pb::ProcessorRun> {
        self.seen
            .iter()
            .filter(|(kind, run)| kind == event_type && run.processor == processor)
            .map(|(_, run)| run)
            .collect()
    }
}

fn count(seen: &[(String, pb::ProcessorRun)], processor: &str, event_type: &str) -> usize {
    seen.iter()
        .filter(|(kind, run)| kind == event_type && run.processor == processor)
        .count()
}

async fn processors(server: &TestServer) -> Vec<pb::Processor> {
    server
        .processors_client()
        .list_processors(ListProcessorsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .processors
}

async fn processor(server: &TestServer, name: &str) -> pb::Processor {
    processors(server)
        .await
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

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

#[tokio::test]
async fn list_processors_shows_settings_schedule_and_the_lag_warning() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| {
            config.processors.transcripts_dir = dir;
            config.processors.usage.max_transcripts_per_pass = 7;
            config.processors.usage.time_budget = Duration::from_secs(30);
            config.processors.usage.quarantine_after_failures = 4;
            config.processors.tool_errors.enabled = false;
        }
    })
    .await;

    let listed = processors(&server).await;
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tool_errors", "usage"]);
    let (tool_errors, usage) = (&listed[0], &listed[1]);
    assert!(!tool_errors.enabled && tool_errors.next_run_time.is_none());
    assert!(usage.enabled && !usage.running && !usage.description.is_empty());
    assert_eq!(usage.cadence.unwrap().seconds, 300);
    assert_eq!(usage.time_budget.unwrap().seconds, 30);
    assert_eq!(
        (
            usage.max_transcripts_per_pass,
            usage.quarantine_after_failures
        ),
        (7, 4)
    );
    assert!(usage.last_run.is_none() && usage.last_run_time.is_none());
    assert!(usage.next_run_time.is_some(), "one cadence after the start");
    assert!(!usage.lag_warning && usage.lag_detail.is_empty());
    let newest = micros(&usage.newest_transcript_time);
    let written = SystemTime::now() - HOUR;
    let written = written
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!((newest - written).abs() < 5_000_000, "the file's mtime");

    let run = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "usage".into(),
        })
        .await
        .unwrap()
        .into_inner();
    transcripts.write("bob/s2.jsonl", &lines("s2"));
    transcripts.set_mtime(
        "bob/s2.jsonl",
        SystemTime::now() + Duration::from_secs(11 * 60),
    );
    let listed = processors(&server).await;
    let (tool_errors, usage) = (&listed[0], &listed[1]);
    assert_eq!(usage.last_run.as_ref(), Some(&run));
    assert_eq!(micros(&usage.last_run_time), micros(&run.start_time));
    assert_eq!(
        micros(&usage.next_run_time),
        micros(&run.start_time) + 300_000_000,
        "a manual pass pushes the next scheduled one"
    );
    assert!(usage.lag_warning, "{usage:?}");
    assert!(
        usage.lag_detail.starts_with("newest transcript is 1")
            && usage
                .lag_detail
                .ends_with("newer than the last pass (cadence 5m)"),
        "{}",
        usage.lag_detail
    );
    assert!(!tool_errors.lag_warning, "never for a disabled processor");

    let disabled = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "tool_errors".into(),
        })
        .await
        .unwrap_err();
    assert_error(&disabled, Code::FailedPrecondition, "PROCESSOR_DISABLED");

    let mut client = server.processors_client();
    let first = client
        .list_processors(ListProcessorsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.processors[0].name, "tool_errors");
    let second = client
        .list_processors(ListProcessorsRequest {
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.processors[0].name, "usage");
    assert_eq!(second.next_page_token, "");
}

#[tokio::test]
async fn state_pages_in_order_and_filters() {
    let transcripts = Transcripts::new();
    for key in ["bob/b.jsonl", "alice/a2.jsonl", "alice/a1.jsonl"] {
        transcripts.write_old(key, &lines("s"), HOUR);
    }
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| config.processors.transcripts_dir = dir
    })
    .await;
    let mut client = server.processors_client();
    for name in ["usage", "tool_errors"] {
        client
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_processor_state(ListProcessorStateRequest {
                page_size: 4,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(
            page.states
                .into_iter()
                .map(|s| format!("{}:{}", s.processor, s.transcript)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [
            "tool_errors:alice/a1.jsonl",
            "tool_errors:alice/a2.jsonl",
            "tool_errors:bob/b.jsonl",
            "usage:alice/a1.jsonl",
            "usage:alice/a2.jsonl",
            "usage:bob/b.jsonl",
        ]
    );
    let alice_usage = client
        .list_processor_state(ListProcessorStateRequest {
            processor: "usage".into(),
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .states;
    assert_eq!(alice_usage.len(), 2);
    assert!(
        alice_usage
            .iter()
            .all(|s| s.owner == "alice" && s.processor == "usage")
    );
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field_and_change_nothing() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| config.processors.transcripts_dir = dir
    })
    .await;
    let mut client = server.processors_client();
    for name in ["usage", "tool_errors"] {
        client
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .unwrap();
    }
    let page_token = client
        .list_processor_state(ListProcessorStateRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let too_many: Vec<String> = (0..1001).map(|i| format!("alice/s{i}.jsonl")).collect();

    let refusals = [
        (
            client
                .run_processor(RunProcessorRequest::default())
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "name",
        ),
        (
            client
                .run_processor(RunProcessorRequest {
                    name: "nope".into(),
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "name",
        ),
        (
            client
                .list_processors(ListProcessorsRequest {
                    page_size: -1,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            client
                .list_processors(ListProcessorsRequest {
                    page_token: "garbage".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_token",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    processor: "nope".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "processor",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    transcript: "alice/s1.json".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcript",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    owner: "alice/s1.jsonl".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "owner",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    page_token: page_token.clone(),
                    processor: "usage".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_token",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest::default())
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "processor",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "usage".into(),
                    transcripts: vec!["alice/s1.jsonl".into(), "../etc.jsonl".into()],
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcripts[1]",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "usage".into(),
                    transcripts: too_many,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcripts",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "nope".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "processor",
        ),
        (
            client
                .get_usage(pb::GetUsageRequest {
                    transcript: "s1.jsonl".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcript",
        ),
        (
            client
                .get_usage(pb::GetUsageRequest {
                    page_size: -5,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_size",
        ),
    ];
    for (result, reason, field) in refusals {
        let status = result.expect_err(field);
        assert_error(&status, Code::InvalidArgument, reason);
        assert_eq!(bad_fields(&status), [field], "{status:?}");
        if reason == "UNKNOWN_PROCESSOR" {
            assert_eq!(
                error_metadata(&status, "known").as_deref(),
                Some("tool_errors,usage")
            );
            assert!(
                status.message().contains("tool_errors, usage"),
                "{}",
                status.message()
            );
        }
    }
    let states = client
        .list_processor_state(ListProcessorStateRequest::default())
        .await
        .unwrap()
        .into_inner()
        .states;
    assert_eq!(states.len(), 2, "the refused resets forgot nothing");
}
