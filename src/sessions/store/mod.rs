//! SQL of projects, sessions, pull requests, checks and reactions. Rows are
//! read through the `<table>_payload` views that also feed the change log,
//! so what bosun returns and what an event carries have one shape.

mod facts;
mod lists;
mod projects;
mod saves;

pub use facts::{SessionFacts, session_facts, session_facts_to_change, sessions_facts};
pub use lists::{
    ReactionQuery, SessionOrder, SessionQuery, attention_candidates, list_reactions, list_sessions,
};
pub use projects::{
    get_project, insert_project, list_projects, projects_with_origin, save_project,
};
pub use saves::{ReactionWrite, save_session, save_session_and_reactions, write_reaction};

use super::{Check, Comment, PullRequest, Reaction, Session};
use crate::storage::sql::{Builder, Conn, Engine, JsonText, query, query_per_engine};
use crate::storage::{StoreError, decode_payload, decode_payloads, decode_row, json_value};
use crate::time::UnixMicros;

/// The column that orders sessions by creation: SQLite's rowid; PostgreSQL
/// has none, so its schema keeps the same insertion order in `row_order`.
fn session_order_column(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "s.rowid",
        Engine::Postgres => "s.row_order",
    }
}

// Sessions.

/// The next session number of a project (numbers are never reused).
pub async fn next_session_number(conn: &mut Conn<'_>, project_id: &str) -> Result<i64, StoreError> {
    query("SELECT COALESCE(MAX(number), 0) + 1 FROM sessions WHERE project_id = $1")
        .bind(project_id)
        .fetch_scalar(conn)
        .await
}

