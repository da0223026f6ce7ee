//! SQL of what the built-in processors produce: token usage per transcript
//! as read by GetUsage and shown on Sessions (written by [`super::usage_store`]) and failed tool results per
//! transcript (whose new bursts become lessons).

use std::collections::BTreeMap;

use super::processor::StoredTranscript;
use super::tool_errors::{LESSON_TYPE, ToolErrorCount};
use super::{
    TokenUsage, ToolErrorFilter, TranscriptKey, TranscriptToolErrors, TranscriptUsage, UsageFilter,
};
use crate::lessons::{Journal, NewLesson};
use crate::storage::sql::{Builder, Conn, JsonText, query, query_per_engine};
use crate::storage::{StoreError, json_value};
use crate::time::UnixMicros;

type ByModel = BTreeMap<String, TokenUsage>;

fn by_model(transcript: &str, payload: &str) -> Result<ByModel, StoreError> {
    serde_json::from_str(payload)
        .map_err(|err| StoreError::Malformed(format!("usage of {transcript}: {err}")))
}

/// The usage of the transcripts recording one agent session, summed, from
/// their `transcript_usage` rows folded into a JSON array of
/// `[transcript, by_model]` pairs (how a session's facts carry them);
/// `None` when no transcript records it.
pub fn usage_total(aggregate: &str) -> Result<Option<TokenUsage>, StoreError> {
    let rows: Vec<(String, ByModel)> = serde_json::from_str(aggregate)
        .map_err(|err| StoreError::Malformed(format!("usage of a session: {err}")))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut total = TokenUsage::default();
    for usage in rows.iter().flat_map(|(_, by_model)| by_model.values()) {
        total.add(usage);
    }
    Ok(Some(total))
}

fn push_filters(conn: &Conn<'_>, query: &mut Builder<'_>, filter: &UsageFilter) {
    let UsageFilter {
        transcript,
        owner,
        session_id,
        model,
    } = filter.clone();
    if let Some(transcript) = transcript {
        query.push(" AND u.transcript = ").push_bind(transcript);
    }
    if let Some(owner) = owner {
        query.push(" AND u.owner = ").push_bind(owner);
    }
    if let Some(session_id) = session_id {
        query.push(" AND u.session_id = ").push_bind(session_id);
    }
    if let Some(model) = model {
        // The model is one of by_model's keys.
        query
            .push(conn.dialect(
                " AND EXISTS (SELECT 1 FROM json_each(u.by_model) WHERE key = ",
                " AND EXISTS (SELECT 1 FROM jsonb_object_keys(u.by_model) AS k(key) WHERE key = ",
            ))
            .push_bind(model)
            .push(")");
    }
}

