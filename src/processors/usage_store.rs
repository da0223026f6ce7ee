//! SQL of the usage processor's product: each transcript's responses
//! (`usage_responses`), which copy of a repeated response counts
//! ([`dedup`]), and the usage by model of every transcript whose counted
//! responses changed (`transcript_usage`, read by GetUsage and Sessions).
//!
//! A row set goes as one JSON array of arrays. On SQLite, `json_each`
//! renders an element as JSON text each time its `value` is read, so a
//! statement reads it once, in a subquery SQLite keeps whole
//! (`LIMIT -1 OFFSET 0`: it never flattens a subquery with an OFFSET), and
//! takes each field with `->>` from that text, which SQLite parses once and
//! finds in its JSON cache for the other fields.

use std::collections::{BTreeMap, BTreeSet};

use super::TokenUsage;
use super::dedup::{self, ResponseCopy};
use super::processor::StoredTranscript;
use super::usage::{Response, TranscriptCount, total_tokens};
use crate::storage::sql::{Conn, query_per_engine};
use crate::storage::{StoreError, json_text, json_value};

/// Each transcript's usage, upserted from rows of [transcript, owner,
/// session_id, by_model, processed_time] (SQLite; read once, see above).
const UPSERT_USAGE_SQLITE: &str = "INSERT INTO transcript_usage (transcript, owner, session_id, \
    by_model, processed_time) SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4 \
    FROM (SELECT value AS r FROM json_each($1) LIMIT -1 OFFSET 0) WHERE true \
    ON CONFLICT (transcript) DO UPDATE SET owner = excluded.owner, \
    session_id = excluded.session_id, by_model = excluded.by_model, \
    processed_time = excluded.processed_time";

/// The responses, inserted from rows of [transcript, line, message_id,
/// request_id, sidechain, model, [input, output, cache writes, cache reads],
/// counted] (SQLite; read once, see above).
const INSERT_RESPONSES_SQLITE: &str = "INSERT INTO usage_responses (transcript, line, message_id, \
    request_id, sidechain, model, input_tokens, output_tokens, cache_creation_input_tokens, \
    cache_read_input_tokens, counted) SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, \
    r ->> 5, r ->> '$[6][0]', r ->> '$[6][1]', r ->> '$[6][2]', r ->> '$[6][3]', r ->> 7 \
    FROM (SELECT value AS r FROM json_each($1) LIMIT -1 OFFSET 0)";

/// Replaces the responses stored for each transcript, decides again which
/// copies count for every message id they held or hold, and rewrites the
/// usage of each transcript whose counted responses changed. A batch takes
/// the same statements as one transcript (each row set goes as one JSON
/// array) and ends where saving its transcripts one by one would: which
/// copy counts depends on the copies alone, not on the order they came in.
///
/// The new responses are inserted already decided: the copies stored in
/// other transcripts are read first, and only those whose decision changed
/// are written again.
pub async fn save_usage(
    conn: &mut Conn<'_>,
    transcripts: &[(&StoredTranscript, &TranscriptCount)],
) -> Result<(), StoreError> {
    if transcripts.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = transcripts.iter().map(|(t, _)| t.key.as_str()).collect();
    let mut message_ids = delete_responses(conn, &keys).await?;
    for (_, count) in transcripts {
        message_ids.extend(count.responses.iter().filter_map(|r| r.message_id.clone()));
    }

    // Every copy of those message ids: the stored ones (other transcripts'
    // now), then the batch's; which of them count.
    let stored = stored_copies(conn, &message_ids).await?;
    let mut copies: Vec<ResponseCopy> = stored.iter().map(|(copy, _)| copy.clone()).collect();
    for (transcript, count) in transcripts {
        for response in &count.responses {
            if let Some(message_id) = &response.message_id {
                copies.push(ResponseCopy {
                    transcript: transcript.key.as_str().to_string(),
                    line: response.line,
                    message_id: message_id.clone(),
                    request_id: response.request_id.clone(),
                    sidechain: response.sidechain,
                    total_tokens: total_tokens(&response.usage),
                });
            }
        }
    }
    let decided = dedup::counted(&copies);
    let (stored_decided, new_decided) = decided.split_at(stored.len());
    let flipped = flips(&stored, stored_decided);
    let mut new_decided = new_decided.iter().copied();
    // A response without a message id always counts (see dedup).
    let counted: Vec<Vec<bool>> = transcripts
        .iter()
        .map(|(_, count)| {
            let responses = count.responses.iter();
            responses
                .map(|r| r.message_id.is_none() || new_decided.next().unwrap_or(false))
                .collect()
        })
        .collect();

    insert(conn, transcripts, &counted).await?;
    flip(conn, &flipped).await?;

    let mut rows = Vec::with_capacity(transcripts.len());
    for ((transcript, count), counted) in transcripts.iter().zip(&counted) {
        let by_model = json_text(&sum_by_model(&count.responses, counted))?;
        let (key, owner) = (transcript.key.as_str(), transcript.key.owner());
        rows.push((
            key,
            owner,
            &count.session_id,
            by_model,
            transcript.processed_time.0,
        ));
    }
    query_per_engine(
        UPSERT_USAGE_SQLITE,
        "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, processed_time) \
         SELECT f ->> 0, f ->> 1, f ->> 2, (f ->> 3)::jsonb, (f ->> 4)::bigint \
         FROM jsonb_array_elements($1) f \
         ON CONFLICT (transcript) DO UPDATE SET owner = excluded.owner, \
         session_id = excluded.session_id, by_model = excluded.by_model, \
         processed_time = excluded.processed_time",
    )
    .bind(json_value(&rows)?)
    .execute(conn)
    .await?;

    rewrite_usage(conn, &flipped).await
}

