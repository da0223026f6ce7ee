//! One reconciler pass. Each task or issue is its own transaction through
//! the Tasks service (the same calls the webhooks make); one that fails is
//! counted and listed, and the sweep goes on. The pass row is written when
//! the pass starts and when it ends. The gate side is here; the tracker
//! side in [`tracker_side`].

use futures::FutureExt;

mod tracker_side;

use super::decide;
use super::service::{Claim, Inner};
use super::store::{self, MAX_LISTED};
use super::{Action, ActionKind, ReconcilerError, Run, RunError, RunState, RunTrigger, Side};
use crate::storage::Lease;
use crate::tasks::{AdvanceOutcome, GateStatus, Task};
use crate::time::UnixMicros;

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
}
