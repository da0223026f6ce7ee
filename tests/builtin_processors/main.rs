//! The built-in processors through the real server: `usage` totals equal a
//! hand-computed count of a realistic multi-session transcript set (repeated
//! message ids, malformed lines, several models), GetUsage's filters and
//! pages, usage on Sessions; `tool_errors` counts and burst lessons.
//!
//! - usage: totals, a batch stored together, GetUsage's pages, a growing message;
//! - sessions: usage on Sessions;
//! - tool_errors: counts per tool and burst lessons.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/transcripts.rs"]
mod transcripts;

mod sessions;
mod tool_errors;
mod usage;

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