/// Forgets transcripts deleted from the folder: their responses and usage
/// go, and a response they held the counted copy of counts where another
/// copy of it is left, as if they had never been read.
pub async fn forget_usage(conn: &mut Conn<'_>, gone: &[&str]) -> Result<(), StoreError> {
    if gone.is_empty() {
        return Ok(());
    }
    let message_ids = delete_responses(conn, gone).await?;
    let stored = stored_copies(conn, &message_ids).await?;
    let copies: Vec<ResponseCopy> = stored.iter().map(|(copy, _)| copy.clone()).collect();
    let flipped = flips(&stored, &dedup::counted(&copies));
    flip(conn, &flipped).await?;
    query_per_engine(
        "DELETE FROM transcript_usage WHERE transcript IN (SELECT value FROM json_each($1))",
        "DELETE FROM transcript_usage WHERE transcript IN (SELECT jsonb_array_elements_text($1))",
    )
    .bind(json_value(gone)?)
    .execute(conn)
    .await?;
    rewrite_usage(conn, &flipped).await
}

/// Deletes the responses stored for `transcripts`; returns the message ids
/// they held.
async fn delete_responses(
    conn: &mut Conn<'_>,
    transcripts: &[&str],
) -> Result<BTreeSet<String>, StoreError> {
    let removed: Vec<Option<String>> = query_per_engine(
        "DELETE FROM usage_responses WHERE transcript IN (SELECT value FROM json_each($1)) \
         RETURNING message_id",
        "DELETE FROM usage_responses WHERE transcript IN (SELECT jsonb_array_elements_text($1)) \
         RETURNING message_id",
    )
    .bind(json_value(transcripts)?)
    .fetch_all_scalars(conn)
    .await?;
    Ok(removed.into_iter().flatten().collect())
}

/// The stored copies whose decision changed: (transcript, line) of each.
fn flips<'a>(stored: &'a [(ResponseCopy, bool)], decided: &[bool]) -> Vec<(&'a str, i64)> {
    stored
        .iter()
        .zip(decided)
        .filter(|((_, counted), counts)| counted != *counts)
        .map(|((copy, _), _)| (copy.transcript.as_str(), copy.line))
        .collect()
}

