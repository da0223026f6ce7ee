//! The unary section: start-up and idle memory, the null RPC, the SQLite
//! baselines (raw through sqlx, and the C API in-process), then writes
//! (RecordLesson, ReportActivity) and reads (GetSession, ListLessons) at
//! each concurrency, each beside its baselines, with the CPU a call cost.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::Bosun;
use crate::load::{Run, Window};
use crate::report::{Row, Target};
use crate::{CONCURRENCIES, QUIET, TARGET_CONCURRENCY, ceiling, cpu, rpc, sqlite};

/// Start-up, the null RPC, raw SQLite, writes and reads.
pub async fn measure(root: &Path, window: Window, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let bosun = Bosun::start(&root.join("unary"), QUIET).await?;
    let ready_ms = bosun.ready_after.as_secs_f64() * 1e3;
    rows.push(
        Row::value("start-up: process start to health SERVING", ready_ms, "ms")
            .target(Target::AtMost(200.0, "ms"), ready_ms),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_mb = bosun.process.rss_bytes()? as f64 / 1e6;
    rows.push(
        Row::value("idle memory (RSS) after start-up", idle_mb, "MB")
            .target(Target::AtMost(30.0, "MB"), idle_mb),
    );

    let channels = Arc::new(bosun.process.connections(rpc::CONNECTIONS).await?);
    let mut null = Vec::new();
    for concurrency in CONCURRENCIES {
        let load = rpc::health(channels.clone(), concurrency, window);
        let (run, cpu) = cpu::measured(bosun.process.pid(), window, load).await;
        rows.push(Row::run(
            format!("null RPC (health Check), concurrency {concurrency}"),
            &run,
        ));
        cpu_row(rows, concurrency, &run, &cpu);
        null.push((concurrency, run.rate()));
    }
    let null_at = |concurrency| {
        null.iter()
            .find(|(c, _)| *c == concurrency)
            .map_or(f64::NAN, |(_, rate)| *rate)
    };

    let round_trip = sqlite::round_trip_rate(&root.join("round-trip"), window).await?;
    rows.push(Row::value(
        "SQLite driver round trip (SELECT 1, one connection)",
        round_trip,
        "/s",
    ));
    let raw = sqlite::insert_rate(&root.join("raw-1"), 1, window).await?;
    rows.push(Row::value(
        "raw SQLite: single-row insert transactions",
        raw,
        "/s",
    ));
    let batched = sqlite::insert_rate(&root.join("raw-256"), 256, window).await?;
    rows.push(
        Row::value("raw SQLite: 256 rows per transaction", batched, "rows/s").against(
            "raw SQLite 1-row txn",
            batched,
            raw,
        ),
    );

    let ceiling = ceiling::insert_rate(&root.join("ceiling-1"), 1, window).await?;
    rows.push(
        Row::value(
            "SQLite C API in-process: single-row insert transactions",
            ceiling,
            "/s",
        )
        .against("raw SQLite (sqlx) 1-row txn", ceiling, raw),
    );
    let ceiling_batched = ceiling::insert_rate(&root.join("ceiling-256"), 256, window).await?;
    rows.push(
        Row::value(
            "SQLite C API in-process: 256 rows per transaction",
            ceiling_batched,
            "rows/s",
        )
        .against("raw SQLite (sqlx) 256 rows/txn", ceiling_batched, batched),
    );
    let baselines = WriteBaselines {
        raw,
        ceiling,
        ceiling_batched,
    };

    let sessions = Arc::new(rpc::sessions(channels[0].clone()).await?);
    let pid = bosun.process.pid();
    for concurrency in CONCURRENCIES {
        let load = rpc::record_lesson(channels.clone(), concurrency, window);
        let (run, cpu) = cpu::measured(pid, window, load).await;
        write_rows(
            rows,
            "RecordLesson",
            concurrency,
            &run,
            baselines,
            null_at(concurrency),
        );
        cpu_row(rows, concurrency, &run, &cpu);
    }
    for concurrency in CONCURRENCIES {
        let load = rpc::report_activity(channels.clone(), sessions.clone(), concurrency, window);
        let (run, cpu) = cpu::measured(pid, window, load).await;
        write_rows(
            rows,
            "ReportActivity",
            concurrency,
            &run,
            baselines,
            null_at(concurrency),
        );
        cpu_row(rows, concurrency, &run, &cpu);
    }
    for concurrency in [1, 64] {
        let load = rpc::get_session(channels.clone(), sessions.clone(), concurrency, window);
        let (run, cpu) = cpu::measured(pid, window, load).await;
        read_row(rows, "GetSession", concurrency, &run, null_at(concurrency));
        cpu_row(rows, concurrency, &run, &cpu);
        let load = rpc::list_lessons(channels.clone(), concurrency, window);
        let (run, cpu) = cpu::measured(pid, window, load).await;
        read_row(
            rows,
            "ListLessons (page of 100)",
            concurrency,
            &run,
            null_at(concurrency),
        );
        cpu_row(rows, concurrency, &run, &cpu);
    }
    bosun.process.stop();
    Ok(())
}

/// What a write row is compared with: raw SQLite through sqlx, and SQLite's
/// C API in-process (single-row and 256-row transactions).
#[derive(Clone, Copy)]
struct WriteBaselines {
    raw: f64,
    ceiling: f64,
    ceiling_batched: f64,
}

fn write_rows(
    rows: &mut Vec<Row>,
    rpc: &str,
    concurrency: usize,
    run: &Run,
    baselines: WriteBaselines,
    null: f64,
) {
    let targeted = TARGET_CONCURRENCY.contains(&concurrency);
    let rate = run.rate();
    let mut row = Row::run(format!("{rpc}, concurrency {concurrency}"), run).against(
        "raw SQLite 1-row txn",
        rate,
        baselines.raw,
    );
    if targeted {
        row = row.target(Target::RatioAtLeast(1.0), rate);
    }
    rows.push(row);
    if targeted {
        let (ceiling, batched) = (baselines.ceiling, baselines.ceiling_batched);
        rows.push(Row::compare("SQLite C API 1-row txn", rate, ceiling));
        rows.push(Row::compare("SQLite C API 256 rows/txn", rate, batched));
    }
    let mut row = Row::compare(&format!("null RPC, concurrency {concurrency}"), rate, null);
    if targeted {
        row = row.target(Target::RatioAtLeast(0.5), rate);
    }
    rows.push(row);
}

fn read_row(rows: &mut Vec<Row>, rpc: &str, concurrency: usize, run: &Run, null: f64) {
    let rate = run.rate();
    let mut row = Row::run(format!("{rpc}, concurrency {concurrency}"), run).against(
        &format!("null RPC, concurrency {concurrency}"),
        rate,
        null,
    );
    if TARGET_CONCURRENCY.contains(&concurrency) {
        row = row.target(Target::RatioAtLeast(0.7), rate);
    }
    rows.push(row);
}

/// At the target concurrency, the CPU a call cost: the server's (and of it,
/// the writer thread's) and the load generator's. The two cores are busy
/// there, so these, not the wait for a lock or the disk, set the rate.
fn cpu_row(rows: &mut Vec<Row>, concurrency: usize, run: &Run, used: &cpu::CpuUse) {
    if concurrency != TARGET_CONCURRENCY[0] {
        return;
    }
    let server = cpu::per_call(used.server_total(), run.calls);
    let writer = cpu::per_call(used.thread("bosun-writer"), run.calls);
    let load = cpu::per_call(used.load, run.calls);
    rows.push(Row::cpu(
        "  CPU per call: server (its writer thread) / load generator",
        server,
        writer,
        load,
    ));
}
