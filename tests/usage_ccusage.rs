//! Usage counted across transcripts, through the real server: a response
//! that `claude --resume` repeats in a new transcript counts once, in one
//! transcript, whatever order the transcripts arrive in; `<synthetic>` lines
//! are no model. And bosun's totals per model, per session and overall equal
//! those of `ccusage` (pinned in scripts/lib/toolchain.sh) on a generated
//! corpus in Claude Code's shape (tests/common/claude_corpus.rs).

#[path = "common/claude_corpus.rs"]
mod claude_corpus;
mod common;
#[path = "common/transcripts.rs"]
mod transcripts;

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

#[tokio::test]
async fn a_resumed_session_counts_its_repeated_responses_once() {
    let transcripts = Transcripts::new();
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    transcripts.write_old(RESUMED, &resumed_lines(), HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;

    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    // msg_1 counts where its largest line is (the original); msg_2 is
    // equal in both: the transcript whose key sorts first (the resume).
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([
            (RESUMED.to_string(), ((6, 9, 3, 2004), 2)),
            (ORIGINAL.to_string(), ((10, 40, 100, 1000), 1)),
        ])
    );
    assert_eq!(tokens_of(&all.total.unwrap()), (16, 49, 103, 3004));
    assert_eq!(all.total.unwrap().messages, 3);
    let models: Vec<(String, Tokens)> = all
        .by_model
        .iter()
        .map(|m| (m.model.clone(), tokens_of(&m.usage.unwrap())))
        .collect();
    assert_eq!(
        models,
        [
            (HAIKU.to_string(), (5, 7, 0, 2000)),
            (SONNET.to_string(), (11, 42, 103, 1004))
        ]
    );
    let (_, resumed_session) = all_usage(
        &server,
        GetUsageRequest {
            session_id: "4c02".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tokens_of(&resumed_session.total.unwrap()), (6, 9, 3, 2004));
}

#[tokio::test]
async fn which_transcript_counts_a_response_does_not_depend_on_arrival_order() {
    // One pass per transcript, in either order (each stored alone), and
    // both in one pass (stored as one batch).
    let arrivals: [&[&[&str]]; 3] = [
        &[&[ORIGINAL], &[RESUMED]],
        &[&[RESUMED], &[ORIGINAL]],
        &[&[ORIGINAL, RESUMED]],
    ];
    let mut outcomes = Vec::new();
    for passes in arrivals {
        let transcripts = Transcripts::new();
        let server = start(&transcripts).await;
        for keys in passes {
            for &key in *keys {
                let lines = if key == ORIGINAL {
                    original_lines()
                } else {
                    resumed_lines()
                };
                transcripts.write_old(key, &lines, HOUR);
            }
            let pass = run_usage(&server).await;
            assert_eq!(pass.processed, keys.len() as i64);
        }
        // The resume goes on: only it is read again.
        transcripts.append(
            RESUMED,
            &[line("4c02", "msg_4", "req_4", HAIKU, (1, 1, 1, 1))],
        );
        transcripts.set_mtime(RESUMED, std::time::SystemTime::now());
        let pass = run_usage(&server).await;
        assert_eq!((pass.processed, pass.skipped_unchanged), (1, 1));
        let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
        outcomes.push((by_transcript(&listed), tokens_of(&all.total.unwrap())));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0], outcomes[2]);
    assert_eq!(outcomes[0].1, (17, 50, 104, 3005));
    assert_eq!(outcomes[0].0[RESUMED], ((7, 10, 4, 2005), 3));
}