/// Sums again the usage of the transcripts whose copies flipped, each
/// written only when its usage changed: each write is a transcript_usage
/// event.
async fn rewrite_usage(conn: &mut Conn<'_>, flipped: &[(&str, i64)]) -> Result<(), StoreError> {
    let others: BTreeSet<&str> = flipped.iter().map(|(transcript, _)| *transcript).collect();
    if others.is_empty() {
        return Ok(());
    }
    let mut usage = stored_by_model(conn, &others).await?;
    let mut changed = Vec::with_capacity(others.len());
    for other in others {
        changed.push((other, json_text(&usage.remove(other).unwrap_or_default())?));
    }
    query_per_engine(
        "UPDATE transcript_usage SET by_model = f.value ->> 1 FROM json_each($1) f \
         WHERE transcript_usage.transcript = f.value ->> 0 \
         AND transcript_usage.by_model <> f.value ->> 1",
        "UPDATE transcript_usage u SET by_model = (f ->> 1)::jsonb \
         FROM jsonb_array_elements($1) f \
         WHERE u.transcript = f ->> 0 AND u.by_model <> (f ->> 1)::jsonb",
    )
    .bind(json_value(&changed)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// The counted responses, summed by model.
fn sum_by_model(responses: &[Response], counted: &[bool]) -> BTreeMap<String, TokenUsage> {
    let mut by_model: BTreeMap<String, TokenUsage> = BTreeMap::new();
    for (response, _) in responses.iter().zip(counted).filter(|(_, counts)| **counts) {
        by_model
            .entry(response.model.clone())
            .or_default()
            .add(&response.usage);
    }
    by_model
}

/// Stores every transcript's responses, with whether each counts, all in
/// one statement.
async fn insert(
    conn: &mut Conn<'_>,
    transcripts: &[(&StoredTranscript, &TranscriptCount)],
    counted: &[Vec<bool>],
) -> Result<(), StoreError> {
    type Row<'a> = (
        &'a str,
        i64,
        Option<&'a str>,
        Option<&'a str>,
        bool,
        &'a str,
        [i64; 4],
        bool,
    );
    let mut rows: Vec<Row<'_>> = Vec::new();
    for ((transcript, count), counted) in transcripts.iter().zip(counted) {
        for (response, counts) in count.responses.iter().zip(counted) {
            let usage = &response.usage;
            rows.push((
                transcript.key.as_str(),
                response.line,
                response.message_id.as_deref(),
                response.request_id.as_deref(),
                response.sidechain,
                response.model.as_str(),
                [
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_creation_input_tokens,
                    usage.cache_read_input_tokens,
                ],
                *counts,
            ));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    // Each row is [transcript, line, message_id, request_id, sidechain,
    // model, [input, output, cache writes, cache reads], counted].
    query_per_engine(
        INSERT_RESPONSES_SQLITE,
        "INSERT INTO usage_responses (transcript, line, message_id, request_id, sidechain, model, \
         input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
         counted) SELECT f ->> 0, (f ->> 1)::bigint, f ->> 2, f ->> 3, (f ->> 4)::boolean, \
         f ->> 5, (f #>> '{6,0}')::bigint, (f #>> '{6,1}')::bigint, (f #>> '{6,2}')::bigint, \
         (f #>> '{6,3}')::bigint, (f ->> 7)::boolean FROM jsonb_array_elements($1) f",
    )
    .bind(json_value(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored copies of `message_ids`, each with whether it counts now.
async fn stored_copies(
    conn: &mut Conn<'_>,
    message_ids: &BTreeSet<String>,
) -> Result<Vec<(ResponseCopy, bool)>, StoreError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    type Row = (String, i64, String, Option<String>, bool, i64, bool);
    // The ids go as one JSON array: json_each on SQLite,
    // jsonb_array_elements_text on PostgreSQL.
    let rows: Vec<Row> = query_per_engine(
        "SELECT transcript, line, message_id, request_id, sidechain, \
         input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens, \
         counted FROM usage_responses WHERE message_id IN (SELECT value FROM json_each($1))",
        "SELECT transcript, line, message_id, request_id, sidechain, \
         input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens, \
         counted FROM usage_responses \
         WHERE message_id IN (SELECT jsonb_array_elements_text($1))",
    )
    .bind(json_value(message_ids)?)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(transcript, line, message_id, request_id, sidechain, total, counted)| {
                let copy = ResponseCopy {
                    transcript,
                    line,
                    message_id,
                    request_id,
                    sidechain,
                    total_tokens: total,
                };
                (copy, counted)
            },
        )
        .collect())
}

/// Turns over the `counted` flag of each (transcript, line), in one
/// statement: the rows go as one JSON array of pairs.
async fn flip(conn: &mut Conn<'_>, rows: &[(&str, i64)]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    query_per_engine(
        "UPDATE usage_responses SET counted = NOT counted \
         WHERE (transcript, line) IN \
         (SELECT value ->> 0, value ->> 1 FROM json_each($1))",
        "UPDATE usage_responses u SET counted = NOT u.counted \
         FROM jsonb_array_elements($1) f \
         WHERE u.transcript = f ->> 0 AND u.line = (f ->> 1)::bigint",
    )
    .bind(json_value(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored counted responses of each of `transcripts`, summed by model;
/// a transcript without counted responses is missing.
async fn stored_by_model(
    conn: &mut Conn<'_>,
    transcripts: &BTreeSet<&str>,
) -> Result<BTreeMap<String, BTreeMap<String, TokenUsage>>, StoreError> {
    type Row = (String, String, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = query_per_engine(
        "SELECT transcript, model, CAST(SUM(input_tokens) AS BIGINT), \
         CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_creation_input_tokens) AS BIGINT), \
         CAST(SUM(cache_read_input_tokens) AS BIGINT), COUNT(*) FROM usage_responses \
         WHERE transcript IN (SELECT value FROM json_each($1)) AND counted \
         GROUP BY transcript, model",
        "SELECT transcript, model, CAST(SUM(input_tokens) AS BIGINT), \
         CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_creation_input_tokens) AS BIGINT), \
         CAST(SUM(cache_read_input_tokens) AS BIGINT), COUNT(*) FROM usage_responses \
         WHERE transcript IN (SELECT jsonb_array_elements_text($1)) AND counted \
         GROUP BY transcript, model",
    )
    .bind(json_value(transcripts)?)
    .fetch_all(conn)
    .await?;
    let mut usage: BTreeMap<String, BTreeMap<String, TokenUsage>> = BTreeMap::new();
    for (transcript, model, input, output, created, read, messages) in rows {
        let counts = TokenUsage {
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: created,
            cache_read_input_tokens: read,
            messages,
        };
        usage.entry(transcript).or_default().insert(model, counts);
    }
    Ok(usage)
}

#[cfg(test)]
#[path = "usage_store_tests.rs"]
mod tests;
