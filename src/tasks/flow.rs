//! How the pipeline moves: the one path every caller takes (AdvanceTask, a
//! Record* call, ReleaseTask, the Reconciler). [`settle`] evaluates the
//! current stage's gate and applies what [`decide`] says; [`apply`] writes a
//! move: the task, the next session, the lesson, in the caller's
//! transaction.

use serde::{Deserialize, Serialize};

use super::decide::{self, Move};
use super::service::TaskSettings;
use super::{Facts, GateResult, HoldReason, Stage, Task, TaskError, gates, pipeline, store};
use crate::lessons::{AutoLesson, Journal, NewLesson};
use crate::sessions::{self, NewSession, Role};
use crate::slug::slug_enum;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

slug_enum!(
    /// What one move did.
    AdvanceOutcome {
        Advanced => "advanced",
        RolledBack => "rolled_back",
        Held => "held",
        Retried => "retried",
        Waiting => "waiting",
    }
);

/// What one move did to a task (the AdvanceResult of the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvanceResult {
    pub outcome: AdvanceOutcome,
    pub task: Task,
    pub from_stage: Stage,
    pub to_stage: Stage,
    pub gate: Option<GateResult>,
    pub session_id: Option<String>,
    pub lesson_id: Option<i64>,
}

/// Where the moving happens: the connection of the caller's write
/// transaction (reborrowed), and what a move needs besides.
pub struct Mover<'a> {
    pub conn: Conn<'a>,
    pub journal: &'a Journal,
    pub settings: &'a TaskSettings,
    pub now: UnixMicros,
}

/// A fresh evaluation of the gate leaving the task's stage; `None` on done.
pub async fn evaluate(
    conn: &mut Conn<'_>,
    task: &Task,
    now: UnixMicros,
) -> Result<Option<(GateResult, Facts)>, TaskError> {
    let facts = store::facts(conn, task).await?;
    Ok(gates::evaluate(task.stage, &facts, task.head_sha.as_deref(), now).map(|g| (g, facts)))
}

