//! The Tasks service: starting tasks and reading them. Every change is one
//! write job: idempotency check, load, decide, save, remember the answer.
//! The calls that record facts and move tasks are in `record`.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::decide::Limits;
use super::flow::{self, Mover};
use super::store::{self, TaskFilter, TaskOrder};
use super::{Facts, GateResult, Stage, Task, TaskError, pipeline};
use crate::idempotency::{self, IdempotencyKey};
use crate::lessons::Journal;
use crate::pagination::{OrderedCursor, OrderedPageRequest, split_page};
use crate::sessions::{self, Harness};
use crate::storage::Db;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

/// The pipeline's settings (configuration `[tasks]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSettings {
    pub limits: Limits,
    /// The harness of the sessions the pipeline requests.
    pub harness: Harness,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            harness: Harness::ClaudeCode,
        }
    }
}

/// What StartTask needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTask {
    pub project_id: String,
    pub tracker_issue_id: String,
    pub work_item_id: String,
    pub title: String,
    /// `None`: the owner/name path of the project's origin_url.
    pub repo: Option<String>,
    /// `None`: "feature/<work_item_id>".
    pub branch: Option<String>,
}

/// StartTask's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub created: bool,
    pub task: Task,
    /// The task's first session.
    pub session_id: String,
}

/// GetTaskFacts' answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    pub task: Task,
    pub facts: Facts,
    pub current_gate: Option<GateResult>,
}

/// The Tasks service; cheap to clone.
#[derive(Clone)]
pub struct TasksService {
    pub(super) db: Db,
    pub(super) journal: Journal,
    pub(super) settings: TaskSettings,
}

/// A write job's result type.
pub(super) type Job<'c, T> = BoxFuture<'c, Result<T, TaskError>>;

impl TasksService {
    pub fn new(db: Db, journal: Journal, settings: TaskSettings) -> Self {
        Self {
            db,
            journal,
            settings,
        }
    }

