//! SQL of the usage processor's product: each transcript's responses
//! (`usage_responses`), which copy of a repeated response counts
//! ([`dedup`]), and the usage by model of every transcript whose counted
//! responses changed (`transcript_usage`, read by GetUsage and Sessions).

use std::collections::{BTreeMap, BTreeSet};

use super::TokenUsage;
use super::dedup::{self, ResponseCopy};
use super::processor::StoredTranscript;
use super::usage::TranscriptCount;
use crate::storage::sql::{Conn, query_per_engine};
use crate::storage::{StoreError, json_text, json_value};

/// Replaces the responses stored for each transcript, decides again which
/// copies count for every message id they held or hold, and rewrites the
/// usage of each transcript whose counted responses changed. A batch takes
/// the same statements as one transcript (each row set goes as one JSON
/// array) and ends where saving its transcripts one by one would: which
/// copy counts depends on the copies alone, not on the order they came in.
pub async fn save_usage(
    conn: &mut Conn<'_>,
    transcripts: &[(&StoredTranscript, &TranscriptCount)],
) -> Result<(), StoreError> {
    if transcripts.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = transcripts.iter().map(|(t, _)| t.key.as_str()).collect();
    let removed: Vec<Option<String>> = query_per_engine(
        "DELETE FROM usage_responses WHERE transcript IN (SELECT value FROM json_each($1)) \
         RETURNING message_id",
        "DELETE FROM usage_responses WHERE transcript IN (SELECT jsonb_array_elements_text($1)) \
         RETURNING message_id",
    )
    .bind(json_value(&keys)?)
    .fetch_all_scalars(conn)
    .await?;
    let mut message_ids: BTreeSet<String> = removed.into_iter().flatten().collect();
    insert(conn, transcripts).await?;
    for (_, count) in transcripts {
        message_ids.extend(count.responses.iter().filter_map(|r| r.message_id.clone()));
    }

    let touched = recount(conn, &message_ids).await?;
    let batch: BTreeSet<&str> = keys.iter().copied().collect();
    let mut summed = batch.clone();
    summed.extend(touched.iter().map(String::as_str));
    let mut usage = by_model(conn, &summed).await?;
    let mut rows = Vec::with_capacity(transcripts.len());
    for (transcript, count) in transcripts {
        let key = transcript.key.as_str();
        let by_model = json_text(&usage.remove(key).unwrap_or_default())?;
        let processed = transcript.processed_time.0;
        rows.push((
            key,
            transcript.key.owner(),
            &count.session_id,
            by_model,
            processed,
        ));
    }
    query_per_engine(
        "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, processed_time) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
         FROM json_each($1) WHERE true \
         ON CONFLICT (transcript) DO UPDATE SET owner = excluded.owner, \
         session_id = excluded.session_id, by_model = excluded.by_model, \
         processed_time = excluded.processed_time",
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

    // The other transcripts whose counted responses changed, each written
    // only when its usage changed: each write is a transcript_usage event.
    let mut others = Vec::new();
    for other in touched
        .iter()
        .filter(|other| !batch.contains(other.as_str()))
    {
        let by_model = json_text(&usage.remove(other.as_str()).unwrap_or_default())?;
        others.push((other.as_str(), by_model));
    }
    if !others.is_empty() {
        query_per_engine(
            "UPDATE transcript_usage SET by_model = f.value ->> 1 FROM json_each($1) f \
             WHERE transcript_usage.transcript = f.value ->> 0 \
             AND transcript_usage.by_model <> f.value ->> 1",
            "UPDATE transcript_usage u SET by_model = (f ->> 1)::jsonb \
             FROM jsonb_array_elements($1) f \
             WHERE u.transcript = f ->> 0 AND u.by_model <> (f ->> 1)::jsonb",
        )
        .bind(json_value(&others)?)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Stores every transcript's responses, all in one statement.
async fn insert(
    conn: &mut Conn<'_>,
    transcripts: &[(&StoredTranscript, &TranscriptCount)],
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
    for (transcript, count) in transcripts {
        for response in &count.responses {
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
                // A response without message id always counts (see dedup).
                response.message_id.is_none(),
            ));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    // Each row is [transcript, line, message_id, request_id, sidechain,
    // model, [input, output, cache writes, cache reads], counted].
    query_per_engine(
        "INSERT INTO usage_responses (transcript, line, message_id, request_id, sidechain, model, \
         input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
         counted) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
         value ->> 5, value ->> '$[6][0]', value ->> '$[6][1]', value ->> '$[6][2]', \
         value ->> '$[6][3]', value ->> 7 FROM json_each($1)",
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

/// The counted responses of each of `transcripts`, summed by model; a
/// transcript without counted responses is missing.
async fn by_model(
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