impl Mover<'_> {
    /// Evaluates the stage's gate and moves the task as it says.
    pub async fn settle(&mut self, task: Task) -> Result<AdvanceResult, TaskError> {
        let Some((gate, facts)) = evaluate(&mut self.conn, &task, self.now).await? else {
            return self.unchanged(task, AdvanceOutcome::Waiting).await;
        };
        self.settle_with(task, gate, &facts).await
    }

    /// Moves the task as an evaluated gate says; the gate is kept as
    /// last_gate.
    pub async fn settle_with(
        &mut self,
        mut task: Task,
        gate: GateResult,
        facts: &Facts,
    ) -> Result<AdvanceResult, TaskError> {
        let movement =
            decide::on_gate(task.stage, task.rollback_count, &gate, self.settings.limits);
        let handoff = rollback_handoff(&task, &gate, facts);
        task.last_gate = Some(gate.clone());
        self.apply(task, movement, Some(gate), handoff).await
    }

    /// Writes one move and returns what it did.
    pub async fn apply(
        &mut self,
        mut task: Task,
        movement: Move,
        gate: Option<GateResult>,
        detail: String,
    ) -> Result<AdvanceResult, TaskError> {
        let from_stage = task.stage;
        let mut session_id = None;
        let mut lesson_id = None;
        let outcome = match movement {
            Move::Wait => AdvanceOutcome::Waiting,
            Move::Advance { to } => {
                self.enter(&mut task, to);
                session_id = self.request_session(&mut task, None).await?;
                AdvanceOutcome::Advanced
            }
            Move::RollBack { lesson } => {
                lesson_id = self.lesson(&task, lesson, gate.as_ref(), &detail).await;
                task.rollback_count += 1;
                self.enter(&mut task, pipeline::ROLLBACK_TO);
                session_id = self.request_session(&mut task, Some(detail)).await?;
                AdvanceOutcome::RolledBack
            }
            Move::Hold { reason, lesson } => {
                lesson_id = self.lesson(&task, lesson, gate.as_ref(), &detail).await;
                hold(&mut task, reason, detail, self.now);
                AdvanceOutcome::Held
            }
            Move::Retry => {
                task.transient_retries += 1;
                session_id = self.request_session(&mut task, None).await?;
                AdvanceOutcome::Retried
            }
        };
        task.update_time = self.now;
        store::save_task(&mut self.conn, &task).await?;
        let task = reload(&mut self.conn, task.id).await?;
        tracing::info!(
            task_id = task.id,
            work_item = %task.work_item_id,
            from = from_stage.as_str(),
            to = task.stage.as_str(),
            outcome = outcome.as_str(),
            "task moved"
        );
        Ok(AdvanceResult {
            outcome,
            to_stage: task.stage,
            task,
            from_stage,
            gate,
            session_id,
            lesson_id,
        })
    }

    /// Saves the task as it is and reports `outcome` without a move.
    pub async fn unchanged(
        &mut self,
        mut task: Task,
        outcome: AdvanceOutcome,
    ) -> Result<AdvanceResult, TaskError> {
        task.update_time = self.now;
        store::save_task(&mut self.conn, &task).await?;
        let task = reload(&mut self.conn, task.id).await?;
        Ok(AdvanceResult {
            outcome,
            from_stage: task.stage,
            to_stage: task.stage,
            task,
            gate: None,
            session_id: None,
            lesson_id: None,
        })
    }

    /// The task enters `stage`: the stage's clock and retry count restart.
    pub fn enter(&self, task: &mut Task, stage: Stage) {
        task.stage = stage;
        task.stage_enter_time = self.now;
        task.transient_retries = 0;
    }

    /// Requests a not_started session for the role of the task's stage (none
    /// on done) and makes it the stage session.
    pub async fn request_session(
        &mut self,
        task: &mut Task,
        prompt: Option<String>,
    ) -> Result<Option<String>, TaskError> {
        let Some(role) = pipeline::role(task.stage) else {
            task.stage_session_id = None;
            task.stage_session_finished = false;
            return Ok(None);
        };
        let session = sessions::insert_not_started(
            &mut self.conn,
            NewSession {
                project_id: task.project_id.clone(),
                task_id: Some(task.id),
                role: Some(role),
                issue_id: Some(task.tracker_issue_id.clone()),
                harness: self.settings.harness,
                branch: Some(task.branch.clone()),
                prompt,
            },
        )
        .await?;
        task.stage_session_id = Some(session.id.clone());
        task.stage_session_finished = false;
        Ok(Some(session.id))
    }

    /// Records an auto lesson; never fails the move.
    pub async fn lesson(
        &mut self,
        task: &Task,
        lesson_type: &str,
        gate: Option<&GateResult>,
        detail: &str,
    ) -> Option<i64> {
        let lesson = NewLesson {
            work_item_id: Some(task.work_item_id.clone()),
            task_id: Some(task.id),
            session_id: task.stage_session_id.clone(),
            stage: Some(task.stage.as_str().to_string()),
            agent: pipeline::role(task.stage).map(|r| Role::as_str(r).to_string()),
            repo: Some(task.repo.clone()),
            // A gate's lesson names the gate and says why; another says what
            // happened.
            root_cause: gate.and((!detail.is_empty()).then(|| detail.to_string())),
            detail: Some(gate.map_or_else(|| detail.to_string(), |g| g.gate.clone())),
            ..NewLesson::auto(lesson_type)
        };
        match self.journal.record_auto(&mut self.conn, lesson).await {
            AutoLesson::Recorded(lesson) | AutoLesson::Deduplicated(lesson) => Some(lesson.id),
            AutoLesson::Disabled | AutoLesson::Failed => None,
        }
    }
}

/// Holds a task: nothing moves it until ReleaseTask.
pub fn hold(task: &mut Task, reason: HoldReason, detail: String, now: UnixMicros) {
    task.hold_reason = Some(reason);
    task.hold_detail = Some(detail);
    task.hold_time = Some(now);
}

/// Reads the task back, with its derived fields fresh.
pub async fn reload(conn: &mut Conn<'_>, id: i64) -> Result<Task, TaskError> {
    store::get_task(conn, id)
        .await?
        .ok_or_else(|| TaskError::TaskNotFound(id.to_string()))
}

/// What a red gate tells the next session and the lesson: the failed checks
/// and, from testing, the newest report's failures.
fn rollback_handoff(task: &Task, gate: &GateResult, facts: &Facts) -> String {
    let failed: Vec<String> = gate
        .checks
        .iter()
        .filter(|c| c.status == super::GateStatus::Failed)
        .map(|c| format!("{}: {}", c.name, c.reason))
        .collect();
    let mut handoff = format!("{} gate: {}", gate.gate, failed.join("; "));
    if task.stage == Stage::Testing
        && let Some(summary) = facts.test_reports.first().and_then(|r| r.summary.as_ref())
    {
        handoff.push_str("\n\n");
        handoff.push_str(summary);
    }
    handoff
}
