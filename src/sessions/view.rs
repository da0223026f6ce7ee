//! A session as the API shows it: the stored session with its pull request
//! (checks on the head commit, comments), its derived display status and
//! its token usage, all read in one statement (see [`store::session_facts`]).

use serde::{Deserialize, Serialize};

use super::decide::display_status;
use super::error::SessionError;
use super::store::{self, SessionFacts};
use super::{Check, Comment, DisplayStatus, PullRequest, Reaction, Session};
use crate::processors::TokenUsage;
use crate::storage::sql::Conn;

/// A session as the API shows it: with its pull request, display status
/// and token usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub session: Session,
    pub pull_request: Option<PullRequestView>,
    pub display_status: DisplayStatus,
    /// Counted by the usage processor from the transcript(s) recording the
    /// session's agent_session_id; `None` when there are none.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

/// A pull request with its checks on the head commit and its comments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequestView {
    pub pull_request: PullRequest,
    pub checks: Vec<Check>,
    pub comments: Vec<Comment>,
}

/// The session `id` with its pull request, checks and usage.
pub(super) async fn load_facts(
    conn: &mut Conn<'_>,
    id: &str,
) -> Result<SessionFacts, SessionError> {
    store::session_facts(conn, id)
        .await?
        .ok_or_else(|| SessionError::SessionNotFound(id.to_string()))
}

/// [`load_facts`] with the session's open reactions, for a write that
/// changes the session and then plans reactions (one statement).
pub(super) async fn load_facts_to_change(
    conn: &mut Conn<'_>,
    id: &str,
) -> Result<(SessionFacts, Vec<Reaction>), SessionError> {
    store::session_facts_to_change(conn, id)
        .await?
        .ok_or_else(|| SessionError::SessionNotFound(id.to_string()))
}

/// The session with what the facts read beside it: see [`view_of`]. One
/// statement; `session` (as just written) stands for the stored row.
pub(super) async fn view(
    conn: &mut Conn<'_>,
    session: Session,
) -> Result<SessionView, SessionError> {
    let facts = load_facts(conn, &session.id).await?;
    Ok(view_of(SessionFacts { session, ..facts }))
}

/// [`view`] of each of `sessions`, in one statement.
pub(super) async fn views(
    conn: &mut Conn<'_>,
    sessions: Vec<Session>,
) -> Result<Vec<SessionView>, SessionError> {
    let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let mut facts = store::sessions_facts(conn, &ids).await?;
    sessions
        .into_iter()
        .map(|session| {
            let found = facts
                .remove(&session.id)
                .ok_or_else(|| SessionError::SessionNotFound(session.id.clone()))?;
            Ok(view_of(SessionFacts { session, ..found }))
        })
        .collect()
}

/// The session with its pull request (checks on the head commit, comments),
/// derived display status and token usage.
pub(super) fn view_of(facts: SessionFacts) -> SessionView {
    let SessionFacts {
        session,
        pull_request,
        checks,
        usage,
    } = facts;
    let pull_request = pull_request.map(|(pull_request, comments)| {
        let on_head = |check: &Check| pull_request.head_sha.as_deref() == Some(&check.commit_sha);
        let checks = checks.into_iter().filter(on_head).collect();
        PullRequestView {
            pull_request,
            checks,
            comments,
        }
    });
    let display_status = display_status(
        &session,
        pull_request.as_ref().map(|view| &view.pull_request),
    );
    SessionView {
        session,
        pull_request,
        display_status,
        usage,
    }
}
