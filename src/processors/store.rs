//! SQL of passes (`processor_runs`) and per-transcript state
//! (`processor_state`). Runs and states are read through the `_payload`
//! views that also feed the change log, so answers and events have one shape.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use super::decide::Remembered;
use super::{Forget, ProcessorRun, ProcessorState, RunTrigger, StateFilter, TranscriptKey};
use crate::storage::sql::{Builder, Conn, JsonOwned, JsonText, query, query_per_engine};
use crate::storage::{StoreError, json_value};
use crate::time::UnixMicros;

fn decode<T: DeserializeOwned>(kind: &str, payload: &str) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|err| StoreError::Malformed(format!("{kind} row: {err}")))
}

// Runs.

/// Inserts a RUNNING pass run by `replica` and returns its id.
pub async fn insert_run(
    conn: &mut Conn<'_>,
    processor: &str,
    trigger: RunTrigger,
    start_time: UnixMicros,
    replica: &str,
) -> Result<i64, StoreError> {
    query(
        "INSERT INTO processor_runs (processor, run_trigger, state, start_time, replica) \
         VALUES ($1, $2, 'running', $3, $4) RETURNING id",
    )
    .bind(processor)
    .bind(trigger.as_str())
    .bind(start_time.0)
    .bind(replica)
    .fetch_scalar(conn)
    .await
}

/// Writes the outcome of a pass, if its row is still RUNNING; if another
/// replica already ended it (this one lost the lease, see
/// `storage::lease`), leaves it and returns the row as stored.
pub async fn finish_run(
    conn: &mut Conn<'_>,
    run: &ProcessorRun,
) -> Result<Option<ProcessorRun>, StoreError> {
    let counts = &run.counts;
    let details = serde_json::to_string(&run.error_details)
        .map_err(|err| StoreError::Malformed(err.to_string()))?;
    let ended = query(
        "UPDATE processor_runs SET state = $1, end_time = $2, scanned = $3, processed = $4, \
         skipped_unchanged = $5, skipped_same_hash = $6, skipped_quarantined = $7, errors = $8, \
         error_details = $9, items = $10, malformed_lines = $11, capped = $12, deferred = $13, \
         quarantined = $14, forgotten = $15, error = $16 WHERE id = $17 AND state = 'running'",
    )
    .bind(run.state.as_str())
    .bind(run.end_time.map(|t| t.0))
    .bind(counts.scanned)
    .bind(counts.processed)
    .bind(counts.skipped_unchanged)
    .bind(counts.skipped_same_hash)
    .bind(counts.skipped_quarantined)
    .bind(counts.errors)
    .bind(JsonOwned(details))
    .bind(counts.items)
    .bind(counts.malformed_lines)
    .bind(run.capped)
    .bind(counts.deferred)
    .bind(counts.quarantined)
    .bind(counts.forgotten)
    .bind(&run.error)
    .bind(run.id)
    .execute(&mut *conn)
    .await?;
    if ended == 1 {
        return Ok(None);
    }
    let payload: JsonText = query("SELECT payload FROM processor_runs_payload WHERE id = $1")
        .bind(run.id)
        .fetch_scalar(conn)
        .await?;
    decode("processor run", &payload.0).map(Some)
}

/// Ends the passes of `processor` left RUNNING by a replica that stopped
/// during them, or lost the lease (see `storage::lease`); returns how many.
pub async fn fail_interrupted_runs(
    conn: &mut Conn<'_>,
    processor: &str,
    now: UnixMicros,
) -> Result<u64, StoreError> {
    query(
        "UPDATE processor_runs SET state = 'failed', end_time = $1, \
         error = 'interrupted: the bosun running the pass stopped, or lost its lease, before the pass ended' \
         WHERE processor = $2 AND state = 'running'",
    )
    .bind(now.0)
    .bind(processor)
    .execute(conn)
    .await
}

/// A processor's latest passes, whoever ran them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latest {
    /// When the newest pass started, whatever its state.
    pub start_time: Option<UnixMicros>,
    /// The newest pass still recorded RUNNING.
    pub running: Option<i64>,
}

/// What [`latest`] asks; each half is answered from an index of its own
/// (migration 0011), however many passes are kept.
const LATEST: &str = "SELECT (SELECT MAX(start_time) FROM processor_runs WHERE processor = $1), \
     (SELECT MAX(id) FROM processor_runs WHERE processor = $1 AND state = 'running')";

/// `processor`'s latest passes: what the scheduler reads before a pass.
pub async fn latest(conn: &mut Conn<'_>, processor: &str) -> Result<Latest, StoreError> {
    let (start_time, running): (Option<i64>, Option<i64>) =
        query(LATEST).bind(processor).fetch_one(conn).await?;
    Ok(Latest {
        start_time: start_time.map(UnixMicros),
        running,
    })
}

/// The processor's newest pass that ended.
pub async fn last_ended_run(
    conn: &mut Conn<'_>,
    processor: &str,
) -> Result<Option<ProcessorRun>, StoreError> {
    let payload: Option<JsonText> = query(
        "SELECT p.payload FROM processor_runs r JOIN processor_runs_payload p ON p.id = r.id \
         WHERE r.processor = $1 AND r.state != 'running' ORDER BY r.id DESC LIMIT 1",
    )
    .bind(processor)
    .fetch_optional_scalar(conn)
    .await?;
    payload.map(|p| decode("processor run", &p.0)).transpose()
}

// State.

