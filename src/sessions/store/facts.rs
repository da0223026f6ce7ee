//! A session with everything its view and its reaction planner read: its
//! pull request (with comments), every check run, and the token usage of
//! its transcripts. One statement per engine, the related rows folded into
//! JSON arrays by the database, so GetSession and a session write's reply
//! cost one round trip instead of four; a session write reads the session's
//! open reactions in the same statement.

use std::collections::HashMap;

use super::{decode_pull_request, decode_row};
use crate::processors::{self, TokenUsage};
use crate::sessions::{Check, Comment, PullRequest, Reaction, Session};
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
const COLUMNS_SQLITE: &str = "s.id, p.payload, \
    (SELECT r.payload FROM pull_requests_payload r WHERE r.session_id = s.id), \
    (SELECT json_group_array(json(c.payload) ORDER BY c.id DESC) \
       FROM checks k JOIN checks_payload c ON c.id = k.id WHERE k.session_id = s.id), \
    (SELECT json_group_array(json_array(u.transcript, json(u.by_model))) \
       FROM transcript_usage u WHERE u.session_id = s.agent_session_id)";
const COLUMNS_POSTGRES: &str = "s.id, p.payload, \
    (SELECT r.payload FROM pull_requests_payload r WHERE r.session_id = s.id), \
    (SELECT COALESCE(jsonb_agg(c.payload ORDER BY c.id DESC), '[]'::jsonb) \
       FROM checks k JOIN checks_payload c ON c.id = k.id WHERE k.session_id = s.id), \
    (SELECT COALESCE(jsonb_agg(jsonb_build_array(u.transcript, u.by_model)), '[]'::jsonb) \
       FROM transcript_usage u WHERE u.session_id = s.agent_session_id)";
// The open (pending or escalated) reactions, oldest first; an index holds
// exactly the open ones per session.
const OPEN_REACTIONS_SQLITE: &str = "(SELECT json_group_array(json(o.payload) ORDER BY x.id) \
    FROM reactions x JOIN reactions_payload o ON o.id = x.id \
    WHERE x.session_id = s.id AND x.status IN ('pending', 'escalated'))";
const OPEN_REACTIONS_POSTGRES: &str = "(SELECT COALESCE(jsonb_agg(o.payload ORDER BY x.id), '[]'::jsonb) \
    FROM reactions x JOIN reactions_payload o ON o.id = x.id \
    WHERE x.session_id = s.id AND x.status IN ('pending', 'escalated'))";
const FROM: &str = "FROM sessions s JOIN sessions_payload p ON p.id = s.id";

type FactsRow = (String, JsonText, Option<JsonText>, JsonText, JsonText);
type FactsToChangeRow = (
    String,
    JsonText,
    Option<JsonText>,
    JsonText,
    JsonText,
    JsonText,
);

/// The session `id` and its facts, or `None` when there is no such session.
pub async fn session_facts(
    conn: &mut Conn<'_>,
    id: &str,
) -> Result<Option<SessionFacts>, StoreError> {
    let row: Option<FactsRow> = query_per_engine(
        &format!("SELECT {COLUMNS_SQLITE} {FROM} WHERE s.id = $1"),
        &format!("SELECT {COLUMNS_POSTGRES} {FROM} WHERE s.id = $1"),
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(decode_facts).transpose()
}

/// [`session_facts`] with the session's open reactions, in the same
/// statement: what a session write reads before it changes the session and
/// plans reactions (writing the session does not change its reactions, so
/// they are as the planner would read them after the write).
pub async fn session_facts_to_change(
    conn: &mut Conn<'_>,
    id: &str,
) -> Result<Option<(SessionFacts, Vec<Reaction>)>, StoreError> {
    let row: Option<FactsToChangeRow> = query_per_engine(
        &format!("SELECT {COLUMNS_SQLITE}, {OPEN_REACTIONS_SQLITE} {FROM} WHERE s.id = $1"),
        &format!("SELECT {COLUMNS_POSTGRES}, {OPEN_REACTIONS_POSTGRES} {FROM} WHERE s.id = $1"),
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(|(id, session, pull_request, checks, usage, open)| {
        let facts = decode_facts((id, session, pull_request, checks, usage))?;
        Ok((facts, decode_row("reaction", &open.0)?))
    })
    .transpose()
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
        &format!("SELECT {COLUMNS_SQLITE} {FROM} WHERE s.id IN (SELECT value FROM json_each($1))"),
        &format!(
            "SELECT {COLUMNS_POSTGRES} {FROM} \
             WHERE s.id IN (SELECT jsonb_array_elements_text($1))"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;
    use crate::storage::sql::query;

    /// Every part of a session write's read is a lookup: the session by its
    /// key, and its open reactions through the index that holds only the
    /// open ones (a session's cleared reactions grow without bound).
    #[tokio::test]
    async fn a_write_reads_the_facts_and_open_reactions_by_lookups() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path()).await?;
        let statement = format!(
            "EXPLAIN QUERY PLAN SELECT {COLUMNS_SQLITE}, {OPEN_REACTIONS_SQLITE} {FROM} WHERE s.id = $1"
        );
        let plan: Vec<(i64, i64, i64, String)> = query(&statement)
            .bind("acme-1")
            .fetch_all(&mut db.read().await?.conn())
            .await?;
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN")),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|step| step.starts_with("SEARCH x USING INDEX reactions_one_open")),
            "{steps:?}"
        );
        db.close().await;
        Ok(())
    }
}
