//! What runners and forges report about a session (activity, probes, pull
//! requests). The reactions those facts raise are applied in the same
//! transaction (see [`super::react`]).

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::decide::{Probe, apply_activity, apply_probe};
use super::error::SessionError;
use super::react::react;
use super::service::{SessionsService, load_session, terminate};
use super::store;
use super::view::{SessionView, load_facts_to_change, view, view_of};
use super::{
    ActivitySource, ActivityState, Check, CheckStatus, Comment, PullRequest, PullRequestState,
    Session, SessionState, TerminationReason,
};
use crate::idempotency::IdempotencyKey;
use crate::repo_id::RepoId;
use crate::storage::StoreError;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

/// Which session a pull-request report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SessionRef {
    Id(String),
    /// A forge's "owner/name" and the pull request's branch.
    RepoBranch {
        repo: String,
        branch: String,
    },
}

/// A fetched pull request: its facts, its checks on the head commit, and its
/// current comments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullRequestReport {
    pub url: String,
    pub number: i64,
    pub state: PullRequestState,
    pub review_decision: Option<super::ReviewDecision>,
    pub ci_state: Option<super::CiState>,
    pub mergeability: Option<super::Mergeability>,
    pub draft: bool,
    pub head_sha: Option<String>,
    pub branch: Option<String>,
    /// `None` keeps the stored title.
    pub title: Option<String>,
    pub checks: Vec<CheckReport>,
    pub comments: Vec<Comment>,
    /// When the forge last updated the pull request, if the reporter says.
    pub observed_time: Option<UnixMicros>,
}

/// What a pull-request report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredOutcome", into = "StoredOutcome")]
pub enum ReportOutcome {
    Applied,
    /// The fetch failed (`fetched=false`): nothing written.
    Dropped,
    /// Older than the newest report applied: nothing written.
    Stale,
}

/// How a [`ReportOutcome`] is kept with an idempotent result: the
/// `dropped` flag it was before stale reports existed, or "stale".
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredOutcome {
    Dropped(bool),
    Named(String),
}

impl From<StoredOutcome> for ReportOutcome {
    fn from(stored: StoredOutcome) -> Self {
        match stored {
            StoredOutcome::Dropped(true) => Self::Dropped,
            StoredOutcome::Named(name) if name == "stale" => Self::Stale,
            _ => Self::Applied,
        }
    }
}

impl From<ReportOutcome> for StoredOutcome {
    fn from(outcome: ReportOutcome) -> Self {
        match outcome {
            ReportOutcome::Applied => Self::Dropped(false),
            ReportOutcome::Dropped => Self::Dropped(true),
            ReportOutcome::Stale => Self::Named("stale".into()),
        }
    }
}

/// Whether a report observed at `incoming` is older than the newest one
/// applied (`applied`); a report without a time is a fresh fetch.
pub fn is_stale_report(applied: Option<UnixMicros>, incoming: Option<UnixMicros>) -> bool {
    matches!((applied, incoming), (Some(applied), Some(incoming)) if incoming < applied)
}

/// One check run as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub commit_sha: String,
    pub status: CheckStatus,
    pub url: Option<String>,
    pub log_tail: Option<String>,
}

impl SessionsService {
    pub async fn report_activity(
        &self,
        id: String,
        state: ActivityState,
        source: ActivitySource,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new(
            "sessions.report_activity",
            request_id,
            &(&id, state, source),
        );
        self.change(key, id, move |session, now| {
            if session.state == SessionState::NotStarted {
                return Err(SessionError::NotStarted(session.id.clone()));
            }
            *session = apply_activity(session, state, source, now);
            Ok(())
        })
        .await
    }

    pub async fn report_probe(
        &self,
        id: String,
        probe: Probe,
        request_id: Option<String>,
    ) -> Result<SessionView, SessionError> {
        let key = IdempotencyKey::new(
            "sessions.report_probe",
            request_id,
            &(&id, probe.runtime, probe.process, &probe.evidence),
        );
        let limits = self.limits;
        self.change(key, id, move |session, now| {
            if session.state == SessionState::NotStarted {
                return Err(SessionError::NotStarted(session.id.clone()));
            }
            *session = apply_probe(session, &probe, now, &limits);
            Ok(())
        })
        .await
    }

