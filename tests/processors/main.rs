//! The processor framework (SPEC §9) through the real server: the pass
//! algorithm over real transcript files, per-processor state, failures and
//! the quarantine, the cap and the time budget, and each pass as a row and an
//! event. Scheduling, concurrency and validation are in tests/processors_api/.
//! - passes: what a pass reads, skips and reads again, per processor;
//! - failures: failing processors, unstorable results, the quarantine;
//! - limits: the cap and the time budget;
//! - history: forgotten transcripts, passes as rows and events, restarts.
//!
//! The helpers below are shared by those files.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/transcripts.rs"]
mod transcripts;

mod failures;
mod history;
mod limits;
mod passes;

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
