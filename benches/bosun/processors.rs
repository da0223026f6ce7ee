//! Processors at fleet scale: a first pass and a stable re-pass of each
//! built-in processor over 10,000 transcripts, run with Processors.
//! RunProcessor on a real bosun, against baselines on the same files (the
//! page cache is warm for baselines and passes alike). Then the usage first
//! pass's cost per transcript on 1,000 and on 20,000 of them, which should
//! not grow with the fleet.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use bosun::pb;
use bosun::pb::processors_client::ProcessorsClient;
use bosun::storage::DB_FILE;

use crate::daemon::Bosun;
use crate::report::{Row, Target};
use crate::transcripts::{self, Work};
use crate::{ceiling, cpu};

pub async fn measure(root: &Path, count: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = root.join("transcripts");
    let bytes = transcripts::generate(&dir, count)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mb = bytes as f64 / 1e6;
    println!("processors: {count} transcripts, {mb:.1} MB, {threads} threads");
    let read_and_hash = transcripts::time(|| transcripts::read_all(&dir, threads, Work::Hash));
    let cpu_before = cpu::own()?;
    let read_hash_count =
        transcripts::time(|| transcripts::read_all(&dir, threads, Work::HashAndCount));
    // transcripts::time runs it three times.
    let no_storage_cpu = cpu::per_call(cpu::own()? - cpu_before, 3 * count as u64);
    let stat_all = transcripts::time(|| {
        bosun::processors::transcript::list(&dir).map(|listing| listing.transcripts.len())
    });

    let bosun = Bosun::start(&root.join("processors"), &config(&dir)).await?;
    let mut client = ProcessorsClient::new(bosun.process.connections(1).await?.remove(0));
    for name in ["usage", "tool_errors"] {
        let (first, used) = cpu::during(bosun.process.pid(), run(&mut client, name)).await;
        let (first, first_time) = first?;
        ensure!(first.processed == count as i64, "first pass: {first:?}");
        let (again, again_time) = run(&mut client, name).await?;
        ensure!(
            again.skipped_unchanged == count as i64,
            "re-pass: {again:?}"
        );
        let rate = mb / first_time.as_secs_f64();
        rows.push(
            Row::value(format!("processors: {name} first pass"), rate, "MB/s")
                .against(
                    "read + SHA-256 every file",
                    rate,
                    mb / read_and_hash.as_secs_f64(),
                )
                .target(Target::AtLeast(200.0, "MB/s"), rate),
        );
        if name == "usage" {
            let no_storage = mb / read_hash_count.as_secs_f64();
            rows.push(Row::compare(
                "read + hash + count usage, no storage",
                rate,
                no_storage,
            ));
            let costs = Costs {
                server: cpu::per_call(used.server_total(), count as u64),
                writer: cpu::per_call(used.thread("bosun-writer"), count as u64),
                no_storage: no_storage_cpu,
                c_api: ceiling::usage_first_pass(&root.join("ceiling-usage"), count).await?,
            };
            costs.push_rows(rows, mb / count as f64, threads, no_storage);
        }
        let ms = again_time.as_secs_f64() * 1e3;
        rows.push(
            Row::value(format!("processors: {name} stable re-pass"), ms, "ms")
                .against("list + stat every file", ms, stat_all.as_secs_f64() * 1e3)
                .target(Target::AtMost(100.0, "ms"), ms),
        );
    }
    bosun.process.stop();
    per_transcript_cost(root, rows).await
}

/// What a usage first pass costs per transcript, in microseconds of CPU,
/// and what that leaves two cores.
struct Costs {
    /// The server's during the pass, all threads.
    server: f64,
    /// Of it, the writer thread's (it stores every batch, one at a time).
    writer: f64,
    /// Reading, hashing and counting with no storage (the baseline).
    no_storage: f64,
    /// Storing the pass's rows through SQLite's C API, a transcript at a
    /// time on one thread.
    c_api: f64,
}