#[tokio::test]
async fn synthetic_api_errors_are_no_model_and_no_message() {
    let transcripts = Transcripts::new();
    let error = json!({
        "type": "assistant", "sessionId": "b7e1", "isApiErrorMessage": true,
        "timestamp": "2025-11-02T10:00:00.000Z",
        "message": {"id": "4b1c-uuid", "model": "<synthetic>", "role": "assistant",
            "content": [{"type": "text", "text": "API Error: 529 overloaded"}],
            "usage": {"input_tokens": 0, "output_tokens": 0,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    })
    .to_string();
    let mut lines = original_lines();
    lines.push(error);
    transcripts.write_old(ORIGINAL, &lines, HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;
    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    let models: Vec<&str> = all.by_model.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(models, [HAIKU, SONNET]);
    assert_eq!(listed[0].usage.unwrap().messages, 2);
}

#[tokio::test]
async fn a_deleted_transcripts_responses_count_where_a_copy_is_left() {
    let transcripts = Transcripts::new();
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    transcripts.write_old(RESUMED, &resumed_lines(), HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;

    transcripts.remove(ORIGINAL);
    let pass = run_usage(&server).await;
    assert_eq!((pass.scanned, pass.processed), (1, 0));
    // msg_1 now counts in the resume, as its partial copy: the only one
    // left; msg_2 and msg_3 counted there already.
    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([(RESUMED.to_string(), ((16, 12, 103, 3004), 3))])
    );
    assert_eq!(tokens_of(&all.total.unwrap()), (16, 12, 103, 3004));

    // Back again (restored from a backup): as before it went.
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    run_usage(&server).await;
    let (listed, _) = all_usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([
            (RESUMED.to_string(), ((6, 9, 3, 2004), 2)),
            (ORIGINAL.to_string(), ((10, 40, 100, 1000), 1)),
        ])
    );
}

/// The pinned ccusage, installed by the test tooling; `None` when it cannot
/// be installed (outside CI only: in CI that fails the test).
fn ccusage() -> Option<PathBuf> {
    static INSTALLED: OnceLock<Option<PathBuf>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let status = Command::new("bash")
                .arg("-c")
                .arg("source scripts/lib/toolchain.sh && ensure_ccusage")
                .current_dir(&root)
                .status();
            let binary = root.join(".tools/ccusage/node_modules/.bin/ccusage");
            match status {
                Ok(status) if status.success() && binary.exists() => Some(binary),
                other => {
                    let message = format!("ccusage could not be installed: {other:?}");
                    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
                    eprintln!("{message}; skipping the comparison (CI=true fails instead)");
                    None
                }
            }
        })
        .clone()
}

/// `ccusage <report> --json --offline` over the corpus.
fn ccusage_report(binary: &PathBuf, corpus: &claude_corpus::Corpus, report: &str) -> Value {
    let output = Command::new(binary)
        .args([report, "--json", "--offline"])
        .env("CLAUDE_CONFIG_DIR", corpus.config_dir())
        .env("TZ", "UTC")
        .output()
        .expect("ccusage runs");
    assert!(
        output.status.success(),
        "ccusage {report}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ccusage prints JSON")
}

fn json_tokens(value: &Value) -> Tokens {
    let field = |name: &str| {
        value[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} in {value}"))
    };
    (
        field("inputTokens"),
        field("outputTokens"),
        field("cacheCreationTokens"),
        field("cacheReadTokens"),
    )
}

