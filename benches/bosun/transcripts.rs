//! Transcripts for the processors measurement: 10,000 shaped like Claude
//! Code's, and the baselines a pass is compared with, on the same files:
//! reading and hashing every file on every core (the least a first pass must
//! do) and listing and stat'ing every file (the least any pass must do to
//! notice a change).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bosun::processors::{Transcript, transcript, usage};
use serde_json::json;

/// Project folders the transcripts are spread over.
const OWNERS: usize = 100;

/// The best of three runs of `work`.
pub fn time<T>(mut work: impl FnMut() -> std::io::Result<T>) -> Duration {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            work().expect("baseline");
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// What a baseline does with each file.
#[derive(Clone, Copy, PartialEq)]
pub enum Work {
    Hash,
    /// Hash, then count usage as the usage processor does (no storage).
    HashAndCount,
}

pub fn read_all(dir: &Path, threads: usize, work: Work) -> std::io::Result<usize> {
    let files: Vec<_> = transcript::list(dir)?
        .transcripts
        .into_iter()
        .map(|listed| (dir.join(listed.key.as_str()), listed.key))
        .collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some((path, key)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let content = std::fs::read(path).expect("read");
                    std::hint::black_box(transcript::content_hash(&content));
                    if work == Work::HashAndCount {
                        let read = Transcript::new(key.clone(), content);
                        std::hint::black_box(usage::count(&read));
                    }
                }
            });
        }
    });
    Ok(files.len())
}

/// Writes `count` transcripts shaped like Claude Code's, dated an hour ago;
/// returns their total size.
pub fn generate(dir: &Path, count: usize) -> anyhow::Result<u64> {
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let mut total = 0;
    for index in 0..count {
        let (owner, session) = names(index);
        let owner = dir.join(owner);
        std::fs::create_dir_all(&owner)?;
        let content = session_lines(&session, index);
        total += content.len() as u64;
        let path = owner.join(format!("{session}.jsonl"));
        std::fs::write(&path, content)?;
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(an_hour_ago)?;
    }
    Ok(total)
}

/// The owner folder and session id of transcript `index`.
pub fn names(index: usize) -> (String, String) {
    (
        format!("-home-dev-project-{}", index % OWNERS),
        format!("{index:08x}-5a1e-4c2b-9d3f-0123456789ab"),
    )
}

/// The model that answers `turn` of transcript `index`.
pub fn model(index: usize, turn: usize) -> &'static str {
    const MODELS: [&str; 3] = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"];
    MODELS[(index + turn) % MODELS.len()]
}

/// One session: a prompt, then turns of an assistant message (text and a
/// tool call, written as two lines) and the tool's result.
fn session_lines(session: &str, seed: usize) -> String {
    let output = "x".repeat(400);
    let mut lines = vec![
        json!({"type": "user", "sessionId": session, "cwd": "/home/dev/project",
        "message": {"role": "user", "content": "fix the flaky test in the payment service"}}),
    ];
    for turn in 0..12 {
        let id = format!("msg_{seed}_{turn}");
        let usage = json!({"input_tokens": 3 + turn, "output_tokens": 120 + turn,
            "cache_creation_input_tokens": 500, "cache_read_input_tokens": 12_000 + seed % 1000});
        let model = model(seed, turn);
        let tool = format!("toolu_{seed}_{turn}");
        lines.push(
            json!({"type": "assistant", "sessionId": session, "message": {"id": id,
            "model": model, "role": "assistant", "usage": usage,
            "content": [{"type": "text", "text": "Let me look at the test output first."}]}}),
        );
        lines.push(
            json!({"type": "assistant", "sessionId": session, "message": {"id": id,
            "model": model, "role": "assistant", "usage": usage,
            "content": [{"type": "tool_use", "id": tool, "name": "Bash",
                "input": {"command": "cargo test -p payments"}}]}}),
        );
        lines.push(
            json!({"type": "user", "sessionId": session, "message": {"role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool,
                "is_error": (seed + turn).is_multiple_of(7), "content": output}]}}),
        );
    }
    let mut text = lines
        .iter()
        .map(|line| line.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}
