//! SQL of the session and reaction listings: ListSessions' filters and
//! orders, ListReactions, and the candidates of ListAttention.

use super::super::{Reaction, ReactionStatus, ReactionTarget, Session, SessionState};
use super::{decode_payloads, session_order_column};
use crate::pagination::OrderedCursor;
use crate::storage::sql::{Builder, Conn, Engine, JsonText, query};
use crate::storage::{StoreError, decode_row};

/// A session's latest activity, in SQL: the same expression as the
/// `sessions_by_last_activity` index and as `Session::last_activity_time`.
/// Per engine: SQLite's scalar MAX of several values is PostgreSQL's
/// GREATEST (create_time is NOT NULL, so both give the same value).
fn last_activity(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => {
            "MAX(s.create_time, COALESCE(s.update_time, 0), COALESCE(s.activity_time, 0))"
        }
        Engine::Postgres => {
            "GREATEST(s.create_time, COALESCE(s.update_time, 0), COALESCE(s.activity_time, 0))"
        }
    }
}

/// `column` matched against a LIKE pattern, ignoring ASCII case. Per engine:
/// SQLite's LIKE already ignores ASCII case (and only ASCII case);
/// PostgreSQL's is case-sensitive, and its ILIKE and lower() fold non-ASCII
/// letters too, so the column's ASCII letters are folded with translate()
/// and the pattern is given in ASCII lowercase.
fn like_ascii_case(engine: Engine, column: &str) -> String {
    match engine {
        Engine::Sqlite => format!("{column} LIKE "),
        Engine::Postgres => format!(
            "translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') LIKE "
        ),
    }
}

/// The order of ListSessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum SessionOrder {
    /// Newest first (by creation order: SQLite's rowid, PostgreSQL's
    /// row_order).
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
pub async fn list_sessions(
    conn: &mut Conn<'_>,
    filter: &SessionQuery,
    after: Option<OrderedCursor>,
    limit: u32,
) -> Result<Vec<(OrderedCursor, Session)>, StoreError> {
    let by_activity = filter.order == SessionOrder::LastActivity;
    let engine = conn.engine();
    let last_activity = last_activity(engine);
    let order = session_order_column(engine);
    let mut query = Builder::new(format!("SELECT {order}, "));
    query.push(if by_activity {
        last_activity
    } else {
        "CAST(NULL AS BIGINT)"
    });
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
        let pattern = like_pattern(&search.to_ascii_lowercase());
        query.push(" AND (");
        for (i, column) in ["s.id", "s.branch", "s.issue_id", "pr.title"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push(&like_ascii_case(engine, column))
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
                .push(&format!(" AND ({last_activity} < "))
                .push_bind(time)
                .push(&format!(" OR ({last_activity} = "))
                .push_bind(time)
                .push(&format!(" AND {order} < "))
                .push_bind(id)
                .push("))");
        }
        Some(OrderedCursor { id, .. }) => {
            query.push(&format!(" AND {order} < ")).push_bind(id);
        }
        None => {}
    }
    query.push(&if by_activity {
        format!(" ORDER BY {last_activity} DESC, {order} DESC LIMIT ")
    } else {
        format!(" ORDER BY {order} DESC LIMIT ")
    });
    query.push_bind(i64::from(limit));
    let rows: Vec<(i64, Option<i64>, JsonText)> = query.build().fetch_all(conn).await?;
    rows.into_iter()
        .map(|(id, time, payload)| {
            Ok((
                OrderedCursor { time, id },
                decode_row("session", &payload.0)?,
            ))
        })
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
    conn: &mut Conn<'_>,
    project_id: Option<&str>,
) -> Result<Vec<AttentionCandidate>, StoreError> {
    let mut candidates_sql = Builder::new(
        "SELECT p.payload FROM sessions s JOIN sessions_payload p ON p.id = s.id \
         WHERE (s.state IN ('needs_input', 'stuck') \
         OR EXISTS (SELECT 1 FROM reactions r WHERE r.session_id = s.id \
                    AND r.status IN ('pending', 'escalated') AND r.target = 'human') \
         OR EXISTS (SELECT 1 FROM tasks t WHERE t.stage_session_id = s.id AND t.hold_reason IS NOT NULL))",
    );
    if let Some(project_id) = project_id {
        candidates_sql
            .push(" AND s.project_id = ")
            .push_bind(project_id);
    }
    candidates_sql.push(&format!(
        " ORDER BY {} DESC",
        session_order_column(conn.engine())
    ));
    let payloads: Vec<JsonText> = candidates_sql.build().fetch_all_scalars(&mut *conn).await?;
    let mut candidates = Vec::with_capacity(payloads.len());
    for session in decode_payloads::<Session>("session", &payloads)? {
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
        let held_task = query(
            "SELECT id, hold_reason, hold_detail FROM tasks \
             WHERE stage_session_id = $1 AND hold_reason IS NOT NULL ORDER BY id DESC LIMIT 1",
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
pub async fn list_reactions(
    conn: &mut Conn<'_>,
    filter: &ReactionQuery,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Reaction>, StoreError> {
    let mut query = Builder::new(
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
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    decode_payloads("reaction", &payloads)
}
