//! etcd as a peer (issue 18): the suite starts etcd (Debian's etcd-server,
//! default durability, a temp data dir, loopback ports) beside bosun and
//! drives both with the same load generator, interleaved (bosun, etcd,
//! bosun, etcd): the write rate at 64 writers (RecordLesson against Put);
//! Watch delivery with 1, 100 and 1,000 watchers, from the writer's
//! timestamp taken before the write call to the watcher's receipt, every
//! watcher checked to get every event once, in order; and both servers'
//! RSS, idle and after the runs. Each row prints bosun / etcd, as ranges
//! over the rounds.
//!
//! The client is etcd's own gRPC API: the few messages of its `rpc.proto`
//! used here, written out with prost and called through tonic on the same
//! channels and harness as bosun. (The `etcd-client` crate compiles its
//! protos with prost-build, which needs a system `protoc`; bosun builds
//! without one, and dev-dependencies build for every `cargo test`.)

use std::fs::File;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bosun::pb;
use bosun::pb::lessons_client::LessonsClient;
use futures::StreamExt;
use hdrhistogram::Histogram;
use http::uri::PathAndQuery;
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

use crate::cpu::{self, CpuUse, per_call};
use crate::daemon::{Bosun, rss_of};
use crate::load::{Run, Window, closed_loop, histogram};
use crate::report::{Row, Target, figure};
use crate::sqlite::now_micros;
use crate::stream::{self, Delivery};
use crate::{QUIET, rpc};

/// Where Debian's etcd-server puts etcd.
pub const DEFAULT_BINARY: &str = "/usr/bin/etcd";
/// Concurrent writers in the write-rate comparison.
const WRITERS: usize = 64;
/// Measurements of each system, alternating bosun and etcd.
const ROUNDS: usize = 2;
/// Watchers, and the paced write rate while they watch (as `--only stream`).
const WATCHES: [(usize, u32); 3] = [(1, 1000), (100, 1000), (1000, 100)];
/// Watch streams per connection (as stream.rs).
const STREAMS_PER_CONNECTION: usize = 50;
/// Keys the watchers follow (all of them, nothing else is written there).
const WATCHED: &[u8] = b"bench/watched/";
/// The end of `WATCHED`'s range: its last byte plus one.
const WATCHED_END: &[u8] = b"bench/watched0";

