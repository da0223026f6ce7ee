//! A deterministic corpus of Claude Code transcripts in the shape Claude
//! Code writes them (`<config>/projects/<project-dir>/<session>.jsonl`), with
//! the ugly cases real folders hold: one line per content block repeating
//! `message.id`, `requestId` and `usage` (identical final usage, or streamed
//! partial `output_tokens` before the final count), sidechain (Task tool)
//! conversations and a sidechain replay of a main-chain message, a Task
//! result's `toolUseResult.usage` (not an API usage), `<synthetic>` API error
//! messages, cache writes split into `ephemeral_5m`/`ephemeral_1h`, several
//! models per session, resumed sessions repeating their history (a resume
//! of a resume, a resume whose name sorts before the original's, a resume of
//! a transcript cut off mid-response), lines without `requestId` (older
//! Claude Code), malformed and cut-off lines, empty files.

#![allow(dead_code)]

#[path = "claude_lines.rs"]
mod lines;

use std::path::{Path, PathBuf};

use lines::{Generator, Session, Stream};
pub use lines::{HAIKU, OPUS, SONNET};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A generated Claude config dir: `projects/` holds the transcripts.
pub struct Corpus {
    root: TempDir,
    /// Every transcript written, as "project/session.jsonl".
    pub keys: Vec<String>,
}

impl Corpus {
    /// The dir `CLAUDE_CONFIG_DIR` names.
    pub fn config_dir(&self) -> &Path {
        self.root.path()
    }

    /// The dir bosun's processors read (`transcripts_dir`).
    pub fn projects_dir(&self) -> PathBuf {
        self.root.path().join("projects")
    }
}

/// Writes the corpus of `seed`.
pub fn generate(seed: u64) -> Corpus {
    let mut g = Generator {
        rng: StdRng::seed_from_u64(seed),
        clock: 1_761_955_200_000, // 2025-11-01
    };
    let mut sessions: Vec<Session> = Vec::new();
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();

    // A working session with a Task sidechain, an API error, several models;
    // resumed (the resume's name sorts first), and the resume resumed.
    let mut original = g.session("-home-dev-orchestrator", true);
    original.id = format!("f{}", &original.id[1..]);
    for _ in 0..4 {
        g.turn(&mut original, &[SONNET, HAIKU]);
    }
    g.task(&mut original);
    g.api_error(&mut original);
    g.turn(&mut original, &[OPUS, SONNET]);
    let first = format!("0{}", &g.uuid()[1..]);
    let mut resumed = g.resume(&original, Some(first));
    for _ in 0..3 {
        g.turn(&mut resumed, &[SONNET, HAIKU]);
    }
    let mut again = g.resume(&resumed, None);
    g.turn(&mut again, &[OPUS]);
    g.task(&mut again);
    // A /btw aside replaying a main-chain message under another request id.
    let replay = original
        .lines
        .iter()
        .find(|line| line.contains("\"requestId\""))
        .map(|line| {
            let mut line: Value = serde_json::from_str(line).unwrap();
            line["isSidechain"] = json!(true);
            line["requestId"] = json!(format!("req_011CT{}", g.token(18)));
            line["sessionId"] = json!(again.id);
            line.to_string()
        })
        .unwrap();
    again.lines.push(replay);
    sessions.extend([original, resumed, again]);

    // Cut off mid-response (the process died), then resumed: the resume
    // holds the response's final usage.
    let mut crashed = g.session("-home-dev-orchestrator", true);
    g.turn(&mut crashed, &[SONNET]);
    let blocks = vec![g.thinking(), g.text(), g.text()];
    let model = SONNET;
    g.response(&mut crashed, model, blocks, Stream::CutOff, false);
    let cut = crashed.lines.pop().unwrap();
    let mut after_crash = g.resume(&crashed, None);
    crashed.lines.push(cut.clone());
    let mut full: Value = serde_json::from_str(&cut).unwrap();
    full["message"]["usage"]["output_tokens"] = json!(2999);
    full["sessionId"] = json!(after_crash.id);
    after_crash.lines.push(full.to_string());
    g.turn(&mut after_crash, &[SONNET]);
    crashed.lines.push(cut[..cut.len() / 2].to_string());
    sessions.extend([crashed, after_crash]);

    // Another project: several models, malformed lines; empty files.
    let mut website = g.session("-home-dev-website", true);
    for _ in 0..5 {
        g.turn(&mut website, &[OPUS, SONNET, HAIKU]);
    }
    website.lines.insert(3, "not json at all".into());
    g.api_error(&mut website);
    g.turn(&mut website, &[SONNET]);
    let website_key = format!("{}/{}.jsonl", website.project, website.id);
    sessions.push(website);
    raw.push((format!("-home-dev-website/{}.jsonl", g.uuid()), Vec::new()));
    raw.push((
        format!("-home-dev-website/{}.jsonl", g.uuid()),
        b"\n  \n".to_vec(),
    ));

    // Claude Code before requestId: dedup by message id alone; resumed.
    let mut old = g.session("-home-dev-legacy", false);
    for _ in 0..3 {
        g.turn(&mut old, &[SONNET]);
    }
    let mut old_resumed = g.resume(&old, None);
    g.turn(&mut old_resumed, &[SONNET, HAIKU]);
    sessions.extend([old, old_resumed]);

    // Volume: more sessions of varied length, some resumed.
    for index in 0..8 {
        let mut session = g.session("-tmp-scratch", true);
        for _ in 0..g.rng.random_range(2..12) {
            g.turn(&mut session, &[SONNET, HAIKU, OPUS]);
        }
        if index % 3 == 0 {
            g.task(&mut session);
        }
        if index % 2 == 0 {
            let mut resumed = g.resume(&session, None);
            g.turn(&mut resumed, &[SONNET]);
            sessions.push(resumed);
        }
        sessions.push(session);
    }

    let root = tempfile::tempdir().expect("corpus dir");
    let mut keys = Vec::new();
    let files = sessions
        .into_iter()
        .map(|session| {
            let mut content = session.lines.join("\n");
            content.push('\n');
            (
                format!("{}/{}.jsonl", session.project, session.id),
                content.into_bytes(),
            )
        })
        .chain(raw);
    for (key, content) in files {
        let path = root.path().join("projects").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        keys.push(key);
    }
    assert!(keys.contains(&website_key));
    keys.sort();
    Corpus { root, keys }
}