impl Costs {
    /// The CPU row, the C API's storing beside the writer's, and the most
    /// `cores` cores allow when the work around storing costs what the
    /// baseline's does and storing costs the cheaper of the two on one
    /// thread (SQLite has one writer): each transcript needs its share of
    /// both on the cores, and its storing on the one writer.
    fn push_rows(&self, rows: &mut Vec<Row>, mb_each: f64, cores: usize, no_storage: f64) {
        rows.push(Row::cpu(
            "  CPU per transcript: server (its writer thread) / read + hash + count, no storage",
            self.server,
            self.writer,
            self.no_storage,
        ));
        rows.push(
            Row::value(
                "  storing its rows through SQLite's C API in-process, a transcript at a time",
                self.c_api,
                "µs",
            )
            .against("bosun's writer thread", self.c_api, self.writer),
        );
        let storing = self.c_api.min(self.writer);
        let micros = storing.max((self.no_storage + storing) / cores as f64);
        let bound = mb_each * 1e6 / micros;
        rows.push(
            Row::value(
                format!("  the most {cores} cores allow: that work plus the cheaper storing"),
                bound,
                "MB/s",
            )
            .against("read + hash + count usage, no storage", bound, no_storage),
        );
    }
}

/// bosun's config for passes over `dir` with no time budget.
fn config(dir: &Path) -> String {
    format!(
        "{}[processors]\ntranscripts_dir = {:?}\n",
        crate::QUIET
            .replace(
                "[processors.usage]",
                "[processors.usage]\ntime_budget = \"0s\""
            )
            .replace(
                "[processors.tool_errors]",
                "[processors.tool_errors]\ntime_budget = \"0s\""
            ),
        dir.display().to_string()
    )
}

/// The usage first pass per transcript on a small and a large fleet, each
/// on a fresh bosun, alone and until its writes are checkpointed: the
/// larger must not cost more than 20% more each, the same work measured.
async fn per_transcript_cost(root: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let (mut costs, mut stored) = (Vec::new(), Vec::new());
    for count in [1_000, 20_000] {
        let dir = root.join(format!("transcripts-{count}"));
        transcripts::generate(&dir, count)?;
        let data_dir = root.join(format!("processors-{count}"));
        let bosun = Bosun::start(&data_dir, &config(&dir)).await?;
        let mut client = ProcessorsClient::new(bosun.process.connections(1).await?.remove(0));
        let (first, time) = run(&mut client, "usage").await?;
        ensure!(first.processed == count as i64, "first pass: {first:?}");
        let copied = checkpoint(&data_dir).await?;
        bosun.process.stop();
        std::fs::remove_dir_all(&dir)?;
        costs.push((count, time.as_secs_f64() * 1e6 / count as f64));
        stored.push((time + copied).as_secs_f64() * 1e6 / count as f64);
    }
    let [(small, small_cost), (large, large_cost)] = costs[..] else {
        unreachable!("two fleet sizes")
    };
    rows.push(Row::value(
        format!("processors: usage first pass per transcript, {small} transcripts"),
        small_cost,
        "µs",
    ));
    rows.push(
        Row::value(
            format!("processors: usage first pass per transcript, {large} transcripts"),
            large_cost,
            "µs",
        )
        .against(&format!("{small} transcripts"), large_cost, small_cost),
    );
    // The target holds the passes to the same work: until their writes are
    // in the database file. The server's checkpointer copies the WAL there
    // 200 ms after commits, so the small pass (under 100 ms) ends before
    // its first copy and the large one pays for ten or more.
    rows.push(Row::value(
        format!("  the same until its writes are checkpointed, {small} transcripts"),
        stored[0],
        "µs",
    ));
    rows.push(
        Row::value(
            format!("  the same until its writes are checkpointed, {large} transcripts"),
            stored[1],
            "µs",
        )
        .against(&format!("{small} transcripts"), stored[1], stored[0])
        .target(Target::RatioAtMost(1.2), stored[1]),
    );
    Ok(())
}

/// How long copying what is left of the WAL into the database file takes
/// (a FULL checkpoint waits for one the server's checkpointer has begun).
async fn checkpoint(data_dir: &Path) -> anyhow::Result<Duration> {
    use sqlx::Connection;
    let url = format!("sqlite://{}", data_dir.join(DB_FILE).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let started = Instant::now();
    sqlx::query("PRAGMA wal_checkpoint(FULL)")
        .execute(&mut conn)
        .await?;
    let copied = started.elapsed();
    conn.close().await?;
    Ok(copied)
}

async fn run(
    client: &mut ProcessorsClient<tonic::transport::Channel>,
    name: &str,
) -> anyhow::Result<(pb::ProcessorRun, Duration)> {
    let started = Instant::now();
    let run = client
        .run_processor(pb::RunProcessorRequest { name: name.into() })
        .await?
        .into_inner();
    Ok((run, started.elapsed()))
}