/// Makes sure `binary` exists: runs scripts/lib/etcd.sh (Debian's
/// etcd-server through apt-get, as root) when the default one is missing.
pub fn ensure_installed(binary: &Path) -> anyhow::Result<()> {
    if binary.exists() {
        return Ok(());
    }
    ensure!(
        binary == Path::new(DEFAULT_BINARY),
        "no etcd at {} (--etcd / BENCH_ETCD)",
        binary.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/etcd.sh");
    let installed = Command::new("bash")
        .arg(&script)
        .status()
        .is_ok_and(|status| status.success());
    ensure!(
        installed && binary.exists(),
        "etcd is not installed and {} could not install it: as root, \
         `apt-get install -y etcd-server` (Debian's package), or pass another \
         etcd binary with --etcd (BENCH_ETCD)",
        script.display()
    );
    Ok(())
}

/// bosun against etcd, every figure from the same run, interleaved.
pub async fn measure(
    root: &Path,
    binary: &Path,
    window: Window,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let bosun = Bosun::start(&root.join("peer-bosun"), QUIET).await?;
    let etcd = Etcd::start(binary, &root.join("peer-etcd")).await?;
    println!(
        "etcd peer: etcd {} ({}), ready {:.0} ms after start; bosun {:.0} ms",
        etcd.version,
        binary.display(),
        etcd.ready_after.as_secs_f64() * 1e3,
        bosun.ready_after.as_secs_f64() * 1e3
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = [bosun.rss_bytes()?, etcd.rss_bytes()?];

    let bosun_channels = Arc::new(bosun.connections(rpc::CONNECTIONS).await?);
    let etcd_channels = Arc::new(etcd.connections(rpc::CONNECTIONS).await?);
    let mut writes: [Vec<Run>; 2] = Default::default();
    let mut cpu: [CpuUse; 2] = Default::default();
    for _ in 0..ROUNDS {
        let load = rpc::record_lesson(bosun_channels.clone(), WRITERS, window);
        let (run, used) = cpu::measured(bosun.pid(), window, load).await;
        writes[0].push(run);
        cpu[0].add(&used);
        let load = put(etcd_channels.clone(), WRITERS, window);
        let (run, used) = cpu::measured(etcd.pid(), window, load).await;
        writes[1].push(run);
        cpu[1].add(&used);
    }
    rows.extend(write_rows(&writes, &etcd.version));
    rows.extend(write_cpu_rows(&writes, &cpu));

    for (watchers, rate) in WATCHES {
        let mut deliveries: [Vec<Delivery>; 2] = Default::default();
        for _ in 0..ROUNDS {
            deliveries[0].push(bosun_delivery(&bosun, watchers, rate, window.measure).await?);
            deliveries[1].push(etcd_delivery(&etcd, watchers, rate, window.measure).await?);
        }
        rows.extend(watch_rows(watchers, rate, &deliveries));
    }

    let after = [bosun.rss_bytes()?, etcd.rss_bytes()?];
    for (what, [bosun_rss, etcd_rss]) in [
        ("RSS idle after start-up", idle),
        ("RSS after the runs", after),
    ] {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        // Issue 18's target: bosun's RSS stays below etcd's.
        let mut row = Row::value(format!("peer: {what} (bosun / etcd)"), 0.0, "")
            .against("etcd", mb(bosun_rss), mb(etcd_rss))
            .target(Target::RatioAtMost(1.0), 0.0);
        row.figure = format!("{} / {} MB", figure(mb(bosun_rss)), figure(mb(etcd_rss)));
        rows.push(row);
    }
    bosun.stop();
    etcd.stop();
    Ok(())
}

/// Rate and latency rows of the write comparison.
fn write_rows(runs: &[Vec<Run>; 2], version: &str) -> Vec<Row> {
    let rates = runs
        .each_ref()
        .map(|runs| runs.iter().map(Run::rate).collect::<Vec<_>>());
    let merged = runs.each_ref().map(|runs| {
        let mut all = histogram();
        for run in runs {
            all.add(&run.latency)
                .expect("histograms of the same bounds");
        }
        all
    });
    let mut row = Row::value(
        format!("peer: writes, {WRITERS} writers (RecordLesson / Put)"),
        0.0,
        "",
    )
    .against(
        &format!("etcd {version} Put"),
        mean(&rates[0]),
        mean(&rates[1]),
    )
    .target(Target::RatioAtLeast(1.0), 0.0);
    row.figure = format!("{} / {} /s", range(&rates[0]), range(&rates[1]));
    row.latency = format!(
        "bosun {} / {}, etcd {} / {} ms",
        ms(merged[0].value_at_quantile(0.5)),
        ms(merged[0].value_at_quantile(0.99)),
        ms(merged[1].value_at_quantile(0.5)),
        ms(merged[1].value_at_quantile(0.99)),
    );
    for (system, runs) in ["bosun", "etcd"].into_iter().zip(runs) {
        let errors: u64 = runs.iter().map(|run| run.errors).sum();
        if errors > 0 {
            let first = runs.iter().find_map(|run| run.first_error.as_deref());
            row.figure += &format!(" ({errors} {system} errors: {})", first.unwrap_or(""));
        }
    }
    vec![row]
}

/// Where the writes' CPU went, per write: on two busy cores, the rate is
/// bounded by the cores over the CPU a write costs, the server's and the
/// load generator's.
fn write_cpu_rows(runs: &[Vec<Run>; 2], cpu: &[CpuUse; 2]) -> Vec<Row> {
    let calls = runs
        .each_ref()
        .map(|runs| runs.iter().map(|run| run.calls).sum::<u64>());
    let server = [0, 1].map(|i| per_call(cpu[i].server_total(), calls[i]));
    let load = [0, 1].map(|i| per_call(cpu[i].load, calls[i]));
    let both = [0, 1].map(|i| server[i] + load[i]);
    let writer = per_call(cpu[0].thread("bosun-writer"), calls[0]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pair = |values: [f64; 2], unit: &str| {
        format!("{} / {} {unit}", figure(values[0]), figure(values[1]))
    };
    let row = |what: String, values: [f64; 2], unit: &str| {
        let mut row = Row::value(what, 0.0, "").against("etcd", values[0], values[1]);
        row.figure = pair(values, unit);
        row
    };
    let mut server_row = row(
        "peer: CPU per write, server (bosun / etcd)".into(),
        server,
        "µs",
    );
    server_row.latency = format!(
        "bosun's writer thread {} µs, the rest {} µs",
        figure(writer),
        figure(server[0] - writer)
    );
    vec![
        server_row,
        row("  load generator (bosun / etcd)".into(), load, "µs"),
        row("  both (bosun / etcd)".into(), both, "µs"),
        row(
            format!("  {cores} cores / CPU per write: the rate's bound (bosun / etcd)"),
            both.map(|micros| cores as f64 * 1e6 / micros),
            "/s",
        ),
    ]
}

/// Latency and completeness rows of one watcher count.
fn watch_rows(watchers: usize, rate: u32, deliveries: &[Vec<Delivery>; 2]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, quantile) in [("p50", Some(0.5)), ("p99", Some(0.99)), ("max", None)] {
        let values = deliveries.each_ref().map(|runs| {
            runs.iter()
                .map(|delivery| {
                    let micros = match quantile {
                        Some(q) => delivery.latency.value_at_quantile(q),
                        None => delivery.latency.max(),
                    };
                    micros as f64 / 1e3
                })
                .collect::<Vec<_>>()
        });
        let what = if name == "p50" {
            format!(
                "peer: Watch, {watchers} watcher{}, {rate} writes/s, write call to receipt, p50",
                if watchers == 1 { "" } else { "s" }
            )
        } else {
            format!("  {name}")
        };
        let mut row =
            Row::value(what, 0.0, "").against("etcd Watch", mean(&values[0]), mean(&values[1]));
        if name == "p99" {
            // Issue 18's target: p99 no worse than etcd's.
            row = row.target(Target::RatioAtMost(1.0), 0.0);
        }
        row.figure = format!("{} / {} ms", range(&values[0]), range(&values[1]));
        rows.push(row);
    }
    let complete = deliveries
        .each_ref()
        .map(|runs| runs.iter().map(|d| d.watchers - d.incomplete).min());
    let events = deliveries
        .each_ref()
        .map(|runs| runs.iter().map(|d| d.events as f64).collect::<Vec<_>>());
    let least = complete.iter().flatten().min().copied().unwrap_or(0);
    let mut row = Row::value(
        "  watchers that got every event once, in order (fewest of the rounds)",
        0.0,
        "",
    )
    .target(Target::AtLeast(watchers as f64, "(all)"), least as f64);
    row.figure = format!(
        "{} / {} of {watchers}",
        complete[0].unwrap_or(0),
        complete[1].unwrap_or(0)
    );
    row.baseline = format!(
        "{} / {} events a round",
        range(&events[0]),
        range(&events[1])
    );
    rows.push(row);
    rows
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// "low–high" of the rounds (one figure when they agree).
fn range(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = (figure(low), figure(high));
    if low == high {
        low
    } else {
        format!("{low}–{high}")
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1e3)
}

/// Puts from `concurrency` workers, each value the lesson RecordLesson
/// would carry, each key new.
async fn put(channels: Arc<Vec<Channel>>, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let mut client = Client::new(channels[worker % channels.len()].clone());
        let key = format!("bench/writes/{worker}/{n}").into_bytes();
        let value = rpc::lesson(worker, n).encode_to_vec();
        async move { client.put(key, value).await.map(drop) }
    })
    .await
}

/// `rate` RecordLessons a second to `watchers` Watch streams; each lesson
/// carries the time before its call in its work item id.
async fn bosun_delivery(
    bosun: &Bosun,
    watchers: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Delivery> {
    let writer = bosun.connections(1).await?.remove(0);
    let start = stream::head(writer.clone()).await?;
    let mut followers = Followers::new();
    for stream in stream::open(bosun, watchers, start).await? {
        followers.spawn(move |end| bosun_watcher(stream, start, end));
    }
    let client = LessonsClient::new(writer.clone());
    pace(rate, duration, |n| {
        let mut client = client.clone();
        async move {
            let mut lesson = rpc::lesson(usize::MAX, n);
            lesson.work_item_id = format!("PEER-{}-{n}", now_micros());
            let request = pb::RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(lesson),
            };
            client.record_lesson(request).await.map(drop)
        }
    })
    .await?;
    followers.finish(start, stream::head(writer).await?).await
}

/// `rate` Puts a second to `watchers` Watch streams (one watch each, as
/// bosun's); each value starts with the time before its call.
async fn etcd_delivery(
    etcd: &Etcd,
    watchers: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Delivery> {
    let client = Client::new(etcd.connections(1).await?.remove(0));
    let start = client.clone().revision().await?;
    let channels = etcd
        .connections(watchers.div_ceil(STREAMS_PER_CONNECTION))
        .await?;
    let mut followers = Followers::new();
    for n in 0..watchers {
        let mut stream = Client::new(channels[n / STREAMS_PER_CONNECTION].clone())
            .watch(WatchCreateRequest {
                key: WATCHED.to_vec(),
                range_end: WATCHED_END.to_vec(),
                start_revision: start + 1,
            })
            .await?;
        let created = stream.message().await?.context("etcd ended a new watch")?;
        ensure!(
            created.created,
            "etcd's first watch response was not `created`"
        );
        followers.spawn(move |end| etcd_watcher(stream, start, end));
    }
    let lesson = rpc::lesson(usize::MAX, 0).encode_to_vec();
    pace(rate, duration, |n| {
        let mut client = client.clone();
        let mut key = WATCHED.to_vec();
        key.extend(n.to_string().into_bytes());
        let lesson = lesson.clone();
        async move {
            let mut value = now_micros().to_le_bytes().to_vec();
            value.extend(lesson);
            client.put(key, value).await.map(drop)
        }
    })
    .await?;
    followers
        .finish(start, client.clone().revision().await?)
        .await
}

/// Issues `write(n)` `rate` times a second for `duration`, each on its own
/// task (a slow acknowledgement never slows the pace), and waits for all.
async fn pace<F, Fut>(rate: u32, duration: Duration, write: F) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = JoinSet::new();
    let until = Instant::now() + duration;
    let mut n = 0;
    while Instant::now() < until {
        ticker.tick().await;
        n += 1;
        calls.spawn(write(n));
    }
    while let Some(call) = calls.join_next().await {
        call?.context("a paced write failed")?;
    }
    Ok(())
}

type Seen = anyhow::Result<(u64, Histogram<u64>)>;

/// Watcher tasks, each receiving until the position (bosun's seq, etcd's
/// revision) it is told to stop at.
struct Followers {
    tasks: JoinSet<Seen>,
    end_tx: watch::Sender<i64>,
}

impl Followers {
    fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            end_tx: watch::channel(i64::MAX).0,
        }
    }

    fn spawn<F, Fut>(&mut self, watcher: F)
    where
        F: FnOnce(watch::Receiver<i64>) -> Fut,
        Fut: Future<Output = Seen> + Send + 'static,
    {
        self.tasks.spawn(watcher(self.end_tx.subscribe()));
    }

    /// Waits (60s at most) until every watcher reached `end`; each must have
    /// seen every position after `start` once.
    async fn finish(mut self, start: i64, end: i64) -> anyhow::Result<Delivery> {
        self.end_tx.send_replace(end);
        let expected = (end - start) as u64;
        let mut delivery = Delivery {
            watchers: self.tasks.len(),
            events: expected,
            incomplete: 0,
            latency: histogram(),
        };
        while let Some(seen) = tokio::time::timeout(Duration::from_secs(60), self.tasks.join_next())
            .await
            .context("watchers did not reach the end within 60s")?
        {
            let (events, latency) = seen??;
            if events != expected {
                delivery.incomplete += 1;
            }
            delivery.latency.add(latency)?;
        }
        Ok(delivery)
    }
}

