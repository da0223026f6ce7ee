//! bosun's benchmark suite: a real bosun (the release binary) on a temp data
//! dir, driven over loopback by a tonic load generator in this process.
//! Every figure is printed beside a baseline measured in the same run on the
//! same machine (the transport's null RPC, raw SQLite through the same
//! driver, reading and hashing the same files), and the ratio is the result.
//!
//! Run: `cargo bench --bench bosun` (`-- --help` lists the options;
//! `-- --soak-seconds 600` runs the soak instead; `-- --postgres` adds the
//! PostgreSQL sections on a throwaway cluster, `-- --database-url URL` on a
//! server of yours).

mod ceiling;
mod cpu;
mod daemon;
mod etcd;
mod load;
mod postgres;
mod processors;
mod report;
mod rpc;
mod soak;
mod sqlite;
mod stream;
mod transcripts;
mod unary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use daemon::Bosun;
use load::Window;
use report::{Row, Target};

/// Keeps background loops out of the measurements.
pub const QUIET: &str = "[reconciler]\ninterval = \"1h\"\n\
[processors.usage]\ncadence = \"1h\"\n[processors.tool_errors]\ncadence = \"1h\"\n";

const CONCURRENCIES: [usize; 4] = [1, 16, 64, 256];
/// Concurrencies at which the write and read targets apply.
const TARGET_CONCURRENCY: [usize; 2] = [64, 256];

#[derive(Debug, Parser)]
#[command(about = "bosun's benchmark suite")]
struct Options {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Seconds each load measurement lasts (after a 1s warm-up).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Events replayed to one client.
    #[arg(long, default_value_t = 1_000_000)]
    replay_events: u64,
    /// Transcripts the processors pass over.
    #[arg(long, default_value_t = 10_000)]
    transcripts: usize,
    /// Only these sections (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Section>,
    /// Run the soak instead: mixed load for this many seconds, with memory
    /// and latency sampled every 10s; fails if memory grows after warm-up.
    #[arg(long)]
    soak_seconds: Option<u64>,
    /// Also run the PostgreSQL section (bosun with 1 and 3 replicas, beside
    /// raw PostgreSQL) on the server at this URL; its user needs CREATEDB
    /// (one fresh database per configuration, dropped at the end).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Also run the PostgreSQL section, on a throwaway cluster started for
    /// the run (initdb into a temp dir; needs PostgreSQL's binaries).
    #[arg(long, conflicts_with = "database_url")]
    postgres: bool,
    /// The etcd the etcd section compares with (Debian's etcd-server,
    /// installed by scripts/lib/etcd.sh when this default is missing).
    #[arg(long, env = "BENCH_ETCD", default_value = etcd::DEFAULT_BINARY)]
    etcd: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Section {
    Unary,
    Stream,
    Replay,
    Processors,
    /// Needs `--postgres` or `--database-url`.
    Postgres,
    /// etcd as a peer: writes, Watch delivery and RSS, bosun / etcd.
    Etcd,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        if let Some(seconds) = options.soak_seconds {
            return soak::run(Duration::from_secs(seconds)).await;
        }
        run(options).await
    })
}

async fn run(options: Options) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let window = Window {
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(options.seconds),
    };
    println!(
        "bosun {} benchmark, {}, {} cores, {}s per measurement",
        env!("CARGO_PKG_VERSION"),
        chrono::DateTime::from_timestamp(sqlite::now_micros() / 1_000_000, 0)
            .map(|now| now.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.seconds
    );
    let wanted = |section| options.only.is_empty() || options.only.contains(&section);
    let on_postgres = options.postgres || options.database_url.is_some();
    anyhow::ensure!(
        on_postgres || !options.only.contains(&Section::Postgres),
        "--only postgres needs --postgres (a throwaway cluster) or --database-url URL"
    );
    if wanted(Section::Etcd) {
        etcd::ensure_installed(&options.etcd)?;
    }
    let mut rows = Vec::new();
    if wanted(Section::Unary) {
        unary::measure(root.path(), window, &mut rows).await?;
    }
    if wanted(Section::Stream) {
        change_stream(root.path(), window, &mut rows).await?;
    }
    if wanted(Section::Replay) {
        replay(root.path(), options.replay_events, &mut rows).await?;
    }
    if wanted(Section::Processors) {
        processors::measure(root.path(), options.transcripts, &mut rows).await?;
    }
    if on_postgres && wanted(Section::Postgres) {
        let mut server = postgres::Server::open(options.database_url.as_deref()).await?;
        let measured = postgres::measure(root.path(), &mut server, window, &mut rows).await;
        server.finish().await;
        measured?;
    }
    if wanted(Section::Etcd) {
        etcd::measure(root.path(), &options.etcd, window, &mut rows).await?;
    }
    report::print(&rows);
    Ok(())
}

/// Idle watchers' memory and commit-to-delivery latency.
async fn change_stream(root: &Path, window: Window, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let config = format!("{QUIET}[events]\nprogress_interval = \"500ms\"\n");
    let bosun = Bosun::start(&root.join("stream"), &config).await?;
    let (per_watcher, before, after) = stream::idle_memory(&bosun, 1000).await?;
    let kb = per_watcher / 1e3;
    let mut row = Row::value("memory per idle watcher (1,000 open)", kb, "KB")
        .target(Target::AtMost(20.0, "KB"), kb);
    row.baseline = format!(
        "RSS {:.1} MB before, {:.1} MB after",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    rows.push(row);
    for (watchers, rate) in [(1, 1000), (100, 1000), (1000, 100)] {
        let at = stream::head(bosun.process.connections(1).await?.remove(0)).await?;
        let streams = stream::open(&bosun, watchers, at).await?;
        let delivery = stream::deliver(&bosun, streams, rate, window.measure).await?;
        let p99 = delivery.latency.value_at_quantile(0.99) as f64 / 1e3;
        let mut row = Row::value(
            format!(
                "change stream: {watchers} watcher{}, {rate} events/s, commit to delivery",
                if watchers == 1 { "" } else { "s" }
            ),
            delivery.latency.max() as f64 / 1e3,
            "ms max",
        );
        row.latency = format!(
            "{:.2} / {p99:.2} ms",
            delivery.latency.value_at_quantile(0.5) as f64 / 1e3
        );
        if watchers == 100 {
            row = row.target(Target::AtMost(5.0, "ms p99"), p99);
        }
        rows.push(row);
        let complete = (delivery.watchers - delivery.incomplete) as f64;
        rows.push(
            Row::value(
                format!(
                    "  watchers that got all {} events, each once, in order",
                    delivery.events
                ),
                complete,
                &format!("of {watchers}"),
            )
            .target(Target::AtLeast(watchers as f64, "(all)"), complete),
        );
    }
    bosun.process.stop();
    Ok(())
}

/// Catch-up replay of a long history to one client.
async fn replay(root: &Path, events: u64, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = root.join("replay");
    let filled = sqlite::preload(&dir, events).await?;
    println!(
        "replay: {events} events written in {:.1}s",
        filled.as_secs_f64()
    );
    let scan = sqlite::scan_rate(&dir).await?;
    let bosun = Bosun::start(&dir, QUIET).await?;
    let (rate, took) = stream::replay(&bosun, events as i64).await?;
    let mut row = Row::value(
        format!("replay of {events} events to one client"),
        rate,
        "events/s",
    )
    .against("raw SQLite: read every event", rate, scan)
    .target(Target::AtLeast(100_000.0, "events/s"), rate);
    row.latency = format!("{:.1} s in all", took.as_secs_f64());
    rows.push(row);
    bosun.process.stop();
    Ok(())
}
