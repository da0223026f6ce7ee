//! The tool_errors processor through the real server: a burst in one
//! session (or transcript without a session) never hides a burst in
//! another, within the lessons' dedup window (within one transcript the
//! window still folds bursts into one lesson); GetToolErrors reads the
//! counts per tool; transcript_usage.* and transcript_tool_errors.* events
//! carry typed payloads.

mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

use std::time::Duration;

use bosun::pb::event::Payload;
use bosun::pb::{
    EventFilter, GetToolErrorsRequest, ListEventsRequest, ListLessonsRequest, RunProcessorRequest,
    ToolErrorCount,
};
use common::TestServer;
use transcripts::{Transcripts, tool_result, tool_use};

const HOUR: Duration = Duration::from_secs(3600);

fn burst(session: &str, prefix: &str) -> Vec<String> {
    (0..3)
        .flat_map(|n| {
            let id = format!("{prefix}{n}");
            [
                tool_use(session, &format!("m-{id}"), &id, "Bash"),
                tool_result(session, &id, true),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_burst_in_one_session_never_hides_a_burst_in_another() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/sess-x.jsonl", &burst("sess-x", "x"), HOUR);
    transcripts.write_old("alice/sess-y.jsonl", &burst("sess-y", "y"), HOUR);
    transcripts.write_old("bob/sess-z.jsonl", &burst("sess-z", "z"), HOUR);
    let dir = transcripts.path();
    // The default dedup window (an hour) holds.
    let server = TestServer::start_with(move |config| {
        config.processors.transcripts_dir = dir;
        config.processors.tool_error_burst_threshold = 3;
    })
    .await;
    let run = || async {
        server
            .processors_client()
            .run_processor(RunProcessorRequest {
                name: "tool_errors".into(),
            })
            .await
            .unwrap()
    };
    let lessons = || async {
        server
            .lessons()
            .list_lessons(ListLessonsRequest {
                lesson_type: "tool_error_burst".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lessons
    };
    run().await;
    let mut details: Vec<String> = lessons().await.into_iter().map(|l| l.detail).collect();
    details.sort();
    assert_eq!(details.len(), 3, "one lesson per transcript: {details:?}");
    for (detail, key) in details
        .iter()
        .zip(["alice/sess-x", "alice/sess-y", "bob/sess-z"])
    {
        assert!(detail.contains(key), "{detail}");
    }

    // A second burst in the same transcript, inside the window: folded.
    transcripts.append("alice/sess-x.jsonl", &burst("sess-x", "w"));
    transcripts.set_mtime("alice/sess-x.jsonl", std::time::SystemTime::now());
    run().await;
    assert_eq!(lessons().await.len(), 3);
}

fn count(tool: &str, errors: i64) -> ToolErrorCount {
    ToolErrorCount {
        tool: tool.into(),
        errors,
    }
}

#[tokio::test]
async fn tool_errors_are_read_per_tool_and_events_carry_typed_payloads() {
    let transcripts = Transcripts::new();
    let mut x = burst("sess-x", "x");
    x.push(tool_use("sess-x", "m-e", "e1", "Edit"));
    x.push(tool_result("sess-x", "e1", true));
    transcripts.write_old("alice/sess-x.jsonl", &x, HOUR);
    transcripts.write_old("bob/sess-z.jsonl", &burst("sess-z", "z")[..2], HOUR);
    let dir = transcripts.path();
    let server = TestServer::start_with(move |config| {
        config.processors.transcripts_dir = dir;
        config.processors.tool_error_burst_threshold = 3;
    })
    .await;
    let mut processors = server.processors_client();
    for name in ["tool_errors", "usage"] {
        processors
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .unwrap();
    }

    let all = processors
        .get_tool_errors(GetToolErrorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.by_tool, [count("Bash", 4), count("Edit", 1)]);
    assert_eq!((all.errors, all.bursts), (5, 1));
    let keys: Vec<&str> = all
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(keys, ["alice/sess-x.jsonl", "bob/sess-z.jsonl"]);
    assert_eq!(
        all.transcripts[0].by_tool,
        [count("Bash", 3), count("Edit", 1)]
    );
    assert_eq!(all.transcripts[0].session_id, "sess-x");

    let first = processors
        .get_tool_errors(GetToolErrorsRequest {
            page_size: 1,
            owner: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.transcripts.len(), 1);
    assert_eq!(
        (first.errors, first.bursts, first.next_page_token.as_str()),
        (1, 0, "")
    );
    let status = processors
        .get_tool_errors(GetToolErrorsRequest {
            transcript: "no-slash".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(common::bad_fields(&status), ["transcript"]);

    let events = |prefix: &'static str| {
        let mut client = server.events();
        async move {
            client
                .list_events(ListEventsRequest {
                    filter: Some(EventFilter {
                        event_type_prefixes: vec![prefix.into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .events
        }
    };
    let tool_events = events("transcript_tool_errors.").await;
    assert_eq!(tool_events.len(), 2);
    match &tool_events[0].payload {
        Some(Payload::TranscriptToolErrors(payload)) => {
            assert_eq!(payload, &all.transcripts[0]);
        }
        other => panic!("a typed payload: {other:?}"),
    }
    let usage_events = events("transcript_usage.").await;
    assert_eq!(usage_events.len(), 2);
    match &usage_events[0].payload {
        Some(Payload::TranscriptUsage(payload)) => {
            assert_eq!(payload.transcript, "alice/sess-x.jsonl");
            assert_eq!(payload.usage.unwrap().messages, 4);
            assert_eq!(payload.by_model[0].model, "claude-sonnet-4-5");
        }
        other => panic!("a typed payload: {other:?}"),
    }
}
