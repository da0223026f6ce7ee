//! A session with everything its view and its reaction planner read: its
//! pull request (with comments), every check run, and the token usage of
//! its transcripts. One statement per engine, the related rows folded into
//! JSON arrays by the database, so GetSession and a session write's reply
//! cost one round trip instead of four.

use std::collections::HashMap;

use super::{decode_pull_request, decode_row};
use crate::processors::{self, TokenUsage};
use crate::sessions::{Check, Comment, PullRequest, Session};
use crate::storage::sql::{Conn, JsonText, query_per_engine};
use crate::storage::{StoreError, json_value};

/// One session's row and the rows beside it, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub session: Session,
    /// The pull request and its current comments.
    pub pull_request: Option<(PullRequest, Vec<Comment>)>,
    /// Every recorded run of every check, newest first.
    pub checks: Vec<Check>,
    /// Summed over the transcripts recording the session's agent session;
    /// `None` when none does.
    pub usage: Option<TokenUsage>,
}

// The usage column is `[[transcript, by_model], ...]`, the shape
// `processors::usage_total` reads. Checks are newest first (id descending),
// as `super::checks` lists them.
const FACTS_SQLITE: &str = "SELECT s.id, p.payload, \
    (SELECT r.payload FROM pull_requests_payload r WHERE r.session_id = s.id), \
    (SELECT json_group_array(json(c.payload) ORDER BY c.id DESC) \
       FROM checks k JOIN checks_payload c ON c.id = k.id WHERE k.session_id = s.id), \
    (SELECT json_group_array(json_array(u.transcript, json(u.by_model))) \
       FROM transcript_usage u WHERE u.session_id = s.agent_session_id) \
    FROM sessions s JOIN sessions_payload p ON p.id = s.id";
const FACTS_POSTGRES: &str = "SELECT s.id, p.payload, \
    (SELECT r.payload FROM pull_requests_payload r WHERE r.session_id = s.id), \
    (SELECT COALESCE(jsonb_agg(c.payload ORDER BY c.id DESC), '[]'::jsonb) \
       FROM checks k JOIN checks_payload c ON c.id = k.id WHERE k.session_id = s.id), \
    (SELECT COALESCE(jsonb_agg(jsonb_build_array(u.transcript, u.by_model)), '[]'::jsonb) \
       FROM transcript_usage u WHERE u.session_id = s.agent_session_id) \
    FROM sessions s JOIN sessions_payload p ON p.id = s.id";

type FactsRow = (String, JsonText, Option<JsonText>, JsonText, JsonText);

/// The session `id` and its facts, or `None` when there is no such session.
pub async fn session_facts(
    conn: &mut Conn<'_>,
    id: &str,
) -> Result<Option<SessionFacts>, StoreError> {
    let row: Option<FactsRow> = query_per_engine(
        &format!("{FACTS_SQLITE} WHERE s.id = $1"),
        &format!("{FACTS_POSTGRES} WHERE s.id = $1"),
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(decode_facts).transpose()
}

/// The facts of each of the sessions `ids` that exists, by id, in one
/// statement (the ids go as one JSON array).
pub async fn sessions_facts(
    conn: &mut Conn<'_>,
    ids: &[&str],
) -> Result<HashMap<String, SessionFacts>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<FactsRow> = query_per_engine(
        &format!("{FACTS_SQLITE} WHERE s.id IN (SELECT value FROM json_each($1))"),
        &format!("{FACTS_POSTGRES} WHERE s.id IN (SELECT jsonb_array_elements_text($1))"),
    )
    .bind(json_value(&ids)?)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| Ok((row.0.clone(), decode_facts(row)?)))
        .collect()
}

fn decode_facts(row: FactsRow) -> Result<SessionFacts, StoreError> {
    let (_, session, pull_request, checks, usage) = row;
    Ok(SessionFacts {
        session: decode_row("session", &session.0)?,
        pull_request: pull_request
            .map(|payload| decode_pull_request(&payload.0))
            .transpose()?,
        checks: decode_row("check", &checks.0)?,
        usage: processors::usage_total(&usage.0)?,
    })
}