/// What the processor remembers of every transcript, by key.
pub async fn remembered(
    conn: &mut Conn<'_>,
    processor: &str,
) -> Result<HashMap<String, Remembered>, StoreError> {
    type Row = (String, Option<i64>, Option<String>, i64, Option<i64>);
    let rows: Vec<Row> = query(
        "SELECT transcript, processed_time, content_hash, consecutive_failures, quarantine_time \
         FROM processor_state WHERE processor = $1",
    )
    .bind(processor)
    .fetch_all(conn)
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

/// A transcript processed: what its state remembers of the read.
pub struct Success<'a> {
    pub transcript: &'a TranscriptKey,
    pub read_time: UnixMicros,
    pub hash: &'a str,
    pub items: i64,
}

/// The state of each transcript processed, upserted from rows of
/// [transcript, owner, processed_time, items, content_hash] (SQLite: each
/// row read once, see `usage_store`).
pub(super) const UPSERT_STATE_SQLITE: &str = "INSERT INTO processor_state (processor, transcript, \
    owner, processed_time, items, content_hash) SELECT $1, r ->> 0, r ->> 1, r ->> 2, r ->> 3, \
    r ->> 4 FROM (SELECT value AS r FROM json_each($2) LIMIT -1 OFFSET 0) WHERE true \
    ON CONFLICT (processor, transcript) DO UPDATE SET owner = excluded.owner, \
    processed_time = excluded.processed_time, items = excluded.items, \
    content_hash = excluded.content_hash, consecutive_failures = 0, last_error = NULL, \
    last_error_time = NULL, quarantine_time = NULL";

/// Successes, in one statement: the read time, hash and items of each;
/// failures and quarantine cleared.
pub async fn mark_processed(
    conn: &mut Conn<'_>,
    processor: &str,
    successes: &[Success<'_>],
) -> Result<(), StoreError> {
    if successes.is_empty() {
        return Ok(());
    }
    // Each row is [transcript, owner, processed_time, items, content_hash].
    let rows: Vec<(&str, &str, i64, i64, &str)> = successes
        .iter()
        .map(|s| {
            let key = s.transcript;
            (key.as_str(), key.owner(), s.read_time.0, s.items, s.hash)
        })
        .collect();
    query_per_engine(
        UPSERT_STATE_SQLITE,
        "INSERT INTO processor_state (processor, transcript, owner, processed_time, items, \
         content_hash) SELECT $1, f ->> 0, f ->> 1, (f ->> 2)::bigint, (f ->> 3)::bigint, f ->> 4 \
         FROM jsonb_array_elements($2) f ON CONFLICT (processor, transcript) DO UPDATE SET \
         owner = excluded.owner, processed_time = excluded.processed_time, items = excluded.items, \
         content_hash = excluded.content_hash, consecutive_failures = 0, last_error = NULL, \
         last_error_time = NULL, quarantine_time = NULL",
    )
    .bind(processor)
    .bind(json_value(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Content read again and found unchanged: the processed time moves to this
/// read, so the next pass can skip the transcript without reading it.
pub async fn advance_processed_time(
    conn: &mut Conn<'_>,
    processor: &str,
    transcript: &str,
    read_time: UnixMicros,
) -> Result<(), StoreError> {
    query(
        "UPDATE processor_state SET processed_time = $1 WHERE processor = $2 AND transcript = $3",
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
    conn: &mut Conn<'_>,
    processor: &str,
    transcript: &TranscriptKey,
    failure: &Failure<'_>,
) -> Result<(), StoreError> {
    let quarantine_time = failure.quarantined.then_some(failure.time.0);
    query(
        "INSERT INTO processor_state (processor, transcript, owner, consecutive_failures, last_error, \
         last_error_time, quarantine_time) VALUES ($1, $2, $3, $4, $5, $6, $7) \
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
pub async fn list_states(
    conn: &mut Conn<'_>,
    filter: &StateFilter,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<ProcessorState>, StoreError> {
    let mut query = Builder::new(
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
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    payloads
        .iter()
        .map(|payload| decode("processor state", &payload.0))
        .collect()
}

/// Deletes the state `forget` names; returns how many rows went.
pub async fn forget(conn: &mut Conn<'_>, forget: &Forget) -> Result<u64, StoreError> {
    let mut query = Builder::new("DELETE FROM processor_state WHERE processor = ");
    query.push_bind(forget.processor.clone());
    if forget.quarantined_only {
        query.push(" AND quarantine_time IS NOT NULL");
    }
    if !forget.transcripts.is_empty() {
        query.push(" AND transcript IN (");
        for (i, key) in forget.transcripts.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query.push_bind(key.clone());
        }
        query.push(")");
    }
    query.build().execute(conn).await
}

/// Deletes the processor's state of transcripts gone from the folder (the
/// keys go as one JSON array, however many); returns how many rows went.
pub async fn forget_gone(
    conn: &mut Conn<'_>,
    processor: &str,
    gone: &[TranscriptKey],
) -> Result<u64, StoreError> {
    let keys: Vec<&str> = gone.iter().map(TranscriptKey::as_str).collect();
    query_per_engine(
        "DELETE FROM processor_state WHERE processor = $1 \
         AND transcript IN (SELECT value FROM json_each($2))",
        "DELETE FROM processor_state WHERE processor = $1 \
         AND transcript IN (SELECT jsonb_array_elements_text($2))",
    )
    .bind(processor)
    .bind(json_value(&keys)?)
    .execute(conn)
    .await
}

/// How many transcripts the processor holds in quarantine.
pub async fn count_quarantined(conn: &mut Conn<'_>, processor: &str) -> Result<i64, StoreError> {
    query(
        "SELECT COUNT(*) FROM processor_state WHERE processor = $1 AND quarantine_time IS NOT NULL",
    )
    .bind(processor)
    .fetch_scalar(conn)
    .await
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
