//! The storage engine's ceiling: the raw baseline's lesson inserts through
//! SQLite's C API in-process (rusqlite), on one thread with one prepared
//! statement and no async driver. Same file schema (so the same triggers
//! write the change log) and the same pragmas as bosun's writer; what
//! differs from the raw sqlx baseline is only the hand-off to the driver's
//! worker thread that every sqlx statement pays, so the two rows side by
//! side show what the driver costs.

use std::path::Path;
use std::time::Instant;

use bosun::storage::{DB_FILE, StorageSettings};
use rusqlite::{Connection, TransactionBehavior, params};
use sqlx::Connection as _;

use crate::load::Window;
use crate::sqlite::{INSERT, now_micros};

/// Rows per second inserted `rows_per_transaction` at a time.
pub async fn insert_rate(
    dir: &Path,
    rows_per_transaction: usize,
    window: Window,
) -> anyhow::Result<f64> {
    // Migrated by bosun's own migrations, through sqlx, as the raw baseline.
    crate::sqlite::open(dir).await?.close().await?;
    let path = dir.join(DB_FILE);
    tokio::task::spawn_blocking(move || insert_loop(&path, rows_per_transaction, window)).await?
}

fn insert_loop(path: &Path, rows_per_transaction: usize, window: Window) -> anyhow::Result<f64> {
    let mut conn = Connection::open(path)?;
    // bosun::storage::connect_options, pragma for pragma.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.busy_timeout(StorageSettings::default().busy_timeout)?;
    let started = Instant::now();
    let measure_from = started + window.warmup;
    let until = measure_from + window.measure;
    let (mut rows, mut n) = (0u64, 0u64);
    let mut measured_from = None;
    while Instant::now() < until {
        if measured_from.is_none() && Instant::now() >= measure_from {
            measured_from = Some((Instant::now(), rows));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for _ in 0..rows_per_transaction {
                insert.execute(params![now_micros(), format!("RAW-{n}")])?;
                n += 1;
            }
        }
        tx.commit()?;
        rows += rows_per_transaction as u64;
    }
    let (from, rows_before) = measured_from.unwrap_or((started, 0));
    Ok((rows - rows_before) as f64 / from.elapsed().as_secs_f64())
}