/// A bosun watcher: each seq must follow the last; latency from the time in
/// the lesson's work item id.
async fn bosun_watcher(
    mut stream: Streaming<pb::WatchResponse>,
    mut last: i64,
    mut end: watch::Receiver<i64>,
) -> Seen {
    let (mut events, mut latency) = (0, histogram());
    loop {
        if last >= *end.borrow_and_update() {
            return Ok((events, latency));
        }
        tokio::select! {
            message = stream.message() => {
                let message = message?.with_context(|| format!("bosun ended a watch at {last}"))?;
                let now = now_micros();
                for event in message.events {
                    ensure!(event.seq == last + 1, "seq {} after {last}", event.seq);
                    last = event.seq;
                    events += 1;
                    let Some(pb::event::Payload::Lesson(lesson)) = &event.payload else {
                        bail!("event {last} is not a lesson");
                    };
                    let sent = lesson
                        .work_item_id
                        .split('-')
                        .nth(1)
                        .and_then(|micros| micros.parse::<i64>().ok())
                        .with_context(|| format!("no time in {:?}", lesson.work_item_id))?;
                    latency.saturating_record((now - sent).max(1) as u64);
                }
            }
            changed = end.changed() => changed?,
        }
    }
}

/// An etcd watcher: each revision must follow the last (only the paced
/// writer writes); latency from the time the value starts with.
async fn etcd_watcher(
    mut stream: Streaming<WatchResponse>,
    mut last: i64,
    mut end: watch::Receiver<i64>,
) -> Seen {
    let (mut events, mut latency) = (0, histogram());
    loop {
        if last >= *end.borrow_and_update() {
            return Ok((events, latency));
        }
        tokio::select! {
            message = stream.message() => {
                let message = message?.with_context(|| format!("etcd ended a watch at {last}"))?;
                ensure!(!message.canceled, "etcd cancelled a watch: {}", message.cancel_reason);
                let now = now_micros();
                for event in message.events {
                    let kv = event.kv.unwrap_or_default();
                    ensure!(kv.mod_revision == last + 1, "revision {} after {last}", kv.mod_revision);
                    last = kv.mod_revision;
                    events += 1;
                    let sent = kv
                        .value
                        .first_chunk::<8>()
                        .map(|bytes| i64::from_le_bytes(*bytes))
                        .context("a value without its time")?;
                    latency.saturating_record((now - sent).max(1) as u64);
                }
            }
            changed = end.changed() => changed?,
        }
    }
}

