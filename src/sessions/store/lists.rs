//! SQL of the session and reaction listings: ListSessions' filters and
//! orders, ListReactions, and the candidates of ListAttention.

use sqlx::{Executor, QueryBuilder, Sqlite};

use super::super::{Reaction, ReactionStatus, ReactionTarget, Session, SessionState};
use crate::pagination::OrderedCursor;
use crate::storage::{StoreError, decode_row as decode, decode_rows};

/// A session's latest activity, in SQL: the same expression as the
/// `sessions_by_last_activity` index and as `Session::last_activity_time`.
const LAST_ACTIVITY: &str =
    "MAX(s.create_time, COALESCE(s.update_time, 0), COALESCE(s.activity_time, 0))";

/// The order of ListSessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum SessionOrder {
    /// Newest first (by rowid, i.e. creation order).
    #[default]
    CreateTime,
    /// Latest activity first, then newest first.
    LastActivity,
}

/// The SQL-side filters and order of ListSessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionQuery {
    pub project_id: Option<String>,
    pub task_id: Option<i64>,
    pub state: Option<SessionState>,
    pub is_alive: Option<bool>,
    /// Done or terminated (true), or neither (false).
    pub finished: Option<bool>,
    pub pull_request_number: Option<i64>,
    pub branch: Option<String>,
    pub issue_id: Option<String>,
    /// Matched as a substring, ignoring ASCII case, in the id, branch,
    /// issue id and pull request title.
    pub search: Option<String>,
    pub order: SessionOrder,
}