/// Matching transcripts ordered by key, after `after`, at most `limit`; only
/// the filter's model is kept when it names one.
pub async fn usage_page(
    conn: &mut Conn<'_>,
    filter: &UsageFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<TranscriptUsage>, StoreError> {
    let mut query = Builder::new(
        "SELECT u.transcript, u.owner, u.session_id, u.by_model, u.processed_time \
         FROM transcript_usage u WHERE 1 = 1",
    );
    push_filters(conn, &mut query, filter);
    if let Some(after) = after {
        query
            .push(" AND u.transcript > ")
            .push_bind(after.to_string());
    }
    query
        .push(" ORDER BY u.transcript LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<(String, String, String, JsonText, i64)> = query.build().fetch_all(conn).await?;
    rows.into_iter()
        .map(|(transcript, owner, session_id, payload, processed_time)| {
            let mut models = by_model(&transcript, &payload.0)?;
            if let Some(model) = &filter.model {
                models.retain(|name, _| name == model);
            }
            let mut usage = TokenUsage::default();
            models.values().for_each(|model| usage.add(model));
            Ok(TranscriptUsage {
                transcript,
                owner,
                session_id,
                usage,
                by_model: models.into_iter().collect(),
                processed_time: UnixMicros(processed_time),
            })
        })
        .collect()
}

/// Totals per model over every matching transcript, ordered by model.
pub async fn usage_totals(
    conn: &mut Conn<'_>,
    filter: &UsageFilter,
) -> Result<Vec<(String, TokenUsage)>, StoreError> {
    // Each model's figures summed out of the JSON objects: json_each and
    // json_extract on SQLite, jsonb_each and ->> on PostgreSQL (whose SUM
    // of bigint is numeric, hence the casts).
    let mut query = Builder::new(conn.dialect(
        "SELECT m.key, SUM(json_extract(m.value, '$.input_tokens')), \
         SUM(json_extract(m.value, '$.output_tokens')), \
         SUM(json_extract(m.value, '$.cache_creation_input_tokens')), \
         SUM(json_extract(m.value, '$.cache_read_input_tokens')), \
         SUM(json_extract(m.value, '$.messages')) \
         FROM transcript_usage u, json_each(u.by_model) m WHERE 1 = 1",
        "SELECT m.key, CAST(SUM(CAST(m.value ->> 'input_tokens' AS BIGINT)) AS BIGINT), \
         CAST(SUM(CAST(m.value ->> 'output_tokens' AS BIGINT)) AS BIGINT), \
         CAST(SUM(CAST(m.value ->> 'cache_creation_input_tokens' AS BIGINT)) AS BIGINT), \
         CAST(SUM(CAST(m.value ->> 'cache_read_input_tokens' AS BIGINT)) AS BIGINT), \
         CAST(SUM(CAST(m.value ->> 'messages' AS BIGINT)) AS BIGINT) \
         FROM transcript_usage u, jsonb_each(u.by_model) m WHERE 1 = 1",
    ));
    push_filters(conn, &mut query, filter);
    if let Some(model) = &filter.model {
        query.push(" AND m.key = ").push_bind(model.clone());
    }
    query.push(" GROUP BY m.key ORDER BY m.key");
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = query.build().fetch_all(conn).await?;
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

/// Replaces the tool errors stored for the transcript, and records one AUTO
/// lesson when it holds more bursts than last time.
pub async fn save_tool_errors(
    conn: &mut Conn<'_>,
    transcript: &StoredTranscript,
    count: &ToolErrorCount,
    journal: &Journal,
) -> Result<(), StoreError> {
    let previous: Option<i64> =
        query("SELECT bursts FROM transcript_tool_errors WHERE transcript = $1")
            .bind(transcript.key.as_str())
            .fetch_optional_scalar(conn)
            .await?;
    query(
        "INSERT INTO transcript_tool_errors (transcript, owner, session_id, by_tool, errors, bursts, \
         processed_time) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (transcript) DO UPDATE SET \
         owner = excluded.owner, session_id = excluded.session_id, by_tool = excluded.by_tool, \
         errors = excluded.errors, bursts = excluded.bursts, processed_time = excluded.processed_time",
    )
    .bind(transcript.key.as_str())
    .bind(transcript.key.owner())
    .bind(&count.session_id)
    .bind(json_value(&count.by_tool)?)
    .bind(count.errors)
    .bind(count.bursts)
    .bind(transcript.processed_time.0)
    .execute(conn)
    .await?;
    let new_bursts = count.bursts - previous.unwrap_or(0);
    if new_bursts > 0 {
        let lesson = burst_lesson(conn, transcript, count, new_bursts).await?;
        journal.record_auto(conn, lesson).await;
    }
    Ok(())
}

/// Deletes the tool errors stored for transcripts gone from the folder.
pub async fn forget_tool_errors(
    conn: &mut Conn<'_>,
    gone: &[TranscriptKey],
) -> Result<(), StoreError> {
    let keys: Vec<&str> = gone.iter().map(TranscriptKey::as_str).collect();
    query_per_engine(
        "DELETE FROM transcript_tool_errors WHERE transcript IN (SELECT value FROM json_each($1))",
        "DELETE FROM transcript_tool_errors \
         WHERE transcript IN (SELECT jsonb_array_elements_text($1))",
    )
    .bind(json_value(&keys)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// The lesson for `new_bursts` bursts, about the session whose
/// agent_session_id the transcript records, when bosun knows it.
async fn burst_lesson(
    conn: &mut Conn<'_>,
    transcript: &StoredTranscript,
    count: &ToolErrorCount,
    new_bursts: i64,
) -> Result<NewLesson, StoreError> {
    // The newest such session: SQLite's rowid, PostgreSQL's row_order.
    let session: Option<(String, Option<i64>, Option<String>, String)> = query_per_engine(
        "SELECT id, task_id, issue_id, harness FROM sessions WHERE agent_session_id = $1 \
         ORDER BY rowid DESC LIMIT 1",
        "SELECT id, task_id, issue_id, harness FROM sessions WHERE agent_session_id = $1 \
         ORDER BY row_order DESC LIMIT 1",
    )
    .bind(&count.session_id)
    .fetch_optional(conn)
    .await?;
    let by_tool: Vec<String> = count
        .by_tool
        .iter()
        .map(|(tool, errors)| format!("{tool} {errors}"))
        .collect();
    let detail = format!(
        "{new_bursts} new burst(s) of {} or more failed tool results in a row (longest {}) in \
         transcript {} of agent session {}; failed tool results by tool: {}",
        count.burst_threshold,
        count.longest_run,
        transcript.key,
        count.session_id,
        by_tool.join(", ")
    );
    let (session_id, task_id, work_item_id, agent) = match session {
        Some((id, task_id, issue_id, harness)) => (Some(id), task_id, issue_id, Some(harness)),
        None => (None, None, None, None),
    };
    // A burst in one session never hides one in another: the dedup window
    // folds bursts of one bosun session, or of one transcript without one.
    let dedup_subject = match &session_id {
        Some(id) => format!("session:{id}"),
        None => format!("transcript:{}", transcript.key),
    };
    Ok(NewLesson {
        session_id,
        task_id,
        work_item_id,
        agent,
        detail: Some(detail),
        dedup_subject: Some(dedup_subject),
        ..NewLesson::auto(LESSON_TYPE)
    })
}

fn push_tool_error_filters(query: &mut Builder<'_>, filter: &ToolErrorFilter) {
    let ToolErrorFilter {
        transcript,
        owner,
        session_id,
    } = filter.clone();
    if let Some(transcript) = transcript {
        query.push(" AND t.transcript = ").push_bind(transcript);
    }
    if let Some(owner) = owner {
        query.push(" AND t.owner = ").push_bind(owner);
    }
    if let Some(session_id) = session_id {
        query.push(" AND t.session_id = ").push_bind(session_id);
    }
}

/// Matching transcripts' failed tool results ordered by key, after `after`,
/// at most `limit`.
pub async fn tool_errors_page(
    conn: &mut Conn<'_>,
    filter: &ToolErrorFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<TranscriptToolErrors>, StoreError> {
    let mut query = Builder::new(
        "SELECT t.transcript, t.owner, t.session_id, t.by_tool, t.errors, t.bursts, \
         t.processed_time FROM transcript_tool_errors t WHERE 1 = 1",
    );
    push_tool_error_filters(&mut query, filter);
    if let Some(after) = after {
        query
            .push(" AND t.transcript > ")
            .push_bind(after.to_string());
    }
    query
        .push(" ORDER BY t.transcript LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<(String, String, String, JsonText, i64, i64, i64)> =
        query.build().fetch_all(conn).await?;
    rows.into_iter()
        .map(
            |(transcript, owner, session_id, by_tool, errors, bursts, processed_time)| {
                let by_tool: BTreeMap<String, i64> =
                    serde_json::from_str(&by_tool.0).map_err(|err| {
                        StoreError::Malformed(format!("tool errors of {transcript}: {err}"))
                    })?;
                Ok(TranscriptToolErrors {
                    transcript,
                    owner,
                    session_id,
                    by_tool: by_tool.into_iter().collect(),
                    errors,
                    bursts,
                    processed_time: UnixMicros(processed_time),
                })
            },
        )
        .collect()
}

/// Failed tool results per tool over every matching transcript, ordered by
/// tool, and the matching transcripts' errors and bursts in all.
pub async fn tool_error_totals(
    conn: &mut Conn<'_>,
    filter: &ToolErrorFilter,
) -> Result<(Vec<(String, i64)>, i64, i64), StoreError> {
    // by_tool's values summed per key: json_each on SQLite, jsonb_each_text
    // on PostgreSQL (whose SUM of bigint is numeric, hence the cast).
    let mut query = Builder::new(conn.dialect(
        "SELECT m.key, SUM(m.value) FROM transcript_tool_errors t, json_each(t.by_tool) m \
         WHERE 1 = 1",
        "SELECT m.key, CAST(SUM(CAST(m.value AS BIGINT)) AS BIGINT) \
         FROM transcript_tool_errors t, jsonb_each_text(t.by_tool) m WHERE 1 = 1",
    ));
    push_tool_error_filters(&mut query, filter);
    query.push(" GROUP BY m.key ORDER BY m.key");
    let by_tool: Vec<(String, i64)> = query.build().fetch_all(conn).await?;
    let mut query = Builder::new(
        "SELECT CAST(COALESCE(SUM(t.errors), 0) AS BIGINT), \
         CAST(COALESCE(SUM(t.bursts), 0) AS BIGINT) FROM transcript_tool_errors t WHERE 1 = 1",
    );
    push_tool_error_filters(&mut query, filter);
    let (errors, bursts): (i64, i64) = query.build().fetch_one(conn).await?;
    Ok((by_tool, errors, bursts))
}
