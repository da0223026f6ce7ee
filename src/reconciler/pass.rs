//! One reconciler pass. Each task or issue is its own transaction through
//! the Tasks service (the same calls the webhooks make); one that fails is
//! counted and listed, and the sweep goes on. The pass row is written when
//! the pass starts and when it ends.

use futures::FutureExt;

use super::decide::{self, KnownTask, Replay, TrackerState};
use super::plane::Issue;
use super::service::{Claim, Inner};
use super::store::{self, MAX_LISTED};
use super::tracker::{Polled, poll};
use super::{Action, ActionKind, ReconcilerError, Run, RunError, RunState, RunTrigger, Side};
use crate::sessions::{self, Project};
use crate::storage::Lease;
use crate::tasks::{
    AdvanceOutcome, Decision, GateStatus, NewTask, NewVerdict, Stage, Task, TaskRef, VerdictSource,
};
use crate::time::UnixMicros;
use crate::validate::MAX_SHORT_TEXT;

/// Why a pass could not go on (storage failed): the pass is FAILED.
struct Fatal(String);

/// Runs one pass holding the local claim and the lease; gives both back when
/// the pass has ended.
pub(super) async fn run(
    inner: &Inner,
    claim: Claim,
    lease: Lease,
    trigger: RunTrigger,
    side: Option<Side>,
    gate: bool,
    tracker: bool,
) -> Result<Run, ReconcilerError> {
    let start = UnixMicros::now();
    let started = std::time::Instant::now();
    let replica = inner.leases.replica().to_string();
    let mut run = inner
        .db
        .write(move |conn| {
            async move {
                store::insert_run(conn, trigger, side, gate, tracker, start, &replica).await
            }
            .boxed()
        })
        .await?;
    claim.set_run_id(run.id);
    let mut pass = Pass {
        inner,
        lease: &lease,
        run: &mut run,
    };
    let mut outcome = Ok(());
    if gate {
        outcome = pass.gate_side().await;
    }
    // A side switched off before its turn did not run.
    let tracker = tracker && inner.switches.tracker();
    pass.run.tracker_side_ran = tracker;
    if tracker && outcome.is_ok() {
        outcome = pass.tracker_side().await;
    }
    run.end_time = Some(UnixMicros::now());
    match outcome {
        Ok(()) => run.state = RunState::Succeeded,
        Err(Fatal(error)) => {
            run.state = RunState::Failed;
            run.error = Some(error);
        }
    }
    let finished = run.clone();
    let stored = inner
        .db
        .write(move |conn| async move { store::finish_run(conn, &finished).await }.boxed())
        .await?;
    if let Some(stored) = stored {
        tracing::warn!(
            run_id = run.id,
            state = stored.state.as_str(),
            "another replica ended this pass's run first (this one lost the lease); its outcome stands"
        );
        run = stored;
    }
    inner.figures.observe(
        &[("trigger", trigger.as_str())],
        run.state.as_str(),
        started.elapsed(),
    );
    tracing::info!(
        run_id = run.id,
        trigger = trigger.as_str(),
        state = run.state.as_str(),
        gate = ?run.gate_side,
        tracker = ?run.tracker_side,
        "reconciler pass ended"
    );
    lease.release().await;
    drop(claim);
    Ok(run)
}

struct Pass<'a> {
    inner: &'a Inner,
    lease: &'a Lease,
    run: &'a mut Run,
}

impl Pass<'_> {
    /// Stops the pass once this replica has lost the reconciler's lease:
    /// another replica may be running a pass of its own by now.
    fn still_leased(&self) -> Result<(), Fatal> {
        if self.lease.is_lost() {
            return Err(Fatal(
                "interrupted: this replica lost the reconciler's lease".into(),
            ));
        }
        Ok(())
    }

    fn error(&mut self, error: RunError) {
        tracing::warn!(side = error.side.as_str(), reason = %error.reason, message = %error.message,
            project_id = ?error.project_id, task_id = ?error.task_id, "reconciler: one item failed");
        match error.side {
            Side::Gate => self.run.gate_side.errors += 1,
            Side::Tracker => self.run.tracker_side.errors += 1,
        }
        if self.run.error_details.len() < MAX_LISTED {
            self.run.error_details.push(error);
        }
    }

    fn action(&mut self, action: Action) {
        tracing::info!(task_id = action.task_id, work_item = %action.work_item_id, kind = action.kind.as_str(),
            to = action.to_stage.as_str(), "reconciler unblocked a task");
        if self.run.actions.len() < MAX_LISTED {
            self.run.actions.push(action);
        }
    }

    /// Idle tasks whose gate is green now advance as AdvanceTask would; red
    /// or pending ones are left alone.
    async fn gate_side(&mut self) -> Result<(), Fatal> {
        let tasks = self
            .inner
            .tasks
            .sweepable()
            .await
            .map_err(|err| Fatal(format!("listing tasks failed: {err}")))?;
        for task in tasks {
            self.still_leased()?;
            if !self.inner.switches.gate() {
                tracing::info!("gate side switched off during the pass");
                break;
            }
            self.run.gate_side.scanned += 1;
            let grace = self.inner.config.grace.of(task.stage);
            if decide::gate_candidate(&task, grace, UnixMicros::now()).is_err() {
                self.run.gate_side.skipped += 1;
                continue;
            }
            match self.advance(&task).await {
                Ok(true) => self.run.gate_side.advanced += 1,
                Ok(false) => self.run.gate_side.skipped += 1,
                Err(error) => self.error(error),
            }
        }
        Ok(())
    }

    /// Advances `task` when its gate is green; `false` when it is not.
    async fn advance(&mut self, task: &Task) -> Result<bool, RunError> {
        let failed = |reason: &str, err: crate::tasks::TaskError| RunError {
            side: Side::Gate,
            project_id: Some(task.project_id.clone()),
            task_id: Some(task.id),
            tracker_issue_id: None,
            reason: reason.to_string(),
            message: err.to_string(),
        };
        let gate = self
            .inner
            .tasks
            .peek_gate(task)
            .await
            .map_err(|err| failed("GATE_EVALUATION_FAILED", err))?;
        if gate.is_none_or(|g| g.status != GateStatus::Passed) {
            return Ok(false);
        }
        let result = self
            .inner
            .tasks
            .advance_if_green(task.id, task.stage)
            .await
            .map_err(|err| failed("ADVANCE_FAILED", err))?;
        let Some(result) = result.filter(|r| r.outcome == AdvanceOutcome::Advanced) else {
            return Ok(false);
        };
        self.action(Action {
            run_id: self.run.id,
            side: Side::Gate,
            kind: ActionKind::Advanced,
            task_id: task.id,
            project_id: task.project_id.clone(),
            work_item_id: task.work_item_id.clone(),
            tracker_issue_id: None,
            from_stage: Some(result.from_stage),
            to_stage: result.to_stage,
            session_id: result.session_id,
            action_time: UnixMicros::now(),
        });
        Ok(true)
    }

    /// Every active project with a tracker: poll it and replay what the
    /// webhooks missed. A project whose tracker fails costs that project's
    /// pass only.
    async fn tracker_side(&mut self) -> Result<(), Fatal> {
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
