//! The storage engine's ceiling: the raw baseline's lesson inserts through
//! SQLite's C API in-process (rusqlite), on one thread with one prepared
//! statement and no async driver. Same file schema (so the same triggers
//! write the change log) and the same pragmas as the raw sqlx baseline
//! (bosun's connection options; the writer adds its page cache and WAL
//! bound); what differs from that baseline is only the hand-off to the
//! driver's worker thread that every sqlx statement pays, so the two rows
//! side by side show what the driver costs.
//!
//! And the rows a usage first pass stores, through the C API a transcript
//! at a time: what storing them costs the engine, beside what it costs
//! bosun's writer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use bosun::storage::{DB_FILE, StorageSettings};
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};
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

/// bosun::storage::connect_options, pragma for pragma (the raw baseline's).
fn open_like_bosun(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.busy_timeout(StorageSettings::default().busy_timeout)?;
    Ok(conn)
}

fn insert_loop(path: &Path, rows_per_transaction: usize, window: Window) -> anyhow::Result<f64> {
    let mut conn = open_like_bosun(path)?;
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

/// Transcripts a usage pass stores in one transaction (the pass's batch).
const USAGE_BATCH: usize = 256;

/// Microseconds of one thread per transcript to store what a usage first
/// pass stores for each of `count` transcripts shaped as the bench's
/// (`crate::transcripts`): its 12 responses, its usage and its processor
/// state (the last two with their change-log events), `USAGE_BATCH`
/// transcripts to a transaction, a transcript's responses in one
/// statement, nothing read first (the pass also reads the stored copies
/// of its message ids and what it replaces). Checkpoints are left out.
pub async fn usage_first_pass(dir: &Path, count: usize) -> anyhow::Result<f64> {
    crate::sqlite::open(dir).await?.close().await?;
    let path = dir.join(DB_FILE);
    tokio::task::spawn_blocking(move || store_usage(&path, count)).await?
}

/// Responses in a bench transcript: 12 turns, each answered in two lines
/// the usage processor keeps one of (the same message id and usage).
const RESPONSES: usize = 12;

/// One statement inserting a transcript's responses (a statement a row
/// measured the same).
fn responses_sql() -> String {
    let row = "(?, ?, ?, NULL, 0, ?, ?, ?, 500, ?, 1)";
    format!(
        "INSERT INTO usage_responses (transcript, line, message_id, request_id, sidechain, \
         model, input_tokens, output_tokens, cache_creation_input_tokens, \
         cache_read_input_tokens, counted) VALUES {}",
        [row; RESPONSES].join(", ")
    )
}

fn store_usage(path: &Path, count: usize) -> anyhow::Result<f64> {
    let mut conn = open_like_bosun(path)?;
    // The writer's page cache (bosun::storage::sql::direct); checkpoints
    // below.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let hash = "0".repeat(64);
    let mut checkpoints = std::time::Duration::ZERO;
    let started = Instant::now();
    for first in (0..count).step_by(USAGE_BATCH) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut responses = tx.prepare_cached(&responses_sql())?;
            let mut usage = tx.prepare_cached(
                "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, \
                 processed_time) VALUES (?, ?, ?, ?, ?)",
            )?;
            let mut state = tx.prepare_cached(
                "INSERT INTO processor_state (processor, transcript, owner, processed_time, \
                 items, content_hash) VALUES ('usage', ?, ?, ?, 12, ?)",
            )?;
            for index in first..count.min(first + USAGE_BATCH) {
                let (owner, session) = crate::transcripts::names(index);
                let key = format!("{owner}/{session}.jsonl");
                responses.execute(params_from_iter(responses_of(&key, index)))?;
                let by_model = by_model_of(index)?;
                let now = now_micros();
                usage.execute(params![key, owner, session, by_model, now])?;
                state.execute(params![key, owner, now, hash])?;
            }
        }
        tx.commit()?;
        // Copying the WAL into the database file is the checkpointer's
        // work, not the writer's; done here so the WAL is reused as
        // bosun's is, and its time left out.
        let copying = Instant::now();
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        checkpoints += copying.elapsed();
    }
    let storing = started.elapsed().saturating_sub(checkpoints);
    Ok(storing.as_secs_f64() * 1e6 / count.max(1) as f64)
}

/// The values of transcript `index`'s responses, row after row, as
/// `responses_sql` takes them: the line the processor keeps of each turn.
fn responses_of(key: &str, index: usize) -> Vec<Value> {
    let mut values = Vec::with_capacity(RESPONSES * 7);
    for turn in 0..RESPONSES {
        values.extend([
            Value::Text(key.to_owned()),
            Value::Integer(1 + 3 * turn as i64),
            Value::Text(format!("msg_{index}_{turn}")),
            Value::Text(crate::transcripts::model(index, turn).into()),
            Value::Integer(3 + turn as i64),
            Value::Integer(120 + turn as i64),
            Value::Integer(12_000 + (index % 1000) as i64),
        ]);
    }
    values
}

/// Transcript `index`'s usage by model as the pass stores it: the counted
/// response of each turn, summed.
fn by_model_of(index: usize) -> anyhow::Result<String> {
    let mut sums = BTreeMap::<_, [usize; 5]>::new();
    for turn in 0..RESPONSES {
        let model = sums
            .entry(crate::transcripts::model(index, turn))
            .or_default();
        let tokens = [3 + turn, 120 + turn, 500, 12_000 + index % 1000, 1];
        for (sum, tokens) in model.iter_mut().zip(tokens) {
            *sum += tokens;
        }
    }
    let by_model: BTreeMap<_, _> = sums
        .into_iter()
        .map(|(model, [input, output, created, read, messages])| {
            let usage = serde_json::json!({
                "input_tokens": input,
                "output_tokens": output,
                "cache_creation_input_tokens": created,
                "cache_read_input_tokens": read,
                "messages": messages,
            });
            (model, usage)
        })
        .collect();
    Ok(serde_json::to_string(&by_model)?)
}
