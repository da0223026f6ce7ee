//! The Sessions service: the session lifecycle (projects are in
//! `projects.rs`). Every change is one write job: idempotency check, load,
//! apply a pure rule, save, plan reactions from the new facts, remember the
//! answer.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;

use super::decide::QuarantineLimits;
use super::error::SessionError;
use super::reactions;
use super::store::{self, SessionQuery};
use super::view::{SessionView, load_facts, load_facts_to_change, view, view_of};
use super::{DisplayStatus, Harness, Project, Role, Session, SessionState, TerminationReason};
use crate::idempotency::{self, IdempotencyKey};
use crate::storage::sql::Conn;
use crate::storage::{Db, StoreError};
use crate::time::UnixMicros;

/// What SpawnSession needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSession {
    pub project_id: String,
    pub task_id: Option<i64>,
    pub role: Option<Role>,
    pub issue_id: Option<String>,
    pub harness: Harness,
    pub branch: Option<String>,
    pub prompt: Option<String>,
}

/// What CompleteSpawn reports; unset fields keep their stored values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Launch {
    pub runtime_handle_id: String,
    pub runtime_name: Option<String>,
    pub workspace_path: Option<String>,
    pub agent_session_id: Option<String>,
    pub branch: Option<String>,
}

/// ListSessions' filters: SQL-side ones plus the derived display status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionFilter {
    pub query: SessionQuery,
    pub display_status: Option<DisplayStatus>,
}

/// The Sessions service; cheap to clone.
#[derive(Clone)]
pub struct SessionsService {
    pub(super) db: Db,
    pub(super) limits: QuarantineLimits,
}

/// A write job's result type.
pub(super) type Job<'c, T> = BoxFuture<'c, Result<T, SessionError>>;

impl SessionsService {
    pub fn new(db: Db, limits: QuarantineLimits) -> Self {
        Self { db, limits }
    }

