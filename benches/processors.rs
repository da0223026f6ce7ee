//! Processors at fleet scale: a pass over 10,000 Claude Code transcripts
//! (first pass, then a stable re-pass), each against a baseline measured in
//! the same run on the same files:
//!
//! - first pass vs. reading and hashing every file with the same number of
//!   threads (the least any first pass must do);
//! - stable re-pass vs. listing the folder and stat'ing every file (the least
//!   any pass must do to notice a change).
//!
//! Run: `cargo bench --bench processors` (BOSUN_BENCH_TRANSCRIPTS changes the
//! count). The page cache is warm for baselines and passes alike.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bosun::lessons::{Journal, JournalSettings};
use bosun::processors::{
    self, ProcessorSettings, ProcessorsService, Transcript, transcript, usage,
};
use bosun::storage::Db;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const OWNERS: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::var("BOSUN_BENCH_TRANSCRIPTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let transcripts = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let bytes = generate(transcripts.path(), count)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "{count} transcripts, {:.1} MB, {threads} threads",
        bytes as f64 / 1e6
    );

    let read_and_hash = time(|| read_all(transcripts.path(), threads, Work::Hash));
    let read_hash_count = time(|| read_all(transcripts.path(), threads, Work::HashAndCount));
    let stat_all = time(|| transcript::list(transcripts.path()).map(|listed| listed.len()));

    let db = Db::open(data.path()).await?;
    let journal = Journal::new(db.clone(), JournalSettings::default());
    let settings = ProcessorSettings {
        enabled: true,
        cadence: Duration::from_secs(3600),
        max_transcripts_per_pass: 0,
        time_budget: Duration::ZERO,
        quarantine_after_failures: 5,
    };
    let registrations = processors::builtin(settings, settings, 5, journal);
    let (service, scheduler) =
        ProcessorsService::new(db.clone(), transcripts.path().to_path_buf(), registrations)?;
    let stop = CancellationToken::new();
    let workers = tokio::spawn(scheduler.run(stop.clone()));

    println!();
    println!("| pass | time | baseline | baseline time | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for name in ["usage", "tool_errors"] {
        let started = Instant::now();
        let first = service.run(name).await?;
        let first_time = started.elapsed();
        anyhow::ensure!(
            first.counts.processed == count as i64,
            "first pass: {first:?}"
        );
        let started = Instant::now();
        let again = service.run(name).await?;
        let again_time = started.elapsed();
        anyhow::ensure!(
            again.counts.skipped_unchanged == count as i64,
            "re-pass: {again:?}"
        );
        row(
            &format!("{name}: first pass"),
            first_time,
            "read + hash every file",
            read_and_hash,
        );
        if name == "usage" {
            row(
                "usage: first pass",
                first_time,
                "read + hash + count usage of every file",
                read_hash_count,
            );
        }
        row(
            &format!("{name}: stable re-pass"),
            again_time,
            "list + stat every file",
            stat_all,
        );
    }
    stop.cancel();
    workers.await?;
    db.close().await;
    Ok(())
}

fn row(pass: &str, took: Duration, baseline: &str, baseline_took: Duration) {
    println!(
        "| {pass} | {:.0} ms | {baseline} | {:.0} ms | {:.1}x |",
        took.as_secs_f64() * 1e3,
        baseline_took.as_secs_f64() * 1e3,
        took.as_secs_f64() / baseline_took.as_secs_f64()
    );
}

/// The best of three runs of `work`.
fn time<T>(mut work: impl FnMut() -> std::io::Result<T>) -> Duration {
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
enum Work {
    Hash,
    /// Hash, then count usage as the usage processor does (no storage).
    HashAndCount,
}

fn read_all(dir: &Path, threads: usize, work: Work) -> std::io::Result<usize> {
    let files: Vec<_> = transcript::list(dir)?
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
fn generate(dir: &Path, count: usize) -> anyhow::Result<u64> {
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let mut total = 0;
    for index in 0..count {
        let owner = dir.join(format!("-home-dev-project-{}", index % OWNERS));
        std::fs::create_dir_all(&owner)?;
        let session = format!("{index:08x}-5a1e-4c2b-9d3f-0123456789ab");
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

/// One session: a prompt, then turns of an assistant message (text and a
/// tool call, written as two lines) and the tool's result.
fn session_lines(session: &str, seed: usize) -> String {
    let models = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"];
    let output = "x".repeat(400);
    let mut lines = vec![
        json!({"type": "user", "sessionId": session, "cwd": "/home/dev/project",
        "message": {"role": "user", "content": "fix the flaky test in the payment service"}}),
    ];
    for turn in 0..12 {
        let id = format!("msg_{seed}_{turn}");
        let usage = json!({"input_tokens": 3 + turn, "output_tokens": 120 + turn,
            "cache_creation_input_tokens": 500, "cache_read_input_tokens": 12_000 + seed % 1000});
        let model = models[(seed + turn) % models.len()];
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