    /// Records a pull request report, unless the fetch failed (dropped) or
    /// it is older than the newest one applied (stale): then nothing is
    /// written.
    pub async fn report_pull_request(
        &self,
        target: SessionRef,
        report: Option<PullRequestReport>,
        request_id: Option<String>,
    ) -> Result<(SessionView, ReportOutcome), SessionError> {
        let key = IdempotencyKey::new(
            "sessions.report_pull_request",
            request_id,
            &(&target, &report),
        );
        self.write(key, move |conn| {
            async move {
                let session = resolve(conn, &target).await?;
                let Some(report) = report else {
                    return Ok((view(conn, session).await?, ReportOutcome::Dropped));
                };
                let applied = store::observed_time(&mut *conn, &session.id).await?;
                if is_stale_report(applied, report.observed_time) {
                    return Ok((view(conn, session).await?, ReportOutcome::Stale));
                }
                if let Some(at) = report.observed_time {
                    store::observe(&mut *conn, &session.id, at).await?;
                }
                let now = UnixMicros::now();
                if let (Some(task_id), Some(sha)) = (session.task_id, &report.head_sha) {
                    crate::tasks::note_head_sha(conn, task_id, sha).await?;
                }
                record_pull_request(conn, &session, report, now).await?;
                let (mut facts, open) = load_facts_to_change(conn, &session.id).await?;
                let merged = (facts.pull_request.as_ref())
                    .is_some_and(|(pr, _)| pr.state == PullRequestState::Merged);
                if merged && !facts.session.state.is_terminal() {
                    terminate(&mut facts.session, TerminationReason::PrMerged, None, now);
                    store::save_session(conn, &facts.session).await?;
                }
                react(conn, &facts, &open).await?;
                Ok((view_of(facts), ReportOutcome::Applied))
            }
            .boxed()
        })
        .await
    }
}

/// Finds the session a report names.
async fn resolve(conn: &mut Conn<'_>, target: &SessionRef) -> Result<Session, SessionError> {
    let (repo, branch) = match target {
        SessionRef::Id(id) => return load_session(conn, id).await,
        SessionRef::RepoBranch { repo, branch } => (repo, branch),
    };
    let projects: Vec<_> = store::projects_with_origin(&mut *conn)
        .await?
        .into_iter()
        .filter(|p| {
            p.origin_url
                .as_deref()
                .is_some_and(|url| origin_matches(url, repo))
        })
        .collect();
    let project = match projects.as_slice() {
        [] => return Err(SessionError::ProjectNotFound(repo.clone())),
        [project] => project,
        _ => {
            return Err(SessionError::RepoAmbiguous {
                repo: repo.clone(),
                projects: projects.iter().map(|p| p.id.clone()).collect(),
            });
        }
    };
    let sessions = store::sessions_on_branch(conn, &project.id, branch).await?;
    let chosen = sessions
        .iter()
        .find(|s| !s.state.is_terminal())
        .or(sessions.first());
    chosen
        .cloned()
        .ok_or_else(|| SessionError::SessionNotFound(format!("{repo}@{branch}")))
}

/// The forge repository "owner/name" of an origin URL, in its canonical
/// spelling ([`RepoId`]).
pub fn origin_repo(origin_url: &str) -> Option<String> {
    RepoId::from_origin(origin_url).map(|id| id.to_string())
}

/// Whether an origin URL is the forge repository "owner/name" (compared as
/// [`RepoId`]s: case-insensitive).
pub fn origin_matches(origin_url: &str, repo: &str) -> bool {
    RepoId::from_origin(origin_url).is_some_and(|id| Some(id) == RepoId::parse(repo))
}

/// Writes the pull request row (comments included) and its check runs, each
/// only when it changed, so repeated identical reports add no events.
async fn record_pull_request(
    conn: &mut Conn<'_>,
    session: &Session,
    report: PullRequestReport,
    now: UnixMicros,
) -> Result<(), StoreError> {
    let existing = store::get_pull_request(&mut *conn, &session.id).await?;
    let pull_request = PullRequest {
        session_id: session.id.clone(),
        project_id: session.project_id.clone(),
        url: report.url,
        number: report.number,
        state: report.state,
        review_decision: report.review_decision,
        ci_state: report.ci_state,
        mergeability: report.mergeability,
        draft: report.draft,
        head_sha: report.head_sha,
        branch: report.branch,
        title: report
            .title
            .or_else(|| existing.as_ref().and_then(|(pr, _)| pr.title.clone())),
        create_time: existing.as_ref().map_or(now, |(pr, _)| pr.create_time),
        update_time: existing.as_ref().map(|_| now),
    };
    let unchanged = existing.as_ref().is_some_and(|(stored, comments)| {
        *comments == report.comments
            && PullRequest {
                update_time: stored.update_time,
                ..pull_request.clone()
            } == *stored
    });
    if !unchanged {
        store::upsert_pull_request(conn, &pull_request, &report.comments).await?;
    }
    let history = store::checks(&mut *conn, &session.id).await?;
    for reported in report.checks {
        let stored = history
            .iter()
            .find(|c| c.name == reported.name && c.commit_sha == reported.commit_sha);
        match stored {
            None => {
                let check = Check {
                    id: 0,
                    session_id: session.id.clone(),
                    project_id: session.project_id.clone(),
                    pull_request_number: pull_request.number,
                    name: reported.name,
                    commit_sha: reported.commit_sha,
                    status: reported.status,
                    url: reported.url,
                    log_tail: reported.log_tail,
                    create_time: now,
                    update_time: None,
                };
                store::insert_check(conn, &check).await?;
            }
            Some(stored)
                if (stored.status, &stored.url, &stored.log_tail)
                    != (reported.status, &reported.url, &reported.log_tail) =>
            {
                let check = Check {
                    status: reported.status,
                    url: reported.url,
                    log_tail: reported.log_tail,
                    update_time: Some(now),
                    ..stored.clone()
                };
                store::save_check(conn, &check).await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
