//! Applying reactions: the pure [`super::reactions`] planner decides, and
//! this writes what it decided, in the same transaction as the facts that
//! caused it (or, for escalation by time, in the timer's transaction; see
//! [`super::timers`]).

use super::reactions::{self, Change, ESCALATE_AFTER, Facts};
use super::store::{self, ReactionWrite, SessionFacts};
use super::{Reaction, ReactionPriority, ReactionStatus, ReactionTarget, Session};
use crate::storage::StoreError;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

/// Escalates merge-conflict and idle reactions left unresolved too long;
/// returns how many.
pub(super) async fn escalate_due(conn: &mut Conn<'_>) -> Result<usize, StoreError> {
    let now = UnixMicros::now();
    let due = store::pending_reactions_before(
        &mut *conn,
        &["merge-conflicts", "agent-idle"],
        now.minus(ESCALATE_AFTER),
    )
    .await?;
    let changes = reactions::plan_timers(&due, now);
    let count = changes.len();
    for change in changes {
        if let Some(write) = row_of(&due, None, change, now)? {
            store::write_reaction(conn, &write).await?;
        }
    }
    Ok(count)
}

/// Plans and applies the reactions the session's current facts call for,
/// given its `open` reactions (read with the facts, see
/// [`store::session_facts_to_change`]).
pub(super) async fn react(
    conn: &mut Conn<'_>,
    facts: &SessionFacts,
    open: &[Reaction],
) -> Result<(), StoreError> {
    for write in planned(facts, open)? {
        store::write_reaction(conn, &write).await?;
    }
    Ok(())
}

/// The reaction rows the session's current facts call for, given its
/// `open` reactions, for the caller to write (after the session's row).
pub(super) fn planned(
    facts: &SessionFacts,
    open: &[Reaction],
) -> Result<Vec<ReactionWrite>, StoreError> {
    let now = UnixMicros::now();
    let session = &facts.session;
    let (pull_request, comments) = match &facts.pull_request {
        Some((pr, comments)) => (Some(pr), comments.as_slice()),
        None => (None, &[][..]),
    };
    let facts = Facts {
        session,
        pull_request,
        checks: &facts.checks,
        comments,
        now,
    };
    let mut writes = Vec::new();
    for change in reactions::plan(&facts, open) {
        writes.extend(row_of(open, Some(session), change, now)?);
    }
    Ok(writes)
}

/// The row `change` writes, if any (opening one needs the session).
fn row_of(
    open: &[Reaction],
    session: Option<&Session>,
    change: Change,
    now: UnixMicros,
) -> Result<Option<ReactionWrite>, StoreError> {
    let find = |id: i64| {
        open.iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| StoreError::Malformed(format!("reaction {id} is not open")))
    };
    let mut reaction = match change {
        Change::Open {
            key,
            priority,
            target,
            message,
            dedup_key,
        } => {
            let Some(session) = session else {
                return Ok(None);
            };
            let nudged = target == ReactionTarget::Agent;
            let reaction = Reaction {
                id: 0,
                session_id: session.id.clone(),
                project_id: session.project_id.clone(),
                key: key.to_string(),
                priority,
                target,
                status: ReactionStatus::Pending,
                message,
                nudge_count: u32::from(nudged),
                dedup_key,
                create_time: now,
                update_time: None,
                nudge_time: nudged.then_some(now),
                escalate_time: None,
                clear_time: None,
            };
            return Ok(Some(ReactionWrite::Insert(reaction)));
        }
        Change::Nudge {
            id,
            message,
            dedup_key,
        } => {
            let mut reaction = find(id)?;
            reaction.message = message;
            reaction.dedup_key = dedup_key;
            reaction.nudge_count += 1;
            reaction.nudge_time = Some(now);
            reaction
        }
        Change::Escalate { id, message } => {
            let mut reaction = find(id)?;
            reaction.message = message;
            reaction.target = ReactionTarget::Human;
            reaction.priority = ReactionPriority::Urgent;
            reaction.status = ReactionStatus::Escalated;
            reaction.escalate_time = Some(now);
            reaction
        }
        Change::Clear { id } => {
            let mut reaction = find(id)?;
            reaction.status = ReactionStatus::Cleared;
            reaction.clear_time = Some(now);
            reaction
        }
    };
    reaction.update_time = Some(now);
    Ok(Some(ReactionWrite::Update(reaction)))
}
