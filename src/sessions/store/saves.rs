//! SQL that writes a session's row and its reactions' rows; their triggers
//! append the events. On PostgreSQL a session write with one reaction write
//! goes as one statement (see [`save_session_and_reactions`]).

use std::sync::LazyLock;

use super::super::{Reaction, Session};
use crate::storage::StoreError;
use crate::storage::sql::{Conn, Engine, Query, query};

/// The session UPDATE: every mutable column, `$1` to `$22` (the id last),
/// bound by [`bind_session`].
const UPDATE_SESSION: &str = "UPDATE sessions SET state = $1, termination_reason = $2, \
    termination_detail = $3, is_alive = $4, activity_state = $5, activity_source = $6, \
    activity_time = $7, detecting_attempts = $8, detecting_start_time = $9, \
    detecting_evidence_hash = $10, detecting_last_evidence = $11, branch = $12, \
    workspace_path = $13, runtime_handle_id = $14, runtime_name = $15, agent_session_id = $16, \
    prompt = $17, update_time = $18, start_time = $19, end_time = $20, restore_time = $21 \
    WHERE id = $22";
/// How many values [`bind_session`] binds.
const SESSION_VALUES: usize = 22;

/// A new reaction's columns, in [`bind_new_reaction`]'s order.
const NEW_REACTION_COLUMNS: [&str; 11] = [
    "session_id",
    "project_id",
    "key",
    "priority",
    "target",
    "status",
    "message",
    "nudge_count",
    "dedup_key",
    "create_time",
    "nudge_time",
];
/// A changed reaction's columns, in [`bind_changed_reaction`]'s order (the
/// id follows them).
const CHANGED_REACTION_COLUMNS: [&str; 10] = [
    "priority",
    "target",
    "status",
    "message",
    "nudge_count",
    "dedup_key",
    "update_time",
    "nudge_time",
    "escalate_time",
    "clear_time",
];

static INSERT_REACTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO reactions ({}) VALUES ({})",
        NEW_REACTION_COLUMNS.join(", "),
        placeholders(1, NEW_REACTION_COLUMNS.len())
    )
});
static UPDATE_REACTION: LazyLock<String> = LazyLock::new(|| {
    let id = CHANGED_REACTION_COLUMNS.len() + 1;
    format!(
        "UPDATE reactions SET {} WHERE id = ${id}",
        assignments(&CHANGED_REACTION_COLUMNS, 1)
    )
});
/// PostgreSQL: the session UPDATE and a new reaction in one statement. The
/// INSERT reads the UPDATE's row, so the session row is written, and its
/// trigger's event queued, before the reaction's: the events come in the
/// order of the two statements SQLite runs.
static UPDATE_SESSION_INSERT_REACTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH s AS ({UPDATE_SESSION} RETURNING id) INSERT INTO reactions ({}) SELECT {} FROM s",
        NEW_REACTION_COLUMNS.join(", "),
        placeholders(SESSION_VALUES + 1, NEW_REACTION_COLUMNS.len())
    )
});
/// PostgreSQL: the session UPDATE and a changed reaction in one statement,
/// the reaction's row joined to the UPDATE's (so, as above, written after it).
static UPDATE_SESSION_UPDATE_REACTION: LazyLock<String> = LazyLock::new(|| {
    let id = SESSION_VALUES + CHANGED_REACTION_COLUMNS.len() + 1;
    format!(
        "WITH s AS ({UPDATE_SESSION} RETURNING id) UPDATE reactions SET {} \
         FROM s WHERE reactions.id = ${id}",
        assignments(&CHANGED_REACTION_COLUMNS, SESSION_VALUES + 1)
    )
});

/// `$first, ..` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    let numbers: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    numbers.join(", ")
}

/// `column = $first, ..` for each of `columns`.
fn assignments(columns: &[&str], first: usize) -> String {
    let pairs: Vec<String> = (columns.iter().zip(first..))
        .map(|(column, n)| format!("{column} = ${n}"))
        .collect();
    pairs.join(", ")
}

/// A reaction row that a session's facts call for.
#[derive(Debug, Clone, PartialEq)]
pub enum ReactionWrite {
    /// Opened: a new row (its id is the database's).
    Insert(Reaction),
    /// Changed: the row with the reaction's id.
    Update(Reaction),
}

/// Writes every mutable column of `session`.
pub async fn save_session(conn: &mut Conn<'_>, session: &Session) -> Result<(), StoreError> {
    bind_session(query(UPDATE_SESSION), session)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn write_reaction(conn: &mut Conn<'_>, write: &ReactionWrite) -> Result<(), StoreError> {
    let statement = match write {
        ReactionWrite::Insert(reaction) => bind_new_reaction(query(&INSERT_REACTION), reaction),
        ReactionWrite::Update(reaction) => {
            bind_changed_reaction(query(&UPDATE_REACTION), reaction).bind(reaction.id)
        }
    };
    statement.execute(conn).await?;
    Ok(())
}

/// Writes `session`, then `reactions` in order (their events follow the
/// same order). On PostgreSQL, where each statement is a round trip while
/// the writer holds the change log's lock, a session write with exactly
/// one reaction write (what an activity report that opens or clears the
/// idle reaction does) is one statement.
pub async fn save_session_and_reactions(
    conn: &mut Conn<'_>,
    session: &Session,
    reactions: &[ReactionWrite],
) -> Result<(), StoreError> {
    if let (Engine::Postgres, [write]) = (conn.engine(), reactions) {
        let statement = match write {
            ReactionWrite::Insert(reaction) => bind_new_reaction(
                bind_session(query(&UPDATE_SESSION_INSERT_REACTION), session),
                reaction,
            ),
            ReactionWrite::Update(reaction) => bind_changed_reaction(
                bind_session(query(&UPDATE_SESSION_UPDATE_REACTION), session),
                reaction,
            )
            .bind(reaction.id),
        };
        statement.execute(conn).await?;
        return Ok(());
    }
    save_session(conn, session).await?;
    for write in reactions {
        write_reaction(conn, write).await?;
    }
    Ok(())
}

fn bind_session<'q>(statement: Query<'q>, session: &'q Session) -> Query<'q> {
    statement
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
}

fn bind_new_reaction<'q>(statement: Query<'q>, reaction: &'q Reaction) -> Query<'q> {
    statement
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
}

/// Binds the changed columns; the caller binds the id after them.
fn bind_changed_reaction<'q>(statement: Query<'q>, reaction: &'q Reaction) -> Query<'q> {
    statement
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
}
