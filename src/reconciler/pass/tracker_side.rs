//! The tracker side of a pass: poll each project's tracker and replay, as
//! StartTask or RecordVerdict, the issue states whose webhooks never came.

use super::{Fatal, Pass};
use crate::reconciler::decide::{self, KnownTask, Replay, TrackerState};
use crate::reconciler::plane::Issue;
use crate::reconciler::tracker::{Polled, poll};
use crate::reconciler::{Action, ActionKind, RunError, Side};
use crate::sessions::{self, Project};
use crate::tasks::{Decision, NewTask, NewVerdict, Stage, TaskRef, VerdictSource};
use crate::time::UnixMicros;
use crate::validate::MAX_SHORT_TEXT;

impl Pass<'_> {
    /// Every active project with a tracker: poll it and replay what the
    /// webhooks missed. A project whose tracker fails costs that project's
    /// pass only.
    pub(super) async fn tracker_side(&mut self) -> Result<(), Fatal> {
        let listing_failed =
            |err: &dyn std::fmt::Display| Fatal(format!("listing projects failed: {err}"));
        // The pooled connection goes back before the trackers are polled.
        let projects = {
            let mut reader = self
                .inner
                .db
                .read()
                .await
                .map_err(|err| listing_failed(&err))?;
            sessions::list_projects(&mut reader.conn(), false, None, u32::MAX)
                .await
                .map_err(|err| listing_failed(&err))?
        };
        for project in projects {
            self.still_leased()?;
            let Some(binding) = project.plane.clone() else {
                continue;
            };
            if !self.inner.switches.tracker() {
                tracing::info!("tracker side switched off during the pass");
                break;
            }
            self.run.projects_polled += 1;
            let project_error = |reason: &str, message: String| RunError {
                side: Side::Tracker,
                project_id: Some(project.id.clone()),
                task_id: None,
                tracker_issue_id: None,
                reason: reason.to_string(),
                message,
            };
            let Some(plane) = self.inner.plane.clone() else {
                self.error(project_error(
                    "TRACKER_NOT_CONFIGURED",
                    "the project has a Plane binding but reconciler.plane.base_url is empty".into(),
                ));
                continue;
            };
            match poll(&plane, &binding).await {
                Ok(Polled::Issues { identifier, issues }) => {
                    for (issue, state) in issues {
                        self.still_leased()?;
                        self.replay(&project, &identifier, issue, state).await;
                    }
                }
                Ok(Polled::Unmapped(names)) => self.error(project_error(
                    "TRACKER_STATE_UNMAPPED",
                    format!("Plane has no state named {}", names.join(", ")),
                )),
                Err(err) => self.error(project_error(err.reason(), err.to_string())),
            }
        }
        Ok(())
    }

    /// Replays one issue's state through StartTask or RecordVerdict.
    async fn replay(
        &mut self,
        project: &Project,
        identifier: &str,
        issue: Issue,
        state: TrackerState,
    ) {
        self.run.tracker_side.scanned += 1;
        let failed = |reason: &str, message: String| RunError {
            side: Side::Tracker,
            project_id: Some(project.id.clone()),
            task_id: None,
            tracker_issue_id: Some(issue.id.clone()),
            reason: reason.to_string(),
            message,
        };
        let known = match self.inner.tasks.by_tracker_issue(&issue.id).await {
            Ok(known) => known,
            Err(err) => return self.error(failed("REPLAY_FAILED", err.to_string())),
        };
        let view = known.as_ref().map(|(task, verdict)| KnownTask {
            stage_session_active: task.stage_session_active,
            newest_tracker_verdict: *verdict,
        });
        let grace = self.inner.config.tracker_grace;
        let replay =
            match decide::tracker_replay(state, issue.updated_at, view, grace, UnixMicros::now()) {
                Ok(replay) => replay,
                Err(_) => {
                    self.run.tracker_side.skipped += 1;
                    return;
                }
            };
        let result = match replay {
            Replay::StartTask => self.start(project, identifier, &issue).await,
            Replay::Verdict(decision) => self.verdict(project, &issue, decision).await,
        };
        match result {
            Ok(Some(action)) => {
                self.run.tracker_side.replayed += 1;
                if action
                    .from_stage
                    .is_some_and(|from| from != action.to_stage)
                {
                    self.run.tracker_side.advanced += 1;
                }
                self.action(action);
            }
            Ok(None) => self.run.tracker_side.skipped += 1,
            Err(err) => self.error(failed("REPLAY_FAILED", err.to_string())),
        }
    }

    async fn start(
        &mut self,
        project: &Project,
        identifier: &str,
        issue: &Issue,
    ) -> Result<Option<Action>, crate::tasks::TaskError> {
        let work_item_id = match issue.sequence_id {
            Some(sequence) => format!("{identifier}-{sequence}"),
            None => issue.id.clone(),
        };
        let new = NewTask {
            project_id: project.id.clone(),
            tracker_issue_id: issue.id.clone(),
            work_item_id,
            title: issue.name.chars().take(MAX_SHORT_TEXT).collect(),
            repo: None,
            branch: None,
        };
        let request_id = format!("reconciler:start:{}", issue.id);
        let started = self.inner.tasks.start(new, Some(request_id)).await?;
        Ok(started.created.then(|| Action {
            run_id: self.run.id,
            side: Side::Tracker,
            kind: ActionKind::Started,
            task_id: started.task.id,
            project_id: project.id.clone(),
            work_item_id: started.task.work_item_id.clone(),
            tracker_issue_id: Some(issue.id.clone()),
            from_stage: None,
            to_stage: Stage::Analysis,
            session_id: Some(started.session_id),
            action_time: UnixMicros::now(),
        }))
    }

    async fn verdict(
        &mut self,
        project: &Project,
        issue: &Issue,
        decision: Decision,
    ) -> Result<Option<Action>, crate::tasks::TaskError> {
        let new = NewVerdict {
            task: TaskRef::TrackerIssue(issue.id.clone()),
            decision,
            source: VerdictSource::Tracker,
            author: Some("bosun reconciler".into()),
            comment: Some(format!("replayed from Plane issue {}", issue.id)),
        };
        let request_id = format!(
            "reconciler:verdict:{}:{}:{}",
            issue.id,
            decision.as_str(),
            issue.updated_at.0
        );
        let recorded = self
            .inner
            .tasks
            .record_verdict(new, Some(request_id))
            .await?;
        let advance = recorded.advance.as_ref();
        Ok(Some(Action {
            run_id: self.run.id,
            side: Side::Tracker,
            kind: ActionKind::VerdictReplayed,
            task_id: recorded.task.id,
            project_id: project.id.clone(),
            work_item_id: recorded.task.work_item_id.clone(),
            tracker_issue_id: Some(issue.id.clone()),
            from_stage: Some(advance.map_or(recorded.fact.stage, |a| a.from_stage)),
            to_stage: recorded.task.stage,
            session_id: advance.and_then(|a| a.session_id.clone()),
            action_time: UnixMicros::now(),
        }))
    }
}
