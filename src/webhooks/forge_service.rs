//! The shim's work for a forge delivery (GitHub, Gitea): in order (see
//! [`super::ordering`]), matched to the repository's project, sessions and
//! tasks (README "Matching deliveries"), then reported to bosun.

use super::forge::{CiEvent, ForgeEvent};
use super::ordering;
use super::service::{Answer, Shim};
use super::steps::Steps;
use super::translate::{self, Target};
use super::{Source, WebhookError};
use crate::pb;
use crate::repo_id::RepoId;
use crate::sessions::origin_matches;

impl Shim {
    /// A forge event in order: one older than what was applied about its
    /// entity is stale (see [`super::ordering`]); the entity's rank rises
    /// once the event's calls succeeded.
    pub(super) async fn ordered_forge(
        &self,
        source: Source,
        prefix: &str,
        event: ForgeEvent,
    ) -> Result<Answer, WebhookError> {
        let Some(position) = event.position().cloned() else {
            return self.forge(source, prefix, event).await;
        };
        let _turn = self.entities.lock(position.entity.clone()).await;
        let applied = self
            .store
            .position(source, &position.entity)
            .await
            .map_err(WebhookError::Store)?;
        if ordering::is_stale(applied, position.rank) {
            return Ok(Answer::Stale(format!(
                "older than what was applied about {}",
                position.entity
            )));
        }
        let answer = self.forge(source, prefix, event).await?;
        self.store
            .advance(source, &position.entity, position.rank)
            .await
            .map_err(WebhookError::Store)?;
        Ok(answer)
    }

    /// A forge event: one about a fork's pull request, or about a
    /// repository no project has, is ignored (202, nothing written). For
    /// each branch it names, the session's pull request
    /// is read (ReportPullRequest with fetched=false writes nothing and
    /// answers the session bosun resolves), merged and reported; a review
    /// that decides also records a PR_REVIEW verdict on the session's task;
    /// a CI result is also recorded for the task pipeline.
    async fn forge(
        &self,
        source: Source,
        prefix: &str,
        event: ForgeEvent,
    ) -> Result<Answer, WebhookError> {
        let repo = match &event {
            ForgeEvent::PullRequest(e) => e.repo.full_name.clone(),
            ForgeEvent::Ci(e) => e.repo.full_name.clone(),
        };
        if let Some(why) = translate::foreign(&event) {
            return Ok(Answer::Ignored(why));
        }
        let mut steps = Steps::default();
        let projects = steps
            .read("projects", self.upstream.projects().await)?
            .unwrap_or_default();
        let projects: Vec<pb::Project> = projects
            .into_iter()
            .filter(|p| origin_matches(&p.origin_url, &repo))
            .collect();
        if projects.is_empty() {
            return Ok(Answer::Ignored(format!("no project has repository {repo}")));
        }
        let mut session_branch = None;
        let mut targets = translate::targets(&event);
        if let (true, ForgeEvent::Ci(e)) = (targets.is_empty(), &event) {
            targets = self.pull_requests_at(&mut steps, &projects, e).await?;
        }
        for (i, target) in targets.into_iter().enumerate() {
            let _turn = self
                .branches
                .lock(format!("{}@{}", RepoId::canonical(&repo), target.branch))
                .await;
            let read = self
                .upstream
                .report_pull_request(pb::ReportPullRequestRequest {
                    repo: repo.clone(),
                    fetched: false,
                    pull_request: Some(pb::PullRequest {
                        branch: target.branch.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await;
            let what = format!("{repo}@{}", target.branch);
            let Some(session) = steps.read(&what, read)?.and_then(|answer| answer.session) else {
                continue;
            };
            session_branch.get_or_insert_with(|| target.branch.clone());
            let known = session.pull_request.as_ref();
            let Some(report) = translate::pull_request_report(source, &event, &target, known)
            else {
                steps.skip(format!("{what}: no pull request known"));
                continue;
            };
            let written = self
                .upstream
                .report_pull_request(pb::ReportPullRequestRequest {
                    request_id: format!("{prefix}:pr{i}"),
                    session_id: session.id.clone(),
                    fetched: true,
                    pull_request: Some(report),
                    observed_time: translate::observed_time(&event),
                    ..Default::default()
                })
                .await;
            if written.as_ref().is_ok_and(|answer| answer.stale) {
                return Ok(Answer::Stale(format!(
                    "{what}: older than the pull request bosun has"
                )));
            }
            let task_id = session.task_id;
            steps.call(&what, written)?;
            if let ForgeEvent::PullRequest(e) = &event {
                let id = format!("{prefix}:verdict{i}");
                if let Some(verdict) = translate::verdict_request(id, &e.review, task_id) {
                    steps.call(&what, self.upstream.record_verdict(verdict).await)?;
                }
            }
        }
        if let ForgeEvent::Ci(e) = &event {
            let request =
                translate::ci_status_request(format!("{prefix}:ci"), e, session_branch.as_deref());
            steps.call(&repo, self.upstream.record_ci_status(request).await)?;
        }
        Ok(steps.answer())
    }

    /// The branches whose pull request bosun knows at `e.sha`, for a CI
    /// result that names no branch (Gitea's statuses, GitHub's on a commit
    /// that is no branch's head): the sessions of the repo's `projects`
    /// whose pull request has that head.
    async fn pull_requests_at(
        &self,
        steps: &mut Steps,
        projects: &[pb::Project],
        e: &CiEvent,
    ) -> Result<Vec<Target>, WebhookError> {
        let mut targets: Vec<Target> = Vec::new();
        for project in projects {
            let sessions = steps
                .read(&project.id, self.upstream.sessions_of(&project.id).await)?
                .unwrap_or_default();
            for session in sessions {
                let Some(pr) = session.pull_request.filter(|pr| pr.head_sha == e.sha) else {
                    continue;
                };
                let branch = if pr.branch.is_empty() {
                    session.branch
                } else {
                    pr.branch
                };
                if !branch.is_empty() && targets.iter().all(|t| t.branch != branch) {
                    targets.push(Target {
                        branch,
                        number: Some(pr.number),
                        head_sha: Some(e.sha.clone()),
                    });
                }
            }
        }
        Ok(targets)
    }
}
