//! The storage baseline: SQLite alone, through the same driver, with the
//! same schema (so the same triggers write the change log), the same
//! pragmas, and no gRPC.

use std::path::Path;
use std::time::{Duration, Instant};

use bosun::storage::{DB_FILE, MIGRATOR, StorageSettings, connect_options};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::load::Window;

/// Opens a migrated database in `dir` the way bosun's writer does.
pub async fn open(dir: &Path) -> anyhow::Result<SqliteConnection> {
    bosun::storage::create_data_dir(dir)?;
    let mut conn = connect_options(&dir.join(DB_FILE), StorageSettings::default())
        .create_if_missing(true)
        .connect()
        .await?;
    MIGRATOR.run(&mut conn).await?;
    Ok(conn)
}

pub const INSERT: &str = "INSERT INTO lessons (create_time, lesson_type, work_item_id, stage, agent, \
     repo, root_cause, suggestion, source) VALUES (?, 'flaky_test', ?, 'testing', 'claude-code', \
     'acme/payments', 'the payment test depends on wall-clock time', \
     'inject a clock into PaymentWindow', 'manual')";

/// Single-row insert transactions per second, `rows_per_transaction` rows
/// each (1 is the baseline; more shows what batching buys).
pub async fn insert_rate(
    dir: &Path,
    rows_per_transaction: usize,
    window: Window,
) -> anyhow::Result<f64> {
    let mut conn = open(dir).await?;
    let started = Instant::now();
    let measure_from = started + window.warmup;
    let until = measure_from + window.measure;
    let (mut rows, mut n) = (0u64, 0u64);
    let mut measured_from = None;
    while Instant::now() < until {
        if measured_from.is_none() && Instant::now() >= measure_from {
            measured_from = Some((Instant::now(), rows));
        }
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for _ in 0..rows_per_transaction {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("RAW-{n}"))
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
        rows += rows_per_transaction as u64;
    }
    let (from, rows_before) = measured_from.unwrap_or((started, 0));
    conn.close().await?;
    Ok((rows - rows_before) as f64 / from.elapsed().as_secs_f64())
}

/// Statements per second through the driver alone: `SELECT 1` on one
/// connection, one after another (each is a hand-off to the driver's worker
/// thread and back, the fixed cost every bosun statement pays).
pub async fn round_trip_rate(dir: &Path, window: Window) -> anyhow::Result<f64> {
    let mut conn = open(dir).await?;
    let started = Instant::now();
    let until = started + window.warmup + window.measure;
    let mut count = 0u64;
    let mut from = None;
    while Instant::now() < until {
        if from.is_none() && started.elapsed() >= window.warmup {
            from = Some((Instant::now(), count));
        }
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        count += 1;
    }
    let (from, before) = from.unwrap_or((started, 0));
    let rate = (count - before) as f64 / from.elapsed().as_secs_f64();
    conn.close().await?;
    Ok(rate)
}

/// Fills `dir` with `count` lessons (and so `count` change-log events) in
/// large transactions, for the replay measurement; returns how long it took.
pub async fn preload(dir: &Path, count: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = open(dir).await?;
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(50_000);
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for _ in 0..batch {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("REPLAY-{done}"))
                .execute(&mut *tx)
                .await?;
            done += 1;
        }
        tx.commit().await?;
    }
    conn.close().await?;
    Ok(started.elapsed())
}

/// Reads every change-log event (what a replay must read) on one
/// connection; returns events per second.
pub async fn scan_rate(dir: &Path) -> anyhow::Result<f64> {
    use futures::TryStreamExt;
    let mut conn = connect_options(&dir.join(DB_FILE), StorageSettings::default())
        .read_only(true)
        .connect()
        .await?;
    let started = Instant::now();
    let mut rows = sqlx::query_as::<_, (i64, String, String, String, String, i64)>(
        "SELECT seq, event_type, entity_kind, entity_id, payload, create_time \
         FROM change_log ORDER BY seq",
    )
    .fetch(&mut conn);
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        std::hint::black_box(&row);
        count += 1;
    }
    let took = started.elapsed();
    drop(rows);
    conn.close().await?;
    Ok(count as f64 / took.as_secs_f64())
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
