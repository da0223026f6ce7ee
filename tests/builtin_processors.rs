//! The built-in processors through the real server: `usage` totals equal a
//! hand-computed count of a realistic multi-session transcript set (repeated
//! message ids, malformed lines, several models), GetUsage's filters and
//! pages, usage on Sessions; `tool_errors` counts and burst lessons.

mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

use std::time::Duration;

use bosun::pb::{
    self, GetUsageRequest, ListLessonsRequest, ListProcessorStateRequest, RunProcessorRequest,
    TokenUsage,
};
use common::{TestServer, assert_error, bad_fields};
use tonic::Code;
use transcripts::{Transcripts, assistant, tool_result, tool_use, user};

const HOUR: Duration = Duration::from_secs(3600);
const SONNET: &str = "claude-sonnet-4-5";
const OPUS: &str = "claude-opus-4-1";
const HAIKU: &str = "claude-haiku-4-5";
const SESS_A: &str = "-home-dev-orchestrator/sess-a.jsonl";
const SESS_B: &str = "-home-dev-orchestrator/sess-b.jsonl";
const D9: &str = "-home-dev-website/d9.jsonl";
const SESS_C: &str = "-home-dev-website/sess-c.jsonl";

fn tokens(input: i64, output: i64, created: i64, read: i64, messages: i64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: created,
        cache_read_input_tokens: read,
        messages,
    }
}

/// Four transcripts of two projects, as Claude Code writes them.
fn write_fleet(transcripts: &Transcripts) {
    transcripts.write_old(
        SESS_A,
        &[
            user("sess-a", "fix the flaky test"),
            // One API message written as two lines (text, then the rest):
            // counted once, with its last line.
            assistant("sess-a", "msg_a1", SONNET, (100, 10, 1000, 5000)),
            assistant("sess-a", "msg_a1", SONNET, (100, 55, 1000, 5000)),
            assistant("sess-a", "msg_a2", OPUS, (20, 200, 0, 3000)),
            r#"{"type":"assistant","sessionId":"sess-a","message":{"id":"msg_a9","#.to_string(),
            assistant("sess-a", "msg_a3", SONNET, (5, 7, 0, 6000)),
        ],
        HOUR,
    );
    transcripts.write_old(
        SESS_B,
        &[
            assistant("sess-b", "msg_b1", HAIKU, (300, 30, 0, 0)),
            assistant("sess-b", "msg_b1", HAIKU, (300, 31, 0, 0)),
            assistant("sess-b", "msg_b1", HAIKU, (300, 32, 0, 0)),
            "not json at all".to_string(),
            assistant("sess-b", "msg_b2", SONNET, (7, 8, 9, 10)),
        ],
        HOUR,
    );
    transcripts.write_old(
        SESS_C,
        &[user("sess-c", "hello"), user("sess-c", "bye")],
        HOUR,
    );
    // No sessionId on any line: the session id is the file's name.
    let no_session =
        assistant("x", "msg_d1", OPUS, (1, 2, 3, 4)).replace(r#""sessionId":"x","#, "");
    transcripts.write_old(D9, &[no_session], HOUR);
}

/// By hand: sess-a sonnet = msg_a1 (last line) + msg_a3, opus = msg_a2;
/// sess-b haiku = msg_b1 (last line), sonnet = msg_b2; d9 opus = msg_d1.
fn sess_a() -> Vec<(&'static str, TokenUsage)> {
    vec![
        (OPUS, tokens(20, 200, 0, 3000, 1)),
        (SONNET, tokens(105, 62, 1000, 11000, 2)),
    ]
}

fn by_model(models: &[pb::ModelUsage]) -> Vec<(&str, TokenUsage)> {
    models
        .iter()
        .map(|m| (m.model.as_str(), m.usage.unwrap()))
        .collect()
}

async fn usage(server: &TestServer, request: GetUsageRequest) -> pb::GetUsageResponse {
    server
        .processors_client()
        .get_usage(request)
        .await
        .expect("get usage")
        .into_inner()
}

async fn run(server: &TestServer, name: &str) -> pb::ProcessorRun {
    server
        .processors_client()
        .run_processor(RunProcessorRequest { name: name.into() })
        .await
        .expect("run")
        .into_inner()
}

async fn start(
    transcripts: &Transcripts,
    tweak: impl FnOnce(&mut bosun::config::Config),
) -> TestServer {
    let dir = transcripts.path();
    TestServer::start_with(move |config| {
        config.processors.transcripts_dir = dir;
        tweak(config);
    })
    .await
}

#[tokio::test]
async fn usage_totals_equal_a_hand_computed_count() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    let pass = run(&server, "usage").await;
    assert_eq!(
        (pass.processed, pass.items, pass.malformed_lines),
        (4, 6, 2)
    );

    let all = usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_model(&all.by_model),
        [
            (HAIKU, tokens(300, 32, 0, 0, 1)),
            (OPUS, tokens(21, 202, 3, 3004, 2)),
            (SONNET, tokens(112, 70, 1009, 11010, 3)),
        ]
    );
    assert_eq!(all.total, Some(tokens(433, 304, 1012, 14014, 6)));
    let keys: Vec<&str> = all
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(keys, [SESS_A, SESS_B, D9, SESS_C]);
    let a = &all.transcripts[0];
    assert_eq!(
        (a.owner.as_str(), a.session_id.as_str()),
        ("-home-dev-orchestrator", "sess-a")
    );
    assert_eq!(by_model(&a.by_model), sess_a());
    assert_eq!(a.usage, Some(tokens(125, 262, 1000, 14000, 3)));
    assert!(a.processed_time.is_some());
    assert_eq!(all.transcripts[2].session_id, "d9");
    let c = &all.transcripts[3];
    assert_eq!(
        (c.usage, c.by_model.len()),
        (Some(tokens(0, 0, 0, 0, 0)), 0),
        "processed, nothing spent"
    );

    let website = usage(
        &server,
        GetUsageRequest {
            owner: "-home-dev-website".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(website.transcripts.len(), 2);
    assert_eq!(website.total, Some(tokens(1, 2, 3, 4, 1)));

    let opus = usage(
        &server,
        GetUsageRequest {
            model: OPUS.into(),
            ..Default::default()
        },
    )
    .await;
    let keys: Vec<&str> = opus
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(
        keys,
        [SESS_A, D9],
        "transcripts without the model are left out"
    );
    assert_eq!(
        opus.transcripts[0].usage,
        Some(tokens(20, 200, 0, 3000, 1)),
        "that model's messages only"
    );
    assert_eq!(
        by_model(&opus.by_model),
        [(OPUS, tokens(21, 202, 3, 3004, 2))]
    );
    assert_eq!(opus.total, Some(tokens(21, 202, 3, 3004, 2)));

    for (request, key) in [
        (
            GetUsageRequest {
                session_id: "sess-b".into(),
                ..Default::default()
            },
            SESS_B,
        ),
        (
            GetUsageRequest {
                transcript: D9.into(),
                ..Default::default()
            },
            D9,
        ),
    ] {
        let one = usage(&server, request).await;
        assert_eq!(one.transcripts.len(), 1);
        assert_eq!(one.transcripts[0].transcript, key);
        assert_eq!(one.total, one.transcripts[0].usage);
    }
}

/// A pass stores a batch of transcripts together, in a few multi-row
/// statements, not transcript by transcript: a subscriber sees the batch's
/// usage rows, then its state rows (one transcript at a time would
/// interleave them).
#[tokio::test]
async fn a_pass_stores_its_batch_of_transcripts_together() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    assert_eq!(run(&server, "usage").await.processed, 4);
    let events = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                event_type_prefixes: vec!["transcript_usage.".into(), "processor_state.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("list events")
        .into_inner()
        .events;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            ["transcript_usage.created"; 4],
            ["processor_state.created"; 4]
        ]
        .concat()
    );
}

