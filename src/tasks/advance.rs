//! The calls that move tasks on a person's or a runner's word: AdvanceTask
//! (the stage session finished) and ReleaseTask (an admin lifts a hold).

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::decide;
use super::flow::{AdvanceOutcome, AdvanceResult};
use super::record::{TaskRef, load};
use super::service::TasksService;
use super::{Stage, Task, TaskError, pipeline};
use crate::idempotency::IdempotencyKey;

/// How a stage session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionOutcome {
    Completed,
    FailedTransient,
}

/// AdvanceTask's input: the stage session that finished, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageReport {
    pub task_id: i64,
    pub session_id: String,
    pub outcome: SessionOutcome,
    /// Why it failed, for a transient failure.
    pub detail: Option<String>,
}

/// What ReleaseTask does after clearing the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReleaseAction {
    EvaluateGate,
    RerunStage,
    RollBack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Released {
    pub task: Task,
    pub session_id: Option<String>,
    pub advance: Option<AdvanceResult>,
}

impl TasksService {
    /// The stage session finished: move the pipeline.
    pub async fn advance(
        &self,
        report: StageReport,
        request_id: Option<String>,
    ) -> Result<AdvanceResult, TaskError> {
        let key = IdempotencyKey::new("tasks.advance", request_id, &report);
        let limits = self.settings.limits;
        self.write(key, move |mut mover| {
            async move {
                let StageReport {
                    task_id,
                    session_id,
                    outcome,
                    detail,
                } = report;
                let mut task = load(&mut mover, &TaskRef::Id(task_id)).await?;
                if task.stage == Stage::Done {
                    return Err(TaskError::TaskDone(task_id));
                }
                let stage_session = task.stage_session_id.clone().unwrap_or_default();
                if stage_session != session_id {
                    return Err(TaskError::SessionNotCurrent {
                        task_id,
                        session_id,
                        stage_session_id: stage_session,
                    });
                }
                task.stage_session_finished = true;
                if task.is_held() {
                    return mover.unchanged(task, AdvanceOutcome::Held).await;
                }
                match outcome {
                    SessionOutcome::Completed => mover.settle(task).await,
                    SessionOutcome::FailedTransient => {
                        let movement = decide::on_transient_failure(task.transient_retries, limits);
                        let why = format!(
                            "session {session_id} failed transiently ({} of {} retries spent): {}",
                            task.transient_retries,
                            limits.retry_budget,
                            detail.as_deref().unwrap_or("no detail")
                        );
                        mover.apply(task, movement, None, why).await
                    }
                }
            }
            .boxed()
        })
        .await
    }

    /// Clears a hold and does what `action` says.
    pub async fn release(
        &self,
        task_id: i64,
        action: ReleaseAction,
        note: Option<String>,
        request_id: Option<String>,
    ) -> Result<Released, TaskError> {
        let key = IdempotencyKey::new("tasks.release", request_id, &(task_id, action, &note));
        self.write(key, move |mut mover| {
            async move {
                let mut task = load(&mut mover, &TaskRef::Id(task_id)).await?;
                if !task.is_held() {
                    return Err(TaskError::TaskNotHeld(task_id));
                }
                let active = task.stage_session_active;
                if active && action != ReleaseAction::EvaluateGate {
                    return Err(TaskError::StageSessionActive {
                        task_id,
                        session_id: task.stage_session_id.clone().unwrap_or_default(),
                    });
                }
                tracing::info!(
                    task_id,
                    ?action,
                    note = note.as_deref().unwrap_or(""),
                    "task released"
                );
                task.hold_reason = None;
                task.hold_detail = None;
                task.hold_time = None;
                task.rollback_count = 0;
                task.transient_retries = 0;
                let (task, session_id, advance) = match action {
                    ReleaseAction::EvaluateGate if active => {
                        let result = mover.unchanged(task, AdvanceOutcome::Waiting).await?;
                        (result.task, None, None)
                    }
                    ReleaseAction::EvaluateGate => {
                        let result = mover.settle(task).await?;
                        (result.task.clone(), result.session_id.clone(), Some(result))
                    }
                    ReleaseAction::RerunStage => {
                        let session_id = mover.request_session(&mut task, None).await?;
                        let result = mover.unchanged(task, AdvanceOutcome::Retried).await?;
                        (result.task, session_id, None)
                    }
                    ReleaseAction::RollBack => {
                        mover.enter(&mut task, pipeline::ROLLBACK_TO);
                        let session_id = mover.request_session(&mut task, None).await?;
                        let result = mover.unchanged(task, AdvanceOutcome::Waiting).await?;
                        (result.task, session_id, None)
                    }
                };
                Ok(Released {
                    task,
                    session_id,
                    advance,
                })
            }
            .boxed()
        })
        .await
    }
}