fn json_models(value: &Value) -> BTreeMap<String, Tokens> {
    value["modelBreakdowns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["modelName"].as_str().unwrap().to_string(), json_tokens(m)))
        .collect()
}

fn add(total: &mut Tokens, more: Tokens) {
    total.0 += more.0;
    total.1 += more.1;
    total.2 += more.2;
    total.3 += more.3;
}

/// Every copy of each (message id, request id) in the corpus: the
/// transcript holding it and its input + output tokens.
type Copies = BTreeMap<(String, String), Vec<(String, u64)>>;

fn copies(corpus: &claude_corpus::Corpus) -> Copies {
    let mut copies = Copies::new();
    for key in &corpus.keys {
        let content = std::fs::read_to_string(corpus.projects_dir().join(key)).unwrap();
        for line in content.lines() {
            let Ok(line) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let usage = &line["message"]["usage"];
            let (Some(id), Some(input)) = (
                line["message"]["id"].as_str(),
                usage["input_tokens"].as_u64(),
            ) else {
                continue;
            };
            let total = input + usage["output_tokens"].as_u64().unwrap_or(0);
            let request = line["requestId"].as_str().unwrap_or_default().to_string();
            copies
                .entry((id.to_string(), request))
                .or_default()
                .push((key.clone(), total));
        }
    }
    copies
}

/// How many (message id, request id) keys the corpus repeats across
/// transcripts, and how many lines carry a partial copy (fewer tokens than
/// the key's largest): the cases a per-file or first-line count gets wrong.
fn repeats(copies: &Copies) -> (usize, usize) {
    let across = copies
        .values()
        .filter(|c| c.iter().any(|(key, _)| key != &c[0].0))
        .count();
    let partial = copies
        .values()
        .map(|c| {
            let largest = c.iter().map(|(_, total)| *total).max().unwrap_or(0);
            c.iter().filter(|(_, total)| *total < largest).count()
        })
        .sum();
    (across, partial)
}

/// Transcripts holding the largest copy of a response that another
/// transcript also has (the copy that counts), `n` of them: deleting one
/// moves its responses to the copies left.
fn holders_of_repeated_responses(copies: &Copies, n: usize) -> Vec<String> {
    let mut holders = std::collections::BTreeSet::new();
    for copies in copies.values() {
        let largest = copies
            .iter()
            .map(|(key, total)| (std::cmp::Reverse(*total), key))
            .min();
        if let Some((_, holder)) = largest
            && copies.iter().any(|(key, _)| key != holder)
        {
            holders.insert(holder.clone());
        }
    }
    holders.into_iter().take(n).collect()
}

/// bosun's usage equals ccusage's on the corpus folder as it is now: per
/// session and model, per model, in total (session and daily reports), and
/// through the session filter.
async fn assert_agrees(
    server: &TestServer,
    binary: &PathBuf,
    corpus: &claude_corpus::Corpus,
    label: &str,
) {
    let (listed, all) = all_usage(server, GetUsageRequest::default()).await;
    let sessions = ccusage_report(binary, corpus, "session");
    let expected: BTreeMap<String, (Tokens, BTreeMap<String, Tokens>)> = sessions["session"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id = s["period"].as_str().unwrap().to_string();
            (id, (json_tokens(s), json_models(s)))
        })
        .collect();
    let mut actual = BTreeMap::new();
    let mut per_model: BTreeMap<String, Tokens> = BTreeMap::new();
    for transcript in &listed {
        let usage = tokens_of(&transcript.usage.unwrap());
        let models: BTreeMap<String, Tokens> = transcript
            .by_model
            .iter()
            .map(|m| (m.model.clone(), tokens_of(&m.usage.unwrap())))
            .collect();
        for (model, tokens) in &models {
            add(per_model.entry(model.clone()).or_default(), *tokens);
        }
        if usage != (0, 0, 0, 0) {
            actual.insert(transcript.session_id.clone(), (usage, models));
        }
    }
    assert_eq!(actual, expected, "{label}: per session and model");
    let mut ccusage_models: BTreeMap<String, Tokens> = BTreeMap::new();
    for (_, models) in expected.values() {
        for (model, tokens) in models {
            add(ccusage_models.entry(model.clone()).or_default(), *tokens);
        }
    }
    let bosun_models: BTreeMap<String, Tokens> = all
        .by_model
        .iter()
        .map(|m| (m.model.clone(), tokens_of(&m.usage.unwrap())))
        .collect();
    assert_eq!(bosun_models, ccusage_models, "{label}: per model");
    assert_eq!(bosun_models, per_model, "{label}: totals agree with pages");
    let total = tokens_of(&all.total.unwrap());
    assert_eq!(total, json_tokens(&sessions["totals"]), "{label}: corpus");
    let daily = ccusage_report(binary, corpus, "daily");
    assert_eq!(total, json_tokens(&daily["totals"]), "{label}: daily");

    // Per agent session, through the session filter.
    for (session_id, (tokens, _)) in expected.iter().take(4) {
        let (_, one) = all_usage(
            server,
            GetUsageRequest {
                session_id: session_id.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            tokens_of(&one.total.unwrap()),
            *tokens,
            "{label}: {session_id}"
        );
    }
}

#[tokio::test]
async fn usage_equals_ccusage_on_a_generated_claude_code_corpus() {
    let Some(binary) = ccusage() else {
        return;
    };
    for seed in [7, 2026] {
        let corpus = claude_corpus::generate(seed);
        let copies = copies(&corpus);
        let (across, partial) = repeats(&copies);
        assert!(
            across >= 50 && partial >= 100,
            "seed {seed}: {across} {partial}"
        );
        let dir = corpus.projects_dir();
        let server =
            TestServer::start_with(move |config| config.processors.transcripts_dir = dir).await;
        let pass = run_usage(&server).await;
        assert_eq!(pass.processed as usize, corpus.keys.len(), "seed {seed}");
        assert!(
            pass.malformed_lines >= 2,
            "seed {seed}: the cut-off and junk lines"
        );
        assert_agrees(&server, &binary, &corpus, &format!("seed {seed}")).await;

        // Transcripts deleted (Claude Code cleans up old ones), among them
        // holders of the counted copy of a repeated response: the next pass
        // forgets them, and the totals are still ccusage's on the folder.
        let gone = holders_of_repeated_responses(&copies, 5);
        assert_eq!(gone.len(), 5, "seed {seed}");
        for key in &gone {
            std::fs::remove_file(corpus.projects_dir().join(key)).unwrap();
        }
        let pass = run_usage(&server).await;
        assert_eq!(
            (pass.scanned as usize, pass.processed),
            (corpus.keys.len() - gone.len(), 0),
            "seed {seed}: only forgetting"
        );
        assert_agrees(
            &server,
            &binary,
            &corpus,
            &format!("seed {seed}, 5 deleted"),
        )
        .await;
    }
}