    /// Runs `work` in one write transaction with a [`Mover`], idempotent on
    /// `key`.
    pub(super) async fn write<T, F>(
        &self,
        key: Option<IdempotencyKey>,
        work: F,
    ) -> Result<T, TaskError>
    where
        T: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
        F: for<'c> FnOnce(Mover<'c>) -> Job<'c, T> + Clone + Send + 'static,
    {
        let journal = self.journal.clone();
        let settings = self.settings;
        self.db
            .write(move |conn| {
                async move {
                    idempotency::once(conn, key.as_ref(), move |conn| {
                        async move {
                            let mover = Mover {
                                conn: conn.reborrow(),
                                journal: &journal,
                                settings: &settings,
                                now: UnixMicros::now(),
                            };
                            work(mover).await
                        }
                        .boxed()
                    })
                    .await
                }
                .boxed()
            })
            .await
    }

    pub async fn start(
        &self,
        new: NewTask,
        request_id: Option<String>,
    ) -> Result<Started, TaskError> {
        let key = IdempotencyKey::new("tasks.start", request_id, &new);
        self.write(key, move |mut mover| {
            async move {
                if let Some(task) = store::task_by_issue(&mut mover.conn, &new.tracker_issue_id).await? {
                    let session_id = first_session(&mut mover.conn, task.id).await?;
                    return Ok(Started {
                        created: false,
                        task,
                        session_id,
                    });
                }
                let project = sessions::get_project(&mut mover.conn, &new.project_id)
                    .await?
                    .ok_or_else(|| TaskError::ProjectNotFound(new.project_id.clone()))?;
                if project.archive_time.is_some() {
                    return Err(TaskError::ProjectArchived(project.id));
                }
                let repo = match new.repo {
                    Some(repo) => repo,
                    None => project
                        .origin_url
                        .as_deref()
                        .and_then(sessions::origin_repo)
                        .ok_or_else(|| {
                            crate::error::Violations::one(
                                "repo",
                                "is required: the project has no origin_url to take it from",
                            )
                        })?,
                };
                let branch = new
                    .branch
                    .unwrap_or_else(|| format!("feature/{}", new.work_item_id));
                if let Some(other) = store::open_task_on_branch(&mut mover.conn, &repo, &branch).await? {
                    return Err(TaskError::BranchInUse {
                        repo,
                        branch,
                        task_id: other.id,
                    });
                }
                let now = mover.now;
                let mut task = Task {
                    id: store::next_task_id(&mut mover.conn).await?,
                    project_id: project.id,
                    tracker_issue_id: new.tracker_issue_id,
                    work_item_id: new.work_item_id,
                    title: new.title,
                    repo,
                    branch,
                    stage: pipeline::FIRST,
                    head_sha: None,
                    rollback_count: 0,
                    transient_retries: 0,
                    hold_reason: None,
                    hold_detail: None,
                    hold_time: None,
                    stage_session_id: None,
                    stage_session_finished: false,
                    stage_session_active: true,
                    last_gate: None,
                    create_time: now,
                    update_time: now,
                    stage_enter_time: now,
                };
                // The session first: the task row names it.
                let session_id = mover.request_session(&mut task, None).await?.unwrap_or_default();
                store::insert_task(&mut mover.conn, &task).await?;
                let task = flow::reload(&mut mover.conn, task.id).await?;
                tracing::info!(task_id = task.id, work_item = %task.work_item_id, session_id, "task started");
                Ok(Started {
                    created: true,
                    task,
                    session_id,
                })
            }
            .boxed()
        })
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Task, TaskError> {
        store::get_task(&mut self.db.read().await?.conn(), id)
            .await?
            .ok_or_else(|| TaskError::TaskNotFound(id.to_string()))
    }

    /// Tasks newest first; the id continues the listing.
    pub async fn list(
        &self,
        filter: &TaskFilter,
        page: OrderedPageRequest,
    ) -> Result<(Vec<Task>, Option<OrderedCursor>), TaskError> {
        let mut reader = self.db.read().await?;
        let tasks =
            store::list_tasks(&mut reader.conn(), filter, page.after, page.size + 1).await?;
        let by_update = filter.order == TaskOrder::UpdateTime;
        Ok(split_page(tasks, page.size, |t| OrderedCursor {
            time: by_update.then_some(t.update_time.0),
            id: t.id,
        }))
    }

    /// Every fact of a task and its current gate evaluated now, read-only.
    pub async fn facts(&self, id: i64) -> Result<TaskFacts, TaskError> {
        // One read transaction: the task, its gate and its facts agree.
        let mut snapshot = self.db.snapshot().await?;
        let mut conn = snapshot.conn();
        let task = store::get_task(&mut conn, id)
            .await?
            .ok_or_else(|| TaskError::TaskNotFound(id.to_string()))?;
        let current_gate = flow::evaluate(&mut conn, &task, UnixMicros::now())
            .await?
            .map(|(gate, _)| gate);
        let facts = store::all_facts(&mut conn, &task).await?;
        snapshot.finish().await?;
        Ok(TaskFacts {
            task,
            facts,
            current_gate,
        })
    }

    /// Tasks the reconciler's gate side may look at: not done, not in
    /// analysis, not held.
    pub async fn sweepable(&self) -> Result<Vec<Task>, TaskError> {
        Ok(store::sweepable_tasks(&mut self.db.read().await?.conn()).await?)
    }

    /// The task of a tracker issue with its newest tracker verdict (and when
    /// it was recorded).
    pub async fn by_tracker_issue(
        &self,
        tracker_issue_id: &str,
    ) -> Result<Option<(Task, Option<(super::Decision, UnixMicros)>)>, TaskError> {
        let mut reader = self.db.read().await?;
        let mut conn = reader.conn();
        let Some(task) = store::task_by_issue(&mut conn, tracker_issue_id).await? else {
            return Ok(None);
        };
        let verdict = store::newest_tracker_verdict(&mut conn, task.id).await?;
        Ok(Some((task, verdict)))
    }

    /// The current gate of a task, evaluated read-only on the read pool.
    pub async fn peek_gate(&self, task: &Task) -> Result<Option<GateResult>, TaskError> {
        let mut reader = self.db.read().await?;
        Ok(flow::evaluate(&mut reader.conn(), task, UnixMicros::now())
            .await?
            .map(|(gate, _)| gate))
    }

    /// The reconciler's move: when the task is still as the sweep saw it
    /// (same stage, not held, stage session inactive) and its gate is green
    /// now, advance it exactly as AdvanceTask would. `None`: nothing moved,
    /// nothing written.
    pub async fn advance_if_green(
        &self,
        task_id: i64,
        seen_stage: Stage,
    ) -> Result<Option<flow::AdvanceResult>, TaskError> {
        self.write(None, move |mut mover| {
            async move {
                let Some(task) = store::get_task(&mut mover.conn, task_id).await? else {
                    return Ok(None);
                };
                if task.stage != seen_stage || task.is_held() || task.stage_session_active {
                    return Ok(None);
                }
                let Some((gate, facts)) = flow::evaluate(&mut mover.conn, &task, mover.now).await?
                else {
                    return Ok(None);
                };
                if gate.status != super::GateStatus::Passed {
                    return Ok(None);
                }
                Ok(Some(mover.settle_with(task, gate, &facts).await?))
            }
            .boxed()
        })
        .await
    }
}

/// The first session requested for a task (its analyst).
async fn first_session(conn: &mut Conn<'_>, task_id: i64) -> Result<String, TaskError> {
    Ok(store::first_session(conn, task_id)
        .await?
        .unwrap_or_default())
}
