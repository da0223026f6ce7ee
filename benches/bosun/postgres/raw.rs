//! The raw PostgreSQL baselines: bosun's statements sent straight through
//! sqlx (single-row and 256-row insert transactions into `lessons` with
//! bosun's schema and triggers, its reads), and the pools they run on.

use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::load::{Run, Window, closed_loop};
use crate::report::Row;
use crate::sqlite::now_micros;

/// Connections of the concurrent raw write baseline.
pub(super) const RAW_CONNECTIONS: usize = 16;

const INSERT: &str = "INSERT INTO lessons (create_time, lesson_type, work_item_id, stage, agent, \
     repo, root_cause, suggestion, source) VALUES ($1, 'flaky_test', $2, 'testing', 'claude-code', \
     'acme/payments', 'the payment test depends on wall-clock time', \
     'inject a clock into PaymentWindow', 'manual')";

/// What ListLessons (page of 100) asks the database.
const LIST_LESSONS: &str = "SELECT id, create_time, update_time, lesson_type, work_item_id, \
     task_id, session_id, stage, agent, repo, root_cause, suggestion, detail, status, \
     related_task, source, attribution, target_repo, target_domain \
     FROM lessons WHERE 1 = 1 ORDER BY id DESC LIMIT $1";
/// GetSession's first statement (it then reads the session's view).
const GET_SESSION: &str = "SELECT payload FROM sessions_payload WHERE id = $1";

async fn pool(url: &str, connections: u32) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(url)
        .await?)
}

pub(super) async fn pool_of(url: &str, connections: usize) -> anyhow::Result<PgPool> {
    pool(url, u32::try_from(connections)?).await
}

/// Single-row insert transactions (each INSERT its own transaction, one
/// round trip) from `concurrency` workers over `pool`.
async fn insert_run(pool: PgPool, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let pool = pool.clone();
        async move {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("RAW-{worker}-{n}"))
                .execute(&pool)
                .await
                .map(drop)
        }
    })
    .await
}

/// Rows per second in transactions of `rows_per_transaction` inserts.
async fn batched_insert_rate(
    conn: &mut PgConnection,
    rows_per_transaction: usize,
    window: Window,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let measure_from = started + window.warmup;
    let until = measure_from + window.measure;
    let (mut rows, mut n) = (0u64, 0u64);
    let mut measured_from = None;
    while Instant::now() < until {
        if measured_from.is_none() && Instant::now() >= measure_from {
            measured_from = Some((Instant::now(), rows));
        }
        let mut tx = conn.begin().await?;
        for _ in 0..rows_per_transaction {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("RAW-BATCH-{n}"))
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
        rows += rows_per_transaction as u64;
    }
    let (from, rows_before) = measured_from.unwrap_or((started, 0));
    Ok((rows - rows_before) as f64 / from.elapsed().as_secs_f64())
}

/// `SELECT 1` one after another on one connection.
async fn round_trip_rate(conn: &mut PgConnection, window: Window) -> anyhow::Result<f64> {
    let started = Instant::now();
    let until = started + window.warmup + window.measure;
    let mut count = 0u64;
    let mut from = None;
    while Instant::now() < until {
        if from.is_none() && started.elapsed() >= window.warmup {
            from = Some((Instant::now(), count));
        }
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        count += 1;
    }
    let (from, before) = from.unwrap_or((started, 0));
    Ok((count - before) as f64 / from.elapsed().as_secs_f64())
}

pub(super) async fn get_session_run(
    pool: PgPool,
    sessions: Arc<Vec<String>>,
    concurrency: usize,
    window: Window,
) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let pool = pool.clone();
        let id = sessions[(worker + n as usize) % sessions.len()].clone();
        async move {
            let payload: sqlx::types::Json<serde_json::Value> = sqlx::query_scalar(GET_SESSION)
                .bind(id)
                .fetch_one(&pool)
                .await
                .map_err(|err| err.to_string())?;
            std::hint::black_box(payload);
            Ok::<_, String>(())
        }
    })
    .await
}

pub(super) async fn list_lessons_run(pool: PgPool, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |_, _| {
        let pool = pool.clone();
        async move {
            let rows = sqlx::query(LIST_LESSONS)
                .bind(101i64)
                .fetch_all(&pool)
                .await
                .map_err(|err| err.to_string())?;
            if rows.len() == 101 {
                std::hint::black_box(rows);
                Ok(())
            } else {
                Err(format!("{} rows, not 101", rows.len()))
            }
        }
    })
    .await
}

/// The same-run write baselines.
pub(super) struct Raw {
    pub single: f64,
    pub concurrent: f64,
}

/// Raw PostgreSQL on a fresh database with bosun's schema and triggers.
pub(super) async fn baselines(
    url: &str,
    window: Window,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Raw> {
    let mut conn = PgConnection::connect(url).await?;
    bosun::storage::postgres::MIGRATOR.run(&mut conn).await?;

    let round_trip = round_trip_rate(&mut conn, window).await?;
    rows.push(Row::value(
        "PostgreSQL driver round trip (SELECT 1, one connection)",
        round_trip,
        "/s",
    ));

    let pool = pool(url, 1).await?;
    let run = insert_run(pool.clone(), 1, window).await;
    let single = run.rate();
    rows.push(Row::run(
        "raw PostgreSQL: single-row insert transactions, 1 connection",
        &run,
    ));
    pool.close().await;

    let pool = pool_of(url, RAW_CONNECTIONS).await?;
    let run = insert_run(pool.clone(), RAW_CONNECTIONS, window).await;
    let concurrent = run.rate();
    rows.push(
        Row::run(
            format!(
                "raw PostgreSQL: single-row insert transactions, {RAW_CONNECTIONS} connections"
            ),
            &run,
        )
        .against("raw PG 1-row txn, 1 connection", concurrent, single),
    );
    pool.close().await;

    let batched = batched_insert_rate(&mut conn, 256, window).await?;
    rows.push(
        Row::value(
            "raw PostgreSQL: 256 rows per transaction",
            batched,
            "rows/s",
        )
        .against("raw PG 1-row txn, 1 connection", batched, single),
    );
    conn.close().await?;
    Ok(Raw { single, concurrent })
}
