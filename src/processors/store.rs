//! SQL of passes (`processor_runs`) and per-transcript state
//! (`processor_state`). Runs and states are read through the `_payload`
//! views that also feed the change log, so answers and events have one shape.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};

use super::decide::Remembered;
use super::{Forget, ProcessorRun, ProcessorState, RunTrigger, StateFilter};
use crate::storage::StoreError;
use crate::time::UnixMicros;

fn decode<T: DeserializeOwned>(kind: &str, payload: &str) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|err| StoreError::Malformed(format!("{kind} row: {err}")))
}

// Runs.

/// Inserts a RUNNING pass and returns its id.
pub async fn insert_run(
    conn: &mut SqliteConnection,
    processor: &str,
    trigger: RunTrigger,
    start_time: UnixMicros,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO processor_runs (processor, run_trigger, state, start_time) \
         VALUES (?, ?, 'running', ?) RETURNING id",
    )
    .bind(processor)
    .bind(trigger.as_str())
    .bind(start_time.0)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Writes the outcome of a pass.
pub async fn finish_run(conn: &mut SqliteConnection, run: &ProcessorRun) -> Result<(), StoreError> {
    let counts = &run.counts;
    let details = serde_json::to_string(&run.error_details)
        .map_err(|err| StoreError::Malformed(err.to_string()))?;
    sqlx::query(
        "UPDATE processor_runs SET state = ?, end_time = ?, scanned = ?, processed = ?, \
         skipped_unchanged = ?, skipped_same_hash = ?, skipped_quarantined = ?, errors = ?, \
         error_details = ?, items = ?, malformed_lines = ?, capped = ?, deferred = ?, \
         quarantined = ?, error = ? WHERE id = ?",
    )
    .bind(run.state.as_str())
    .bind(run.end_time.map(|t| t.0))
    .bind(counts.scanned)
    .bind(counts.processed)
    .bind(counts.skipped_unchanged)
    .bind(counts.skipped_same_hash)
    .bind(counts.skipped_quarantined)
    .bind(counts.errors)
    .bind(details)
    .bind(counts.items)
    .bind(counts.malformed_lines)
    .bind(run.capped)
    .bind(counts.deferred)
    .bind(counts.quarantined)
    .bind(&run.error)
    .bind(run.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the passes a stopped server left RUNNING; returns how many.
pub async fn fail_interrupted_runs(
    conn: &mut SqliteConnection,
    now: UnixMicros,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE processor_runs SET state = 'failed', end_time = ?, \
         error = 'interrupted: bosun stopped during the pass' WHERE state = 'running'",
    )
    .bind(now.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The start of the processor's newest pass, whatever its state.
pub async fn last_run_start<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    processor: &str,
) -> Result<Option<UnixMicros>, StoreError> {
    let start: Option<i64> =
        sqlx::query_scalar("SELECT MAX(start_time) FROM processor_runs WHERE processor = ?")
            .bind(processor)
            .fetch_one(executor)
            .await?;
    Ok(start.map(UnixMicros))
}

/// The processor's newest pass that ended.
pub async fn last_ended_run<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    processor: &str,
) -> Result<Option<ProcessorRun>, StoreError> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT p.payload FROM processor_runs r JOIN processor_runs_payload p ON p.id = r.id \
         WHERE r.processor = ? AND r.state != 'running' ORDER BY r.id DESC LIMIT 1",
    )
    .bind(processor)
    .fetch_optional(executor)
    .await?;
    payload.map(|p| decode("processor run", &p)).transpose()
}

// State.

/// What the processor remembers of every transcript, by key.
pub async fn remembered<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    processor: &str,
) -> Result<HashMap<String, Remembered>, StoreError> {
    type Row = (String, Option<i64>, Option<String>, i64, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT transcript, processed_time, content_hash, consecutive_failures, quarantine_time \
         FROM processor_state WHERE processor = ?",
    )
    .bind(processor)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(transcript, processed, hash, failures, quarantine)| {
            let remembered = Remembered {
                processed_time: processed.map(UnixMicros),
                content_hash: hash,
                consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
                quarantined: quarantine.is_some(),
            };
            (transcript, remembered)
        })
        .collect())
}

