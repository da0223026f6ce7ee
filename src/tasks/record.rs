//! The calls that record facts: RecordCiStatus, RecordVerdict,
//! RecordTestReport, RecordDeployStatus. A fact that arrives for a task whose stage session is no
//! longer active is the end of a wait: the stage's gate is evaluated as
//! AdvanceTask would.

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::decide::Move;
use super::flow::{self, AdvanceResult, Mover};
use super::service::TasksService;
use super::{
    CiState, CiStatus, Decision, DeployFreeze, DeployHealth, DeployStatus, HoldReason, Stage, Task,
    TaskError, TestReport, Verdict, VerdictSource, store,
};
use crate::idempotency::IdempotencyKey;
use crate::lessons::lesson_types;

/// RecordCiStatus' input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCiStatus {
    pub repo: String,
    /// Lowercase hex.
    pub sha: String,
    pub branch: Option<String>,
    pub context: String,
    pub state: CiState,
    pub target_url: Option<String>,
    pub description: Option<String>,
}

/// How a commit resolved to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    HeadSha(i64),
    Branch(i64),
    SingleDevelopmentTask(i64),
    Unresolved,
    Ambiguous(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRecorded {
    pub status: CiStatus,
    pub resolution: Resolution,
    pub advance: Option<AdvanceResult>,
}

/// A task named by id or by tracker issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TaskRef {
    Id(i64),
    TrackerIssue(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewVerdict {
    pub task: TaskRef,
    pub decision: Decision,
    pub source: VerdictSource,
    pub author: Option<String>,
    pub comment: Option<String>,
}

/// A recorded fact, the task after the call and what its gate did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactRecorded<F> {
    pub fact: F,
    pub task: Task,
    pub advance: Option<AdvanceResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewTestReport {
    pub task_id: i64,
    pub passed: bool,
    pub coverage_percent: f64,
    pub sha: Option<String>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployRecorded {
    pub recorded: FactRecorded<DeployStatus>,
    pub freeze: Option<DeployFreeze>,
}

/// Evaluates the gate when a fact for `stages` arrives and nothing else will
/// move the task: it is not held and its stage session ended.
async fn settle_if_waiting(
    mover: &mut Mover<'_>,
    task_id: i64,
    stages: &[Stage],
) -> Result<(Task, Option<AdvanceResult>), TaskError> {
    let task = flow::reload(&mut mover.conn, task_id).await?;
    if task.is_held() || task.stage_session_active || !stages.contains(&task.stage) {
        return Ok((task, None));
    }
    let result = mover.settle(task).await?;
    Ok((result.task.clone(), Some(result)))
}

pub(super) async fn load(mover: &mut Mover<'_>, task: &TaskRef) -> Result<Task, TaskError> {
    let found = match task {
        TaskRef::Id(id) => store::get_task(&mut mover.conn, *id).await?,
        TaskRef::TrackerIssue(issue) => store::task_by_issue(&mut mover.conn, issue).await?,
    };
    found.ok_or_else(|| {
        TaskError::TaskNotFound(match task {
            TaskRef::Id(id) => id.to_string(),
            TaskRef::TrackerIssue(issue) => format!("tracker issue {issue}"),
        })
    })
}

impl TasksService {
    pub async fn record_ci_status(
        &self,
        new: NewCiStatus,
        request_id: Option<String>,
    ) -> Result<CiRecorded, TaskError> {
        let key = IdempotencyKey::new("tasks.record_ci_status", request_id, &new);
        self.write(key, move |mut mover| {
            async move {
                let now = mover.now;
                let status = store::upsert_ci_status(
                    &mut mover.conn,
                    &CiStatus {
                        repo: new.repo.clone(),
                        sha: new.sha.clone(),
                        branch: new.branch.clone(),
                        context: new.context,
                        state: new.state,
                        target_url: new.target_url,
                        description: new.description,
                        create_time: now,
                        update_time: now,
                    },
                )
                .await?;
                let (resolution, task) =
                    resolve(&mut mover, &new.repo, &new.sha, new.branch.as_deref()).await?;
                // The head comes from the pull request, never from CI: a
                // result on another commit is history, not a gate fact.
                let advance = match task {
                    Some(task) if counts_toward_gate(task.head_sha.as_deref(), &new.sha) => {
                        settle_if_waiting(&mut mover, task.id, &[Stage::Development])
                            .await?
                            .1
                    }
                    _ => None,
                };
                Ok(CiRecorded {
                    status,
                    resolution,
                    advance,
                })
            }
            .boxed()
        })
        .await
    }

    pub async fn record_verdict(
        &self,
        new: NewVerdict,
        request_id: Option<String>,
    ) -> Result<FactRecorded<Verdict>, TaskError> {
        let key = IdempotencyKey::new("tasks.record_verdict", request_id, &new);
        self.write(key, move |mut mover| {
            async move {
                let task = load(&mut mover, &new.task).await?;
                let verdict = Verdict {
                    id: 0,
                    task_id: task.id,
                    decision: new.decision,
                    source: new.source,
                    author: new.author,
                    comment: new.comment,
                    stage: task.stage,
                    create_time: mover.now,
                };
                let fact = store::insert_verdict(&mut mover.conn, &verdict).await?;
                let (task, advance) =
                    settle_if_waiting(&mut mover, task.id, &[Stage::Analysis, Stage::Review])
                        .await?;
                Ok(FactRecorded {
                    fact,
                    task,
                    advance,
                })
            }
            .boxed()
        })
        .await
    }

    pub async fn record_test_report(
        &self,
        new: NewTestReport,
        request_id: Option<String>,
    ) -> Result<FactRecorded<TestReport>, TaskError> {
        let key = IdempotencyKey::new("tasks.record_test_report", request_id, &new);
        self.write(key, move |mut mover| {
            async move {
                let task = load(&mut mover, &TaskRef::Id(new.task_id)).await?;
                let report = TestReport {
                    id: 0,
                    task_id: task.id,
                    passed: new.passed,
                    coverage_percent: new.coverage_percent,
                    sha: new.sha.or(task.head_sha),
                    summary: new.summary,
                    create_time: mover.now,
                };
                let fact = store::insert_test_report(&mut mover.conn, &report).await?;
                let (task, advance) =
                    settle_if_waiting(&mut mover, task.id, &[Stage::Testing]).await?;
                Ok(FactRecorded {
                    fact,
                    task,
                    advance,
                })
            }
            .boxed()
        })
        .await
    }

    /// Records a deploy's health. DEGRADED freezes the repo's deploys,
    /// records a deploy_degraded lesson and holds a task on deploy; HEALTHY
    /// lifts the freeze.
    pub async fn record_deploy_status(
        &self,
        task_id: i64,
        health: DeployHealth,
        detail: Option<String>,
        request_id: Option<String>,
    ) -> Result<DeployRecorded, TaskError> {
        let key = IdempotencyKey::new(
            "tasks.record_deploy_status",
            request_id,
            &(task_id, health, &detail),
        );
        self.write(key, move |mut mover| {
            async move {
                let task = load(&mut mover, &TaskRef::Id(task_id)).await?;
                let status = DeployStatus {
                    id: 0,
                    task_id,
                    health,
                    detail: detail.clone(),
                    create_time: mover.now,
                };
                let fact = store::insert_deploy_status(&mut mover.conn, &status).await?;
                let (task, advance) = match health {
                    DeployHealth::Degraded => {
                        let freeze = DeployFreeze {
                            repo: task.repo.clone(),
                            task_id,
                            detail: detail.clone(),
                            create_time: mover.now,
                        };
                        store::freeze_deploys(&mut mover.conn, &freeze).await?;
                        let why = format!(
                            "deploy degraded: {}",
                            detail.as_deref().unwrap_or("no detail")
                        );
                        if task.stage == Stage::Deploy && !task.is_held() {
                            let movement = Move::Hold {
                                reason: HoldReason::DeployDegraded,
                                lesson: lesson_types::DEPLOY_DEGRADED,
                            };
                            let result = mover.apply(task, movement, None, why).await?;
                            (result.task.clone(), Some(result))
                        } else {
                            mover
                                .lesson(&task, lesson_types::DEPLOY_DEGRADED, None, &why)
                                .await;
                            (task, None)
                        }
                    }
                    DeployHealth::Healthy => {
                        store::lift_freeze(&mut mover.conn, &task.repo).await?;
                        settle_if_waiting(&mut mover, task.id, &[Stage::Deploy]).await?
                    }
                };
                let freeze = store::deploy_freeze(&mut mover.conn, &task.repo).await?;
                Ok(DeployRecorded {
                    recorded: FactRecorded {
                        fact,
                        task,
                        advance,
                    },
                    freeze,
                })
            }
            .boxed()
        })
        .await
    }
}

/// Whether a CI result on `sha` is a fact for the gate of a task whose head
/// is `head`: only a result on the head commit is.
pub fn counts_toward_gate(head: Option<&str>, sha: &str) -> bool {
    head.is_some_and(|head| head.eq_ignore_ascii_case(sha))
}

/// Which task a CI result belongs to, first match wins: the task whose head
/// is the sha; the open task on the branch the result names; and, only for
/// a result that names no branch at all, the repo's single
/// development-stage task (a result naming a branch no task has resolves
/// nothing).
pub fn resolution(
    by_head: Option<i64>,
    by_branch: Option<i64>,
    names_branch: bool,
    development: &[i64],
) -> Resolution {
    match (by_head, by_branch, development) {
        (Some(id), _, _) => Resolution::HeadSha(id),
        (None, Some(id), _) => Resolution::Branch(id),
        (None, None, _) if names_branch => Resolution::Unresolved,
        (None, None, []) => Resolution::Unresolved,
        (None, None, [id]) => Resolution::SingleDevelopmentTask(*id),
        (None, None, several) => Resolution::Ambiguous(several.to_vec()),
    }
}

/// Resolves a commit to a task ([`resolution`]) and loads it.
async fn resolve(
    mover: &mut Mover<'_>,
    repo: &str,
    sha: &str,
    branch: Option<&str>,
) -> Result<(Resolution, Option<Task>), TaskError> {
    let by_head = store::task_with_head(&mut mover.conn, repo, sha).await?;
    let by_branch = match (&by_head, branch) {
        (None, Some(branch)) => store::open_task_on_branch(&mut mover.conn, repo, branch).await?,
        _ => None,
    };
    let development = match (&by_head, &by_branch, branch) {
        (None, None, None) => store::development_tasks(&mut mover.conn, repo).await?,
        _ => Vec::new(),
    };
    let resolved = resolution(
        by_head.as_ref().map(|t| t.id),
        by_branch.as_ref().map(|t| t.id),
        branch.is_some(),
        &development,
    );
    let task = match &resolved {
        Resolution::HeadSha(_) => by_head,
        Resolution::Branch(_) => by_branch,
        Resolution::SingleDevelopmentTask(id) => Some(flow::reload(&mut mover.conn, *id).await?),
        Resolution::Unresolved => None,
        Resolution::Ambiguous(candidates) => {
            tracing::info!(
                repo,
                sha,
                ?candidates,
                "CI status not resolved: several development-stage tasks"
            );
            None
        }
    };
    Ok((resolved, task))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