    /// Runs `work` in one write transaction, idempotent on `key`.
    pub(super) async fn write<T, F>(
        &self,
        key: Option<IdempotencyKey>,
        work: F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> Job<'c, T> + Clone + Send + 'static,
    {
        self.db
            .write(move |conn| {
                async move { idempotency::once(conn, key.as_ref(), work).await }.boxed()
            })
            .await
    }

    pub async fn spawn(
        &self,
        new: NewSession,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new("sessions.spawn", request_id, &new);
        self.write(key, move |conn| {
            async move {
                let project = load_project(conn, &new.project_id).await?;
                if project.archive_time.is_some() {
                    return Err(SessionError::ProjectArchived(project.id));
                }
                if let Some(task_id) = new.task_id {
                    match crate::tasks::task_project(conn, task_id).await? {
                        None => return Err(SessionError::TaskNotFound(task_id)),
                        Some(owner) if owner != project.id => {
                            return Err(SessionError::TaskProjectMismatch {
                                task_id,
                                project_id: owner,
                            });
                        }
                        Some(_) => {}
                    }
                }
                let session = insert_not_started(conn, new).await?;
                view(conn, session).await
            }
            .boxed()
        })
        .await
    }

    pub async fn complete_spawn(
        &self,
        id: String,
        launch: Launch,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new("sessions.complete_spawn", request_id, &(&id, &launch));
        self.change(key, id, move |session, now| {
            if session.state != SessionState::NotStarted {
                return Err(SessionError::NotSpawning {
                    id: session.id.clone(),
                    state: session.state,
                });
            }
            session.runtime_handle_id = Some(launch.runtime_handle_id);
            let keep = |stored: &mut Option<String>, given: Option<String>| {
                if given.is_some() {
                    *stored = given;
                }
            };
            keep(&mut session.runtime_name, launch.runtime_name);
            keep(&mut session.workspace_path, launch.workspace_path);
            keep(&mut session.agent_session_id, launch.agent_session_id);
            keep(&mut session.branch, launch.branch);
            session.state = SessionState::Working;
            session.is_alive = true;
            session.start_time = Some(now);
            Ok(())
        })
        .await
    }

    pub async fn fail_spawn(
        &self,
        id: String,
        error: Option<String>,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new("sessions.fail_spawn", request_id, &(&id, &error));
        self.change(key, id, move |session, now| {
            if session.state != SessionState::NotStarted {
                return Err(SessionError::NotSpawning {
                    id: session.id.clone(),
                    state: session.state,
                });
            }
            terminate(session, TerminationReason::ErrorInProcess, error, now);
            Ok(())
        })
        .await
    }

    pub async fn finish(
        &self,
        id: String,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new("sessions.finish", request_id, &id);
        self.change(key, id, move |session, now| {
            match session.state {
                SessionState::NotStarted => {
                    return Err(SessionError::NotStarted(session.id.clone()));
                }
                SessionState::Terminated => {
                    return Err(SessionError::Terminated(session.id.clone()));
                }
                SessionState::Done => {}
                _ => {
                    session.state = SessionState::Done;
                    session.is_alive = false;
                    session.end_time = Some(now);
                }
            }
            Ok(())
        })
        .await
    }

    /// Terminates a live session; `Ok((view, true))` when it already was
    /// done or terminated (nothing changed).
    pub async fn kill(
        &self,
        id: String,
        reason: TerminationReason,
        detail: Option<String>,
        request_id: Option<String>,
    ) -> Result<(SessionView, bool), SessionError> {
        let key = IdempotencyKey::new("sessions.kill", request_id, &(&id, reason, &detail));
        self.write(key, move |conn| {
            async move {
                let (mut facts, open) = load_facts_to_change(conn, &id).await?;
                let already_terminal = facts.session.state.is_terminal();
                if !already_terminal {
                    terminate(&mut facts.session, reason, detail, UnixMicros::now());
                    store::save_session(conn, &facts.session).await?;
                    super::react::react(conn, &facts, &open).await?;
                }
                Ok((view_of(facts), already_terminal))
            }
            .boxed()
        })
        .await
    }

    pub async fn restore(
        &self,
        id: String,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new("sessions.restore", request_id, &id);
        self.write(key, move |conn| {
            async move {
                let (mut facts, open) = load_facts_to_change(conn, &id).await?;
                let session = &mut facts.session;
                if !session.state.is_terminal() {
                    return Err(SessionError::NotTerminal {
                        id,
                        state: session.state,
                    });
                }
                if session.agent_session_id.is_none() && session.prompt.is_none() {
                    return Err(SessionError::NotRestorable(id));
                }
                let project = load_project(conn, &session.project_id).await?;
                if project.archive_time.is_some() {
                    return Err(SessionError::ProjectArchived(project.id));
                }
                let now = UnixMicros::now();
                session.state = SessionState::NotStarted;
                session.termination_reason = None;
                session.termination_detail = None;
                session.end_time = None;
                session.is_alive = false;
                session.clear_detecting();
                session.restore_time = Some(now);
                session.update_time = Some(now);
                store::save_session(conn, session).await?;
                super::react::react(conn, &facts, &open).await?;
                Ok(view_of(facts))
            }
            .boxed()
        })
        .await
    }

    /// Applies `change` to one session, saves it if it changed and, when a
    /// fact the reaction planner reads changed, plans reactions; the common
    /// shape of the lifecycle calls. Reads the session, what its reply shows
    /// and its open reactions in one statement and writes it in one more.
    pub(super) async fn change<F>(
        &self,
        key: Option<IdempotencyKey>,
        id: String,
        change: F,
    ) -> Result<SessionView, SessionError>
    where
        F: FnOnce(&mut Session, UnixMicros) -> Result<(), SessionError> + Clone + Send + 'static,
    {
        self.write(key, move |conn| {
            async move {
                let (mut facts, open) = load_facts_to_change(conn, &id).await?;
                let before = facts.session.clone();
                let now = UnixMicros::now();
                change(&mut facts.session, now)?;
                if facts.session == before {
                    return Ok(view_of(facts));
                }
                facts.session.update_time = Some(now);
                // Planned before the session is written, written with it.
                let writes = if reactions::session_facts_changed(&before, &facts.session) {
                    super::react::planned(&facts, &open)?
                } else {
                    Vec::new()
                };
                store::save_session_and_reactions(conn, &facts.session, &writes).await?;
                if facts.session.agent_session_id != before.agent_session_id {
                    // The usage read with the facts was the old agent session's.
                    facts = load_facts(conn, &id).await?;
                }
                Ok(view_of(facts))
            }
            .boxed()
        })
        .await
    }
}

/// Creates a not_started session (display status SPAWNING) with the
/// project's next number: for SpawnSession, and for the pipeline when a stage
/// needs a session. The project must exist.
pub(crate) async fn insert_not_started(
    conn: &mut Conn<'_>,
    new: NewSession,
) -> Result<Session, StoreError> {
    let number = store::next_session_number(conn, &new.project_id).await?;
    let session = Session {
        id: format!("{}-{number}", new.project_id),
        project_id: new.project_id,
        task_id: new.task_id,
        role: new.role,
        issue_id: new.issue_id,
        harness: new.harness,
        state: SessionState::NotStarted,
        termination_reason: None,
        termination_detail: None,
        is_alive: false,
        activity_state: None,
        activity_source: None,
        activity_time: None,
        detecting_attempts: 0,
        detecting_start_time: None,
        detecting_evidence_hash: None,
        detecting_last_evidence: None,
        branch: new.branch,
        workspace_path: None,
        runtime_handle_id: None,
        runtime_name: None,
        agent_session_id: None,
        prompt: new.prompt,
        create_time: UnixMicros::now(),
        update_time: None,
        start_time: None,
        end_time: None,
        restore_time: None,
    };
    store::insert_session(conn, &session, number).await?;
    Ok(session)
}

pub(super) fn terminate(
    session: &mut Session,
    reason: TerminationReason,
    detail: Option<String>,
    now: UnixMicros,
) {
    session.state = SessionState::Terminated;
    session.termination_reason = Some(reason);
    session.termination_detail = detail;
    session.is_alive = false;
    session.end_time = Some(now);
    session.update_time = Some(now);
}

pub(super) async fn load_project(conn: &mut Conn<'_>, id: &str) -> Result<Project, SessionError> {
    store::get_project(conn, id)
        .await?
        .ok_or_else(|| SessionError::ProjectNotFound(id.to_string()))
}

pub(super) async fn load_session(conn: &mut Conn<'_>, id: &str) -> Result<Session, SessionError> {
    store::get_session(conn, id)
        .await?
        .ok_or_else(|| SessionError::SessionNotFound(id.to_string()))
}