/// A success: the read time, hash and items; failures and quarantine cleared.
pub async fn mark_processed(
    conn: &mut SqliteConnection,
    processor: &str,
    transcript: &super::TranscriptKey,
    read_time: UnixMicros,
    hash: &str,
    items: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO processor_state (processor, transcript, owner, processed_time, items, content_hash) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (processor, transcript) DO UPDATE SET \
         owner = excluded.owner, processed_time = excluded.processed_time, items = excluded.items, \
         content_hash = excluded.content_hash, consecutive_failures = 0, last_error = NULL, \
         last_error_time = NULL, quarantine_time = NULL",
    )
    .bind(processor)
    .bind(transcript.as_str())
    .bind(transcript.owner())
    .bind(read_time.0)
    .bind(items)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Content read again and found unchanged: the processed time moves to this
/// read, so the next pass can skip the transcript without reading it.
pub async fn advance_processed_time(
    conn: &mut SqliteConnection,
    processor: &str,
    transcript: &str,
    read_time: UnixMicros,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE processor_state SET processed_time = ? WHERE processor = ? AND transcript = ?",
    )
    .bind(read_time.0)
    .bind(processor)
    .bind(transcript)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failure: processed time, hash and items stay as they were.
pub async fn mark_failed(
    conn: &mut SqliteConnection,
    processor: &str,
    transcript: &super::TranscriptKey,
    failure: &Failure<'_>,
) -> Result<(), StoreError> {
    let quarantine_time = failure.quarantined.then_some(failure.time.0);
    sqlx::query(
        "INSERT INTO processor_state (processor, transcript, owner, consecutive_failures, last_error, \
         last_error_time, quarantine_time) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (processor, transcript) DO UPDATE SET \
         consecutive_failures = excluded.consecutive_failures, last_error = excluded.last_error, \
         last_error_time = excluded.last_error_time, quarantine_time = excluded.quarantine_time",
    )
    .bind(processor)
    .bind(transcript.as_str())
    .bind(transcript.owner())
    .bind(failure.consecutive_failures)
    .bind(failure.message)
    .bind(failure.time.0)
    .bind(quarantine_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// One failure as stored.
pub struct Failure<'a> {
    pub message: &'a str,
    pub time: UnixMicros,
    pub consecutive_failures: u32,
    pub quarantined: bool,
}

/// State rows matching `filter`, by processor then transcript, after the
/// (processor, transcript) cursor, at most `limit`.
pub async fn list_states<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &StateFilter,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<ProcessorState>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM processor_state s JOIN processor_state_payload p \
         ON p.processor = s.processor AND p.transcript = s.transcript WHERE 1 = 1",
    );
    if let Some(processor) = &filter.processor {
        query
            .push(" AND s.processor = ")
            .push_bind(processor.clone());
    }
    if let Some(owner) = &filter.owner {
        query.push(" AND s.owner = ").push_bind(owner.clone());
    }
    if let Some(transcript) = &filter.transcript {
        query
            .push(" AND s.transcript = ")
            .push_bind(transcript.clone());
    }
    if filter.quarantined_only {
        query.push(" AND s.quarantine_time IS NOT NULL");
    }
    if let Some((processor, transcript)) = after {
        query
            .push(" AND (s.processor, s.transcript) > (")
            .push_bind(processor)
            .push(", ")
            .push_bind(transcript)
            .push(")");
    }
    query
        .push(" ORDER BY s.processor, s.transcript LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    payloads
        .iter()
        .map(|payload| decode("processor state", payload))
        .collect()
}

/// Deletes the state `forget` names; returns how many rows went.
pub async fn forget(conn: &mut SqliteConnection, forget: &Forget) -> Result<u64, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM processor_state WHERE processor = ");
    query.push_bind(forget.processor.clone());
    if forget.quarantined_only {
        query.push(" AND quarantine_time IS NOT NULL");
    }
    if !forget.transcripts.is_empty() {
        query.push(" AND transcript IN (");
        let mut keys = query.separated(", ");
        for key in &forget.transcripts {
            keys.push_bind(key.clone());
        }
        query.push(")");
    }
    Ok(query.build().execute(conn).await?.rows_affected())
}

/// How many transcripts the processor holds in quarantine.
pub async fn count_quarantined<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    processor: &str,
) -> Result<i64, StoreError> {
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM processor_state WHERE processor = ? AND quarantine_time IS NOT NULL",
    )
    .bind(processor)
    .fetch_one(executor)
    .await?;
    Ok(count)
}
