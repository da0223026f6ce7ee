//! SQL of the usage processor's product: each transcript's responses
//! (`usage_responses`), which copy of a repeated response counts
//! ([`dedup`]), and the usage by model of every transcript whose counted
//! responses changed (`transcript_usage`, read by GetUsage and Sessions).

use std::collections::{BTreeMap, BTreeSet};

use super::TokenUsage;
use super::dedup::{self, ResponseCopy};
use super::processor::StoredTranscript;
use super::usage::{Response, TranscriptCount};
use crate::storage::sql::{Builder, Conn, query, query_per_engine};
use crate::storage::{StoreError, json_value};

/// Rows per INSERT statement (11 bound values each, well under SQLite's limit).
const INSERT_CHUNK: usize = 500;

/// Replaces the responses stored for the transcript, decides again which
/// copies count for every message id it held or holds, and rewrites the
/// usage of each transcript whose counted responses changed.
pub async fn save_usage(
    conn: &mut Conn<'_>,
    transcript: &StoredTranscript,
    count: &TranscriptCount,
) -> Result<(), StoreError> {
    let key = transcript.key.as_str();
    let removed: Vec<Option<String>> =
        query("DELETE FROM usage_responses WHERE transcript = $1 RETURNING message_id")
            .bind(key)
            .fetch_all_scalars(conn)
            .await?;
    let mut message_ids: BTreeSet<String> = removed.into_iter().flatten().collect();
    for chunk in count.responses.chunks(INSERT_CHUNK) {
        insert(conn, key, chunk).await?;
    }
    message_ids.extend(count.responses.iter().filter_map(|r| r.message_id.clone()));

    let touched = recount(conn, &message_ids).await?;
    let usage = json_value(&by_model(conn, key).await?)?;
    query(
        "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, processed_time) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (transcript) DO UPDATE SET owner = excluded.owner, \
         session_id = excluded.session_id, by_model = excluded.by_model, \
         processed_time = excluded.processed_time",
    )
    .bind(key)
    .bind(transcript.key.owner())
    .bind(&count.session_id)
    .bind(usage)
    .bind(transcript.processed_time.0)
    .execute(conn)
    .await?;
    for other in touched.iter().filter(|other| other.as_str() != key) {
        let by_model = json_value(&by_model(conn, other).await?)?;
        // Written only when it changed: each write is a transcript_usage event.
        query("UPDATE transcript_usage SET by_model = $1 WHERE transcript = $2 AND by_model <> $1")
            .bind(by_model)
            .bind(other)
            .execute(conn)
            .await?;
    }
    Ok(())
}

async fn insert(conn: &mut Conn<'_>, key: &str, responses: &[Response]) -> Result<(), StoreError> {
    if responses.is_empty() {
        return Ok(());
    }
    let mut query = Builder::new(
        "INSERT INTO usage_responses (transcript, line, message_id, request_id, sidechain, model, \
         input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
         counted) VALUES ",
    );
    for (i, response) in responses.iter().enumerate() {
        query.push(if i == 0 { "(" } else { ", (" });
        query
            .push_bind(key)
            .push(", ")
            .push_bind(response.line)
            .push(", ")
            .push_bind(response.message_id.as_deref())
            .push(", ")
            .push_bind(response.request_id.as_deref())
            .push(", ")
            .push_bind(response.sidechain)
            .push(", ")
            .push_bind(response.model.as_str())
            .push(", ")
            .push_bind(response.usage.input_tokens)
            .push(", ")
            .push_bind(response.usage.output_tokens)
            .push(", ")
            .push_bind(response.usage.cache_creation_input_tokens)
            .push(", ")
            .push_bind(response.usage.cache_read_input_tokens)
            .push(", ")
            .push_bind(response.message_id.is_none())
            .push(")");
    }
    query.build().execute(conn).await?;
    Ok(())
}

/// Decides again which copies of `message_ids` count, stores the changes and
/// returns the transcripts whose counted responses changed.
async fn recount(
    conn: &mut Conn<'_>,
    message_ids: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StoreError> {
    if message_ids.is_empty() {
        return Ok(BTreeSet::new());
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
    let copies: Vec<ResponseCopy> = rows
        .iter()
        .map(
            |(transcript, line, message_id, request_id, sidechain, total, _)| ResponseCopy {
                transcript: transcript.clone(),
                line: *line,
                message_id: message_id.clone(),
                request_id: request_id.clone(),
                sidechain: *sidechain,
                total_tokens: *total,
            },
        )
        .collect();
    let flipped: Vec<(&str, i64)> = rows
        .iter()
        .zip(dedup::counted(&copies))
        .filter(|((.., counted), counts)| counted != counts)
        .map(|((transcript, line, ..), _)| (transcript.as_str(), *line))
        .collect();
    if !flipped.is_empty() {
        // Every row whose decision changed, in one statement: the rows go
        // as one JSON array of [transcript, line] pairs.
        query_per_engine(
            "UPDATE usage_responses SET counted = NOT counted \
             WHERE (transcript, line) IN \
             (SELECT value ->> 0, value ->> 1 FROM json_each($1))",
            "UPDATE usage_responses u SET counted = NOT u.counted \
             FROM jsonb_array_elements($1) f \
             WHERE u.transcript = f ->> 0 AND u.line = (f ->> 1)::bigint",
        )
        .bind(json_value(&flipped)?)
        .execute(conn)
        .await?;
    }
    Ok(flipped
        .into_iter()
        .map(|(transcript, _)| transcript.to_string())
        .collect())
}

/// The transcript's counted responses, summed by model.
async fn by_model(
    conn: &mut Conn<'_>,
    transcript: &str,
) -> Result<BTreeMap<String, TokenUsage>, StoreError> {
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = query(
        "SELECT model, CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), \
         CAST(SUM(cache_creation_input_tokens) AS BIGINT), \
         CAST(SUM(cache_read_input_tokens) AS BIGINT), COUNT(*) FROM usage_responses \
         WHERE transcript = $1 AND counted GROUP BY model",
    )
    .bind(transcript)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(model, input, output, created, read, messages)| {
            let usage = TokenUsage {
                input_tokens: input,
                output_tokens: output,
                cache_creation_input_tokens: created,
                cache_read_input_tokens: read,
                messages,
            };
            (model, usage)
        })
        .collect())
}