#[tokio::test]
async fn usage_pages_carry_the_same_totals_and_tokens_are_bound_to_filters() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    run(&server, "usage").await;

    let first = usage(
        &server,
        GetUsageRequest {
            page_size: 3,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first.transcripts.len(), 3);
    let second = usage(
        &server,
        GetUsageRequest {
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(second.transcripts.len(), 1);
    assert_eq!(second.transcripts[0].transcript, SESS_C);
    assert_eq!(second.next_page_token, "");
    assert_eq!(
        (&first.total, &first.by_model),
        (&second.total, &second.by_model)
    );

    let status = server
        .processors_client()
        .get_usage(GetUsageRequest {
            page_size: 3,
            page_token: first.next_page_token,
            model: OPUS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["page_token"]);
}

#[tokio::test]
async fn a_message_growing_over_more_lines_is_recounted_not_doubled() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    run(&server, "usage").await;
    transcripts.append(
        SESS_A,
        &[assistant("sess-a", "msg_a3", SONNET, (5, 90, 0, 6000))],
    );
    let pass = run(&server, "usage").await;
    assert_eq!((pass.processed, pass.skipped_unchanged), (1, 3));
    let a = usage(
        &server,
        GetUsageRequest {
            transcript: SESS_A.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        a.total,
        Some(tokens(125, 345, 1000, 14000, 3)),
        "msg_a3 now ends at 90 output tokens"
    );
}

#[tokio::test]
async fn a_session_shows_the_usage_of_its_transcript() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(pb::Project {
                id: "orch".into(),
                origin_url: "https://github.com/acme/orch.git".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let spawn = |agent_session_id: &'static str| {
        let mut sessions = sessions.clone();
        async move {
            let session = sessions
                .spawn_session(pb::SpawnSessionRequest {
                    project_id: "orch".into(),
                    harness: pb::Harness::ClaudeCode.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            sessions
                .complete_spawn(pb::CompleteSpawnRequest {
                    session_id: session.id,
                    runtime_handle_id: "tmux:%1".into(),
                    agent_session_id: agent_session_id.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let with_transcript = spawn("sess-a").await;
    let without = spawn("").await;
    assert_eq!(with_transcript.usage, None, "not counted yet");

    run(&server, "usage").await;
    let get = |id: String| {
        let mut sessions = sessions.clone();
        async move {
            sessions
                .get_session(pb::GetSessionRequest { session_id: id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let counted = get(with_transcript.id.clone()).await;
    assert_eq!(counted.usage, Some(tokens(125, 262, 1000, 14000, 3)));
    assert_eq!(get(without.id.clone()).await.usage, None);
    let listed = (server.sessions_client())
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let listed = listed.iter().find(|s| s.id == with_transcript.id).unwrap();
    assert_eq!(listed.usage, counted.usage);
    // Write replies carry it too: a spawn completed after the count (the call
    // that sets the agent session), and an activity report.
    let late = spawn("sess-a").await;
    assert_eq!(late.usage, counted.usage, "CompleteSpawn's reply");
    let reported = (server.sessions_client())
        .report_activity(pb::ReportActivityRequest {
            session_id: with_transcript.id.clone(),
            state: pb::ActivityState::Active.into(),
            source: pb::ActivitySource::Hook.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reported.usage, counted.usage, "ReportActivity's reply");

    let events = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                session_id: with_transcript.id.clone(),
                event_type_prefixes: vec!["transcript_usage.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        events.len(),
        1,
        "the usage change is an event about the session"
    );
    assert_eq!(events[0].entity_id, SESS_A);
}

#[tokio::test]
async fn tool_errors_are_counted_per_tool_and_each_new_burst_is_one_lesson() {
    const KEY: &str = "alice/sess-t.jsonl";
    let transcripts = Transcripts::new();
    let s = "sess-t";
    transcripts.write_old(
        KEY,
        &[
            tool_use(s, "m1", "t1", "Bash"),
            tool_result(s, "t1", true),
            tool_use(s, "m2", "t2", "Bash"),
            tool_result(s, "t2", true),
            tool_use(s, "m3", "t3", "Edit"),
            tool_result(s, "t3", true),
            tool_use(s, "m4", "t4", "Read"),
            tool_result(s, "t4", false),
            tool_use(s, "m5", "t5", "Bash"),
            tool_result(s, "t5", true),
        ],
        HOUR,
    );
    transcripts.write_old(
        "bob/unknown-session.jsonl",
        &[
            tool_result("nobody", "x1", true),
            tool_result("nobody", "x2", true),
            tool_result("nobody", "x3", true),
        ],
        HOUR,
    );
    let server = start(&transcripts, |config| {
        config.processors.tool_error_burst_threshold = 3;
        config.lessons.dedup_window = Duration::ZERO;
    })
    .await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(pb::Project {
                id: "orch".into(),
                origin_url: "https://github.com/acme/orch.git".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let session = sessions
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "orch".into(),
            harness: pb::Harness::ClaudeCode.into(),
            issue_id: "ORCH-7".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    sessions
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: session.id.clone(),
            runtime_handle_id: "tmux:%1".into(),
            agent_session_id: s.into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let lessons = || async {
        let mut lessons = server
            .lessons()
            .list_lessons(ListLessonsRequest {
                lesson_type: "tool_error_burst".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lessons;
        lessons.reverse();
        lessons
    };
    let pass = run(&server, "tool_errors").await;
    assert_eq!((pass.processed, pass.items), (2, 7));
    let recorded = lessons().await;
    assert_eq!(recorded.len(), 2, "one burst per transcript so far");
    let ours = recorded
        .iter()
        .find(|l| l.session_id == session.id)
        .expect("the session's lesson");
    assert_eq!(ours.source(), pb::LessonSource::Auto);
    assert_eq!(ours.work_item_id, "ORCH-7");
    assert!(
        ours.detail.contains(KEY) && ours.detail.contains("Bash 3, Edit 1"),
        "{}",
        ours.detail
    );
    let stranger = recorded
        .iter()
        .find(|l| l.session_id.is_empty())
        .expect("no session matches");
    assert!(stranger.detail.contains("unknown 3"), "{}", stranger.detail);

    let state = |key: &'static str| {
        let mut client = server.processors_client();
        async move {
            client
                .list_processor_state(ListProcessorStateRequest {
                    processor: "tool_errors".into(),
                    transcript: key.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .states
                .remove(0)
        }
    };
    assert_eq!(state(KEY).await.items, 4);

    // Two failures in a row: no new burst, no new lesson.
    transcripts.append(
        KEY,
        &[tool_use(s, "m6", "t6", "Bash"), tool_result(s, "t6", true)],
    );
    assert_eq!(run(&server, "tool_errors").await.processed, 1);
    assert_eq!(state(KEY).await.items, 5);
    assert_eq!(lessons().await.len(), 2);

    // A third: a second burst, one more lesson.
    transcripts.append(
        KEY,
        &[tool_use(s, "m7", "t7", "Grep"), tool_result(s, "t7", true)],
    );
    run(&server, "tool_errors").await;
    assert_eq!(lessons().await.len(), 3);

    // Processing the same transcript again records no burst twice.
    server
        .processors_client()
        .reset_processor_state(pb::ResetProcessorStateRequest {
            processor: "tool_errors".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(run(&server, "tool_errors").await.processed, 2);
    assert_eq!(lessons().await.len(), 3);
}
