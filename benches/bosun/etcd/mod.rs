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

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;

use crate::cpu::{self, CpuUse, per_call};
use crate::daemon::Bosun;
use crate::load::{Run, Window, histogram};
use crate::report::{Row, Target, figure};
use crate::stream::Delivery;
use crate::{QUIET, rpc};

mod load;
mod server;

use load::{bosun_delivery, etcd_delivery, put};
use server::Etcd;

/// Where Debian's etcd-server puts etcd.
pub const DEFAULT_BINARY: &str = "/usr/bin/etcd";
/// Concurrent writers in the write-rate comparison.
const WRITERS: usize = 64;
/// Measurements of each system, alternating bosun and etcd.
const ROUNDS: usize = 2;
/// Watchers, and the paced write rate while they watch (as `--only stream`).
const WATCHES: [(usize, u32); 3] = [(1, 1000), (100, 1000), (1000, 100)];

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
    // Idle RSS is each server's one second after it answered, as the
    // start-up rows read bosun's: time is what is measured here.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = [bosun.process.rss_bytes()?, etcd.process.rss_bytes()?];

    let bosun_channels = Arc::new(bosun.process.connections(rpc::CONNECTIONS).await?);
    let etcd_channels = Arc::new(etcd.process.connections(rpc::CONNECTIONS).await?);
    let mut writes: [Vec<Run>; 2] = Default::default();
    let mut cpu: [CpuUse; 2] = Default::default();
    for _ in 0..ROUNDS {
        let load = rpc::record_lesson(bosun_channels.clone(), WRITERS, window);
        let (run, used) = cpu::measured(bosun.process.pid(), window, load).await;
        writes[0].push(run);
        cpu[0].add(&used);
        let load = put(etcd_channels.clone(), WRITERS, window);
        let (run, used) = cpu::measured(etcd.process.pid(), window, load).await;
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

    let after = [bosun.process.rss_bytes()?, etcd.process.rss_bytes()?];
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
    bosun.process.stop();
    etcd.process.stop();
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
