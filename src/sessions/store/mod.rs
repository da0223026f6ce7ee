//! SQL of projects, sessions, pull requests, checks and reactions. Rows are
//! read through the `<table>_payload` views that also feed the change log,
//! so what bosun returns and what an event carries have one shape.

use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};

mod lists;

pub use lists::{
    ReactionQuery, SessionOrder, SessionQuery, attention_candidates, list_reactions, list_sessions,
};

use super::{Check, Comment, Project, PullRequest, Reaction, Session};
use crate::storage::{StoreError, decode_row as decode, decode_rows, json_text as json};
use crate::time::UnixMicros;

// Projects.

pub async fn insert_project(
    conn: &mut SqliteConnection,
    project: &Project,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO projects (id, repo_path, origin_url, display_name, register_time, coverage_threshold, \
         plane, required_ci_contexts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&project.id)
    .bind(&project.repo_path)
    .bind(&project.origin_url)
    .bind(&project.display_name)
    .bind(project.register_time.0)
    .bind(project.coverage_threshold)
    .bind(project.plane.as_ref().map(json).transpose()?)
    .bind(json(&project.required_ci_contexts)?)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_project(
    conn: &mut SqliteConnection,
    project: &Project,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE projects SET repo_path = ?, origin_url = ?, display_name = ?, update_time = ?, archive_time = ?, \
         coverage_threshold = ?, plane = ?, required_ci_contexts = ? WHERE id = ?",
    )
    .bind(&project.repo_path)
    .bind(&project.origin_url)
    .bind(&project.display_name)
    .bind(project.update_time.map(|t| t.0))
    .bind(project.archive_time.map(|t| t.0))
    .bind(project.coverage_threshold)
    .bind(project.plane.as_ref().map(json).transpose()?)
    .bind(json(&project.required_ci_contexts)?)
    .bind(&project.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_project<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    id: &str,
) -> Result<Option<Project>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM projects_payload WHERE id = ?")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    payload.map(|p| decode("project", &p)).transpose()
}

/// Projects ordered by id, after `after` (an id), at most `limit`.
pub async fn list_projects<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    include_archived: bool,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Project>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM projects x JOIN projects_payload p ON p.id = x.id WHERE 1 = 1",
    );
    if !include_archived {
        query.push(" AND x.archive_time IS NULL");
    }
    if let Some(after) = after {
        query.push(" AND x.id > ").push_bind(after);
    }
    query
        .push(" ORDER BY x.id LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    decode_rows("project", &payloads)
}

/// Every project with an origin URL (to match a forge's "owner/name").
pub async fn projects_with_origin(conn: &mut SqliteConnection) -> Result<Vec<Project>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM projects x JOIN projects_payload p ON p.id = x.id WHERE x.origin_url IS NOT NULL",
    )
    .fetch_all(conn)
    .await?;
    decode_rows("project", &payloads)
}

// Sessions.

/// The next session number of a project (numbers are never reused).
pub async fn next_session_number(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> Result<i64, StoreError> {
    let next: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM sessions WHERE project_id = ?",
    )
    .bind(project_id)
    .fetch_one(conn)
    .await?;
    Ok(next)
}

pub async fn insert_session(
    conn: &mut SqliteConnection,
    session: &Session,
    number: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, project_id, number, task_id, role, issue_id, harness, state, is_alive, branch, \
         prompt, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

/// Writes every mutable column of `session`.
pub async fn save_session(
    conn: &mut SqliteConnection,
    session: &Session,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sessions SET state = ?, termination_reason = ?, termination_detail = ?, is_alive = ?, \
         activity_state = ?, activity_source = ?, activity_time = ?, detecting_attempts = ?, \
         detecting_start_time = ?, detecting_evidence_hash = ?, detecting_last_evidence = ?, branch = ?, \
         workspace_path = ?, runtime_handle_id = ?, runtime_name = ?, agent_session_id = ?, prompt = ?, \
         update_time = ?, start_time = ?, end_time = ?, restore_time = ? WHERE id = ?",
    )
    .bind(session.state.as_str())
    .bind(session.termination_reason.map(|r| r.as_str()))
    .bind(&session.termination_detail)
    .bind(session.is_alive)
    .bind(session.activity_state.map(|s| s.as_str()))
    .bind(session.activity_source.map(|s| s.as_str()))
    .bind(session.activity_time.map(|t| t.0))
    .bind(session.detecting_attempts)
    .bind(session.detecting_start_time.map(|t| t.0))
    .bind(&session.detecting_evidence_hash)
    .bind(&session.detecting_last_evidence)
    .bind(&session.branch)
    .bind(&session.workspace_path)
    .bind(&session.runtime_handle_id)
    .bind(&session.runtime_name)
    .bind(&session.agent_session_id)
    .bind(&session.prompt)
    .bind(session.update_time.map(|t| t.0))
    .bind(session.start_time.map(|t| t.0))
    .bind(session.end_time.map(|t| t.0))
    .bind(session.restore_time.map(|t| t.0))
    .bind(&session.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_session<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    id: &str,
) -> Result<Option<Session>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM sessions_payload WHERE id = ?")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    payload.map(|p| decode("session", &p)).transpose()
}

/// A project's sessions on `branch`, newest first.
pub async fn sessions_on_branch(
    conn: &mut SqliteConnection,
    project_id: &str,
    branch: &str,
) -> Result<Vec<Session>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM sessions s JOIN sessions_payload p ON p.id = s.id \
         WHERE s.project_id = ? AND s.branch = ? ORDER BY s.rowid DESC",
    )
    .bind(project_id)
    .bind(branch)
    .fetch_all(conn)
    .await?;
    decode_rows("session", &payloads)
}

