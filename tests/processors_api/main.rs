//! Processors through the real server, around the pass: the scheduler
//! (parallel, on cadence, never twice at once, advancing even on failure),
//! RunProcessor's ABORTED, ListProcessors with its lag warning, and bad
//! requests.
//! - schedule: RunProcessor's ABORTED, passes that outlive their caller,
//!   cadence, parallel passes, failures that still advance the schedule;
//! - reads: ListProcessors with its lag warning, state pages, bad requests.
//!
//! The helpers below are shared by those files.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/transcripts.rs"]
mod transcripts;

mod reads;
mod schedule;

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
