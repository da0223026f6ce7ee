//! Usage counted across transcripts, through the real server: a response
//! that `claude --resume` repeats in a new transcript counts once, in one
//! transcript, whatever order the transcripts arrive in; `<synthetic>` lines
//! are no model. And bosun's totals per model, per session and overall equal
//! those of `ccusage` (pinned in scripts/lib/toolchain.sh) on a generated
//! corpus in Claude Code's shape (tests/common/claude_corpus.rs).
//!
//! - resumed: repeated responses count once, whatever the arrival order;
//!   synthetic lines; a deleted transcript's copies;
//! - ccusage: bosun's totals equal ccusage's on the generated corpus.

#[path = "../common/claude_corpus.rs"]
mod claude_corpus;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/transcripts.rs"]
mod transcripts;

mod ccusage;
mod resumed;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bosun::pb::{self, GetUsageRequest, RunProcessorRequest, TokenUsage};
use common::TestServer;
use serde_json::{Value, json};
use transcripts::Transcripts;

const HOUR: Duration = Duration::from_secs(3600);
const SONNET: &str = "claude-sonnet-4-5";
const HAIKU: &str = "claude-haiku-4-5";
const ORIGINAL: &str = "-home-dev-api/b7e1.jsonl";
const RESUMED: &str = "-home-dev-api/4c02.jsonl";

/// Input, output, cache creation, cache read.
type Tokens = (i64, i64, i64, i64);

fn tokens_of(usage: &TokenUsage) -> Tokens {
    (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )
}

/// An assistant line of response (`id`, `request`) with its usage.
fn line(session: &str, id: &str, request: &str, model: &str, usage: Tokens) -> String {
    let (input, output, created, read) = usage;
    json!({
        "type": "assistant", "sessionId": session, "requestId": request,
        "timestamp": "2025-11-02T10:00:00.000Z",
        "message": {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "on it"}],
            "usage": {"input_tokens": input, "output_tokens": output,
                "cache_creation_input_tokens": created, "cache_read_input_tokens": read}}
    })
    .to_string()
}

fn original_lines() -> Vec<String> {
    vec![
        line("b7e1", "msg_1", "req_1", SONNET, (10, 3, 100, 1000)),
        line("b7e1", "msg_1", "req_1", SONNET, (10, 40, 100, 1000)),
        line("b7e1", "msg_2", "req_2", HAIKU, (5, 7, 0, 2000)),
    ]
}

/// The resume repeats the original's responses (the first one only as its
/// partial line), then goes on.
fn resumed_lines() -> Vec<String> {
    vec![
        line("4c02", "msg_1", "req_1", SONNET, (10, 3, 100, 1000)),
        line("4c02", "msg_2", "req_2", HAIKU, (5, 7, 0, 2000)),
        line("4c02", "msg_3", "req_3", SONNET, (1, 2, 3, 4)),
    ]
}

async fn run_usage(server: &TestServer) -> pb::ProcessorRun {
    server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "usage".into(),
        })
        .await
        .expect("run")
        .into_inner()
}

/// Every transcript's usage (all pages), and the totals.
async fn all_usage(
    server: &TestServer,
    filter: GetUsageRequest,
) -> (Vec<pb::TranscriptUsage>, pb::GetUsageResponse) {
    let mut client = server.processors_client();
    let mut transcripts = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .get_usage(GetUsageRequest {
                page_size: 1000,
                page_token,
                ..filter.clone()
            })
            .await
            .expect("get usage")
            .into_inner();
        transcripts.extend(page.transcripts.clone());
        if page.next_page_token.is_empty() {
            return (transcripts, page);
        }
        page_token = page.next_page_token;
    }
}

fn by_transcript(transcripts: &[pb::TranscriptUsage]) -> BTreeMap<String, (Tokens, i64)> {
    transcripts
        .iter()
        .map(|t| {
            let usage = t.usage.unwrap();
            (t.transcript.clone(), (tokens_of(&usage), usage.messages))
        })
        .collect()
}

async fn start(transcripts: &Transcripts) -> TestServer {
    let dir = transcripts.path();
    TestServer::start_with(move |config| config.processors.transcripts_dir = dir).await
}
