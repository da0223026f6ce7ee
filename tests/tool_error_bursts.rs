//! tool_error_burst lessons through the real server: a burst in one
//! session (or transcript without a session) never hides a burst in
//! another, within the lessons' dedup window; within one transcript the
//! window still folds bursts into one lesson.

mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

use std::time::Duration;

use bosun::pb::{ListLessonsRequest, RunProcessorRequest};
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