// Pull requests, checks and comments.

/// The session's pull request and its current comments.
pub async fn get_pull_request<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    session_id: &str,
) -> Result<Option<(PullRequest, Vec<Comment>)>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM pull_requests_payload WHERE session_id = ?")
            .bind(session_id)
            .fetch_optional(executor)
            .await?;
    let Some(payload) = payload else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct WithComments {
        #[serde(flatten)]
        pull_request: PullRequest,
        comments: Vec<Comment>,
    }
    let row: WithComments = decode("pull request", &payload)?;
    Ok(Some((row.pull_request, row.comments)))
}

pub async fn upsert_pull_request(
    conn: &mut SqliteConnection,
    pull_request: &PullRequest,
    comments: &[Comment],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pull_requests (session_id, project_id, url, number, state, review_decision, ci_state, \
         mergeability, draft, head_sha, branch, title, comments, create_time, update_time) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .bind(json(&comments)?)
    .bind(pull_request.create_time.0)
    .bind(pull_request.update_time.map(|t| t.0))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every recorded run of the session's checks, newest first.
pub async fn checks<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    session_id: &str,
) -> Result<Vec<Check>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM checks c JOIN checks_payload p ON p.id = c.id WHERE c.session_id = ? ORDER BY c.id DESC",
    )
    .bind(session_id)
    .fetch_all(executor)
    .await?;
    decode_rows("check", &payloads)
}

pub async fn insert_check(conn: &mut SqliteConnection, check: &Check) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checks (session_id, project_id, pull_request_number, name, commit_sha, status, url, log_tail, \
         create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

pub async fn save_check(conn: &mut SqliteConnection, check: &Check) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE checks SET status = ?, url = ?, log_tail = ?, update_time = ? WHERE id = ?",
    )
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

/// The session's open (pending or escalated) reactions.
pub async fn open_reactions(
    conn: &mut SqliteConnection,
    session_id: &str,
) -> Result<Vec<Reaction>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM reactions r JOIN reactions_payload p ON p.id = r.id \
         WHERE r.session_id = ? AND r.status IN ('pending', 'escalated') ORDER BY r.id",
    )
    .bind(session_id)
    .fetch_all(conn)
    .await?;
    decode_rows("reaction", &payloads)
}

/// Pending reactions of `keys` opened before `before` (for the timer tick).
pub async fn pending_reactions_before(
    conn: &mut SqliteConnection,
    keys: &[&str],
    before: UnixMicros,
) -> Result<Vec<Reaction>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM reactions r JOIN reactions_payload p ON p.id = r.id WHERE r.status = 'pending' AND r.create_time <= ",
    );
    query.push_bind(before.0).push(" AND r.key IN (");
    let mut separated = query.separated(", ");
    for key in keys {
        separated.push_bind(*key);
    }
    query.push(") ORDER BY r.id");
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(conn).await?;
    decode_rows("reaction", &payloads)
}

pub async fn insert_reaction(
    conn: &mut SqliteConnection,
    reaction: &Reaction,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO reactions (session_id, project_id, key, priority, target, status, message, nudge_count, \
         dedup_key, create_time, nudge_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&reaction.session_id)
    .bind(&reaction.project_id)
    .bind(&reaction.key)
    .bind(reaction.priority.as_str())
    .bind(reaction.target.as_str())
    .bind(reaction.status.as_str())
    .bind(&reaction.message)
    .bind(reaction.nudge_count)
    .bind(&reaction.dedup_key)
    .bind(reaction.create_time.0)
    .bind(reaction.nudge_time.map(|t| t.0))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_reaction(
    conn: &mut SqliteConnection,
    reaction: &Reaction,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE reactions SET priority = ?, target = ?, status = ?, message = ?, nudge_count = ?, dedup_key = ?, \
         update_time = ?, nudge_time = ?, escalate_time = ?, clear_time = ? WHERE id = ?",
    )
    .bind(reaction.priority.as_str())
    .bind(reaction.target.as_str())
    .bind(reaction.status.as_str())
    .bind(&reaction.message)
    .bind(reaction.nudge_count)
    .bind(&reaction.dedup_key)
    .bind(reaction.update_time.map(|t| t.0))
    .bind(reaction.nudge_time.map(|t| t.0))
    .bind(reaction.escalate_time.map(|t| t.0))
    .bind(reaction.clear_time.map(|t| t.0))
    .bind(reaction.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the forge last updated the session's pull request, as the newest
/// applied report said.
pub async fn observed_time(
    conn: &mut SqliteConnection,
    session_id: &str,
) -> Result<Option<UnixMicros>, StoreError> {
    let at: Option<i64> = sqlx::query_scalar(
        "SELECT observed_time FROM pull_request_observations WHERE session_id = ?",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    Ok(at.map(UnixMicros))
}

/// Raises the session's observed time to `at` (an older one changes
/// nothing).
pub async fn observe(
    conn: &mut SqliteConnection,
    session_id: &str,
    at: UnixMicros,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pull_request_observations (session_id, observed_time) VALUES (?, ?) \
         ON CONFLICT (session_id) DO UPDATE SET observed_time = excluded.observed_time \
         WHERE excluded.observed_time > observed_time",
    )
    .bind(session_id)
    .bind(at.0)
    .execute(conn)
    .await?;
    Ok(())
}