/// The etcd under test: a child process on a temp data dir and loopback
/// ports, its log beside the data dir.
pub struct Etcd {
    child: Child,
    addr: SocketAddr,
    pub version: String,
    /// From spawning the process to its first answered Status.
    pub ready_after: Duration,
}

impl Etcd {
    pub async fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let peer = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let (client_url, peer_url) = (format!("http://{addr}"), format!("http://{peer}"));
        let log: PathBuf = data_dir.with_extension("log");
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut etcd = Self {
            child,
            addr,
            version: String::new(),
            ready_after: Duration::ZERO,
        };
        etcd.version = etcd
            .wait_ready(started)
            .await
            .with_context(|| format!("etcd's log is {}", log.display()))?;
        etcd.ready_after = started.elapsed();
        Ok(etcd)
    }

    /// Polls Maintenance.Status until it answers; returns etcd's version.
    async fn wait_ready(&mut self, started: Instant) -> anyhow::Result<String> {
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait()? {
                bail!("etcd exited at start: {status}");
            }
            if let Ok(channel) = self.endpoint().connect().await
                && let Ok(status) = Client::new(channel).status().await
            {
                return Ok(status.version);
            }
            tokio::task::yield_now().await;
        }
        bail!("etcd did not answer Status within 30s")
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a loopback address is a valid URI")
            .tcp_nodelay(true)
    }

    /// `count` separate HTTP/2 connections.
    pub async fn connections(&self, count: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            channels.push(self.endpoint().connect().await?);
        }
        Ok(channels)
    }

    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_of(self.child.id())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd's v3 gRPC API, the calls the suite makes.