pub async fn insert_session(
    conn: &mut Conn<'_>,
    session: &Session,
    number: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO sessions (id, project_id, number, task_id, role, issue_id, harness, state, is_alive, branch, \
         prompt, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&session.id)
    .bind(&session.project_id)
    .bind(number)
    .bind(session.task_id)
    .bind(session.role.map(|r| r.as_str()))
    .bind(&session.issue_id)
    .bind(session.harness.as_str())
    .bind(session.state.as_str())
    .bind(session.is_alive)
    .bind(&session.branch)
    .bind(&session.prompt)
    .bind(session.create_time.0)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_session(conn: &mut Conn<'_>, id: &str) -> Result<Option<Session>, StoreError> {
    let payload = query("SELECT payload FROM sessions_payload WHERE id = $1")
        .bind(id)
        .fetch_optional_scalar(conn)
        .await?;
    decode_payload("session", payload)
}

// Newest first is insertion order reversed: SQLite's rowid, PostgreSQL's
// row_order (it has no rowid); see `session_order_column`.
const SESSIONS_ON_BRANCH_SQLITE: &str = "SELECT p.payload FROM sessions s \
    JOIN sessions_payload p ON p.id = s.id \
    WHERE s.project_id = $1 AND s.branch = $2 ORDER BY s.rowid DESC";
const SESSIONS_ON_BRANCH_POSTGRES: &str = "SELECT p.payload FROM sessions s \
    JOIN sessions_payload p ON p.id = s.id \
    WHERE s.project_id = $1 AND s.branch = $2 ORDER BY s.row_order DESC";

/// A project's sessions on `branch`, newest first.
pub async fn sessions_on_branch(
    conn: &mut Conn<'_>,
    project_id: &str,
    branch: &str,
) -> Result<Vec<Session>, StoreError> {
    let payloads: Vec<JsonText> =
        query_per_engine(SESSIONS_ON_BRANCH_SQLITE, SESSIONS_ON_BRANCH_POSTGRES)
            .bind(project_id)
            .bind(branch)
            .fetch_all_scalars(conn)
            .await?;
    decode_payloads("session", &payloads)
}

// Pull requests, checks and comments.

/// The session's pull request and its current comments.
pub async fn get_pull_request(
    conn: &mut Conn<'_>,
    session_id: &str,
) -> Result<Option<(PullRequest, Vec<Comment>)>, StoreError> {
    let payload: Option<JsonText> =
        query("SELECT payload FROM pull_requests_payload WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional_scalar(conn)
            .await?;
    payload.map(|p| decode_pull_request(&p.0)).transpose()
}

/// A `pull_requests_payload` row: the pull request and its comments.
fn decode_pull_request(payload: &str) -> Result<(PullRequest, Vec<Comment>), StoreError> {
    #[derive(serde::Deserialize)]
    struct WithComments {
        #[serde(flatten)]
        pull_request: PullRequest,
        comments: Vec<Comment>,
    }
    let row: WithComments = decode_row("pull request", payload)?;
    Ok((row.pull_request, row.comments))
}

pub async fn upsert_pull_request(
    conn: &mut Conn<'_>,
    pull_request: &PullRequest,
    comments: &[Comment],
) -> Result<(), StoreError> {
    query(
        "INSERT INTO pull_requests (session_id, project_id, url, number, state, review_decision, ci_state, \
         mergeability, draft, head_sha, branch, title, comments, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (session_id) DO UPDATE SET url = excluded.url, number = excluded.number, \
         state = excluded.state, review_decision = excluded.review_decision, ci_state = excluded.ci_state, \
         mergeability = excluded.mergeability, draft = excluded.draft, head_sha = excluded.head_sha, \
         branch = excluded.branch, title = excluded.title, comments = excluded.comments, \
         update_time = excluded.update_time",
    )
    .bind(&pull_request.session_id)
    .bind(&pull_request.project_id)
    .bind(&pull_request.url)
    .bind(pull_request.number)
    .bind(pull_request.state.as_str())
    .bind(pull_request.review_decision.map(|d| d.as_str()))
    .bind(pull_request.ci_state.map(|s| s.as_str()))
    .bind(pull_request.mergeability.map(|m| m.as_str()))
    .bind(pull_request.draft)
    .bind(&pull_request.head_sha)
    .bind(&pull_request.branch)
    .bind(&pull_request.title)
    .bind(json_value(&comments)?)
    .bind(pull_request.create_time.0)
    .bind(pull_request.update_time.map(|t| t.0))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every recorded run of the session's checks, newest first.
pub async fn checks(conn: &mut Conn<'_>, session_id: &str) -> Result<Vec<Check>, StoreError> {
    let payloads: Vec<JsonText> = query(
        "SELECT p.payload FROM checks c JOIN checks_payload p ON p.id = c.id WHERE c.session_id = $1 ORDER BY c.id DESC",
    )
    .bind(session_id)
    .fetch_all_scalars(conn)
    .await?;
    decode_payloads("check", &payloads)
}

pub async fn insert_check(conn: &mut Conn<'_>, check: &Check) -> Result<(), StoreError> {
    query(
        "INSERT INTO checks (session_id, project_id, pull_request_number, name, commit_sha, status, url, log_tail, \
         create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&check.session_id)
    .bind(&check.project_id)
    .bind(check.pull_request_number)
    .bind(&check.name)
    .bind(&check.commit_sha)
    .bind(check.status.as_str())
    .bind(&check.url)
    .bind(&check.log_tail)
    .bind(check.create_time.0)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_check(conn: &mut Conn<'_>, check: &Check) -> Result<(), StoreError> {
    query("UPDATE checks SET status = $1, url = $2, log_tail = $3, update_time = $4 WHERE id = $5")
        .bind(check.status.as_str())
        .bind(&check.url)
        .bind(&check.log_tail)
        .bind(check.update_time.map(|t| t.0))
        .bind(check.id)
        .execute(conn)
        .await?;
    Ok(())
}

// Reactions.

/// Pending reactions of `keys` opened before `before` (for the timer tick).
pub async fn pending_reactions_before(
    conn: &mut Conn<'_>,
    keys: &[&str],
    before: UnixMicros,
) -> Result<Vec<Reaction>, StoreError> {
    if keys.is_empty() {
        // `IN ()` is no SQL PostgreSQL accepts; no key matches nothing.
        return Ok(Vec::new());
    }
    let mut query = Builder::new(
        "SELECT p.payload FROM reactions r JOIN reactions_payload p ON p.id = r.id WHERE r.status = 'pending' AND r.create_time <= ",
    );
    query.push_bind(before.0).push(" AND r.key IN (");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            query.push(", ");
        }
        query.push_bind(*key);
    }
    query.push(") ORDER BY r.id");
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    decode_payloads("reaction", &payloads)
}

/// When the forge last updated the session's pull request, as the newest
/// applied report said.
pub async fn observed_time(
    conn: &mut Conn<'_>,
    session_id: &str,
) -> Result<Option<UnixMicros>, StoreError> {
    let at: Option<i64> =
        query("SELECT observed_time FROM pull_request_observations WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional_scalar(conn)
            .await?;
    Ok(at.map(UnixMicros))
}

/// Raises the session's observed time to `at` (an older one changes
/// nothing).
pub async fn observe(
    conn: &mut Conn<'_>,
    session_id: &str,
    at: UnixMicros,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO pull_request_observations (session_id, observed_time) VALUES ($1, $2) \
         ON CONFLICT (session_id) DO UPDATE SET observed_time = excluded.observed_time \
         WHERE excluded.observed_time > pull_request_observations.observed_time",
    )
    .bind(session_id)
    .bind(at.0)
    .execute(conn)
    .await?;
    Ok(())
}