/// Sessions in the query's order after `after`, with their cursors.
pub async fn list_sessions<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &SessionQuery,
    after: Option<OrderedCursor>,
    limit: u32,
) -> Result<Vec<(OrderedCursor, Session)>, StoreError> {
    let by_activity = filter.order == SessionOrder::LastActivity;
    let mut query = QueryBuilder::<Sqlite>::new("SELECT s.rowid, ");
    query.push(if by_activity { LAST_ACTIVITY } else { "NULL" });
    query.push(
        ", p.payload FROM sessions s JOIN sessions_payload p ON p.id = s.id \
         LEFT JOIN pull_requests pr ON pr.session_id = s.id WHERE 1 = 1",
    );
    if let Some(project_id) = &filter.project_id {
        query.push(" AND s.project_id = ").push_bind(project_id);
    }
    if let Some(task_id) = filter.task_id {
        query.push(" AND s.task_id = ").push_bind(task_id);
    }
    if let Some(state) = filter.state {
        query.push(" AND s.state = ").push_bind(state.as_str());
    }
    if let Some(is_alive) = filter.is_alive {
        query.push(" AND s.is_alive = ").push_bind(is_alive);
    }
    match filter.finished {
        Some(true) => {
            query.push(" AND s.state IN ('done', 'terminated')");
        }
        Some(false) => {
            query.push(" AND s.state NOT IN ('done', 'terminated')");
        }
        None => {}
    }
    if let Some(number) = filter.pull_request_number {
        query.push(" AND pr.number = ").push_bind(number);
    }
    if let Some(branch) = &filter.branch {
        query.push(" AND s.branch = ").push_bind(branch);
    }
    if let Some(issue_id) = &filter.issue_id {
        query.push(" AND s.issue_id = ").push_bind(issue_id);
    }
    if let Some(search) = &filter.search {
        let pattern = like_pattern(search);
        query.push(" AND (");
        for (i, column) in ["s.id", "s.branch", "s.issue_id", "pr.title"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push(format!("{column} LIKE "))
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        query.push(")");
    }
    match after {
        Some(OrderedCursor {
            time: Some(time),
            id,
        }) if by_activity => {
            query
                .push(format!(" AND ({LAST_ACTIVITY} < "))
                .push_bind(time)
                .push(format!(" OR ({LAST_ACTIVITY} = "))
                .push_bind(time)
                .push(" AND s.rowid < ")
                .push_bind(id)
                .push("))");
        }
        Some(OrderedCursor { id, .. }) => {
            query.push(" AND s.rowid < ").push_bind(id);
        }
        None => {}
    }
    query.push(if by_activity {
        format!(" ORDER BY {LAST_ACTIVITY} DESC, s.rowid DESC LIMIT ")
    } else {
        " ORDER BY s.rowid DESC LIMIT ".to_string()
    });
    query.push_bind(i64::from(limit));
    let rows: Vec<(i64, Option<i64>, String)> = query.build_query_as().fetch_all(executor).await?;
    rows.into_iter()
        .map(|(id, time, payload)| Ok((OrderedCursor { time, id }, decode("session", &payload)?)))
        .collect()
}

/// `text` as a LIKE pattern matching it anywhere, with LIKE's wildcards
/// and the escape character taken literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A session that may need a person, with the facts the attention rule
/// reads besides its view: its reactions open for a person and its held
/// task.
#[derive(Debug, Clone)]
pub struct AttentionCandidate {
    pub session: Session,
    pub reactions: Vec<Reaction>,
    /// The task whose stage session this is, when held: id, hold reason
    /// slug, hold detail.
    pub held_task: Option<(i64, String, Option<String>)>,
}

/// Sessions that are stuck or need input, have an open reaction for a
/// person, or are the stage session of a held task.
pub async fn attention_candidates(
    conn: &mut sqlx::SqliteConnection,
    project_id: Option<&str>,
) -> Result<Vec<AttentionCandidate>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM sessions s JOIN sessions_payload p ON p.id = s.id \
         WHERE (s.state IN ('needs_input', 'stuck') \
         OR EXISTS (SELECT 1 FROM reactions r WHERE r.session_id = s.id \
                    AND r.status IN ('pending', 'escalated') AND r.target = 'human') \
         OR EXISTS (SELECT 1 FROM tasks t WHERE t.stage_session_id = s.id AND t.hold_reason IS NOT NULL))",
    );
    if let Some(project_id) = project_id {
        query.push(" AND s.project_id = ").push_bind(project_id);
    }
    query.push(" ORDER BY s.rowid DESC");
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(&mut *conn).await?;
    let mut candidates = Vec::with_capacity(payloads.len());
    for session in decode_rows::<Session>("session", &payloads)? {
        let reactions = list_reactions(
            &mut *conn,
            &ReactionQuery {
                session_id: Some(session.id.clone()),
                target: Some(ReactionTarget::Human),
                ..ReactionQuery::default()
            },
            None,
            u32::MAX,
        )
        .await?
        .into_iter()
        .filter(|reaction| reaction.status != ReactionStatus::Cleared)
        .collect();
        let held_task = sqlx::query_as(
            "SELECT id, hold_reason, hold_detail FROM tasks \
             WHERE stage_session_id = ? AND hold_reason IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(&session.id)
        .fetch_optional(&mut *conn)
        .await?;
        candidates.push(AttentionCandidate {
            session,
            reactions,
            held_task,
        });
    }
    Ok(candidates)
}

/// The filters of ListReactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReactionQuery {
    pub session_id: Option<String>,
    pub project_id: Option<String>,
    pub status: Option<ReactionStatus>,
    pub key: Option<String>,
    pub target: Option<ReactionTarget>,
}

/// Reactions newest first (by id) before `before`.
pub async fn list_reactions<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &ReactionQuery,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Reaction>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM reactions r JOIN reactions_payload p ON p.id = r.id WHERE 1 = 1",
    );
    if let Some(session_id) = &filter.session_id {
        query.push(" AND r.session_id = ").push_bind(session_id);
    }
    if let Some(project_id) = &filter.project_id {
        query.push(" AND r.project_id = ").push_bind(project_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND r.status = ").push_bind(status.as_str());
    }
    if let Some(key) = &filter.key {
        query.push(" AND r.key = ").push_bind(key);
    }
    if let Some(target) = filter.target {
        query.push(" AND r.target = ").push_bind(target.as_str());
    }
    if let Some(before) = before {
        query.push(" AND r.id < ").push_bind(before);
    }
    query
        .push(" ORDER BY r.id DESC LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    decode_rows("reaction", &payloads)
}