#[derive(Clone)]
struct Client(tonic::client::Grpc<Channel>);

impl Client {
    fn new(channel: Channel) -> Self {
        Self(tonic::client::Grpc::new(channel))
    }

    async fn unary<Q, R>(&mut self, path: &'static str, request: Q) -> Result<R, Status>
    where
        Q: Message + Sync + 'static,
        R: Message + Default + Sync + 'static,
    {
        self.0
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let codec = tonic_prost::ProstCodec::<Q, R>::default();
        let path = PathAndQuery::from_static(path);
        Ok(self
            .0
            .unary(Request::new(request), path, codec)
            .await?
            .into_inner())
    }

    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<PutResponse, Status> {
        self.unary("/etcdserverpb.KV/Put", PutRequest { key, value })
            .await
    }

    /// The store's revision now (a linearizable Range of a key no one
    /// writes; its header carries the revision).
    async fn revision(mut self) -> Result<i64, Status> {
        let request = RangeRequest {
            key: b"bench/none".to_vec(),
        };
        let response: RangeResponse = self.unary("/etcdserverpb.KV/Range", request).await?;
        Ok(response.header.unwrap_or_default().revision)
    }

    async fn status(mut self) -> Result<StatusResponse, Status> {
        self.unary("/etcdserverpb.Maintenance/Status", StatusRequest {})
            .await
    }

    /// One Watch stream with one watch; the request side stays open.
    async fn watch(
        &mut self,
        create: WatchCreateRequest,
    ) -> Result<Streaming<WatchResponse>, Status> {
        self.0
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let requests = futures::stream::iter([WatchRequest {
            create_request: Some(create),
        }])
        .chain(futures::stream::pending());
        let codec = tonic_prost::ProstCodec::<WatchRequest, WatchResponse>::default();
        let path = PathAndQuery::from_static("/etcdserverpb.Watch/Watch");
        Ok(self
            .0
            .streaming(Request::new(requests), path, codec)
            .await?
            .into_inner())
    }
}

// The messages of etcd's api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto
// the suite uses, with only the fields it reads or sets (same tags).

#[derive(Clone, PartialEq, Message)]
struct ResponseHeader {
    #[prost(int64, tag = "3")]
    revision: i64,
}

#[derive(Clone, PartialEq, Message)]
struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct PutResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, Message)]
struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusRequest {}

#[derive(Clone, PartialEq, Message)]
struct StatusResponse {
    #[prost(string, tag = "2")]
    version: String,
}

/// `request_union`'s create_request, the only one sent.
#[derive(Clone, PartialEq, Message)]
struct WatchRequest {
    #[prost(message, optional, tag = "1")]
    create_request: Option<WatchCreateRequest>,
}

#[derive(Clone, PartialEq, Message)]
struct WatchCreateRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    range_end: Vec<u8>,
    #[prost(int64, tag = "3")]
    start_revision: i64,
}

#[derive(Clone, PartialEq, Message)]
struct WatchResponse {
    #[prost(bool, tag = "3")]
    created: bool,
    #[prost(bool, tag = "4")]
    canceled: bool,
    #[prost(string, tag = "6")]
    cancel_reason: String,
    #[prost(message, repeated, tag = "11")]
    events: Vec<Event>,
}

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(message, optional, tag = "2")]
    kv: Option<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
struct KeyValue {
    #[prost(int64, tag = "3")]
    mod_revision: i64,
    #[prost(bytes = "vec", tag = "5")]
    value: Vec<u8>,
}
