//! SQL of tasks and their facts. Rows are read through the `<table>_payload`
//! views that also feed the change log, so what bosun returns and what an
//! event carries have one shape.

mod gate_facts;

pub use gate_facts::*;

use super::{Stage, Task};
use crate::pagination::OrderedCursor;
use crate::storage::sql::{Builder, Conn, JsonText, query, query_per_engine};
use crate::storage::{StoreError, decode_payload, decode_payloads, json_value};
use crate::time::UnixMicros;

// Tasks.

/// Inserts a task (its id is assigned) and returns the id.
pub async fn insert_task(conn: &mut Conn<'_>, task: &Task) -> Result<i64, StoreError> {
    query(
        "INSERT INTO tasks (id, project_id, tracker_issue_id, work_item_id, title, repo, branch, stage, \
         stage_session_id, create_time, update_time, stage_enter_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(task.id)
    .bind(&task.project_id)
    .bind(&task.tracker_issue_id)
    .bind(&task.work_item_id)
    .bind(&task.title)
    .bind(&task.repo)
    .bind(&task.branch)
    .bind(task.stage.as_str())
    .bind(&task.stage_session_id)
    .bind(task.create_time.0)
    .bind(task.update_time.0)
    .bind(task.stage_enter_time.0)
    .fetch_scalar(conn)
    .await
}

/// Per engine: SQLite's AUTOINCREMENT keeps its counter in
/// `sqlite_sequence` (bosun has one writer, so inside its transaction this
/// is the id the insert takes); PostgreSQL's identity column has a sequence,
/// from which the id is taken (the insert then names it).
const NEXT_TASK_ID_SQLITE: &str =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0) + 1";
const NEXT_TASK_ID_POSTGRES: &str = "SELECT nextval(pg_get_serial_sequence('tasks', 'id'))";

/// The id the next task takes; the insert names it.
pub async fn next_task_id(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    query_per_engine(NEXT_TASK_ID_SQLITE, NEXT_TASK_ID_POSTGRES)
        .fetch_scalar(conn)
        .await
}

/// The first session requested for a task.
pub async fn first_session(
    conn: &mut Conn<'_>,
    task_id: i64,
) -> Result<Option<String>, StoreError> {
    query("SELECT id FROM sessions WHERE task_id = $1 ORDER BY create_time, number LIMIT 1")
        .bind(task_id)
        .fetch_optional_scalar(conn)
        .await
}

/// Writes every mutable column of `task`.
pub async fn save_task(conn: &mut Conn<'_>, task: &Task) -> Result<(), StoreError> {
    query(
        "UPDATE tasks SET stage = $1, head_sha = $2, rollback_count = $3, transient_retries = $4, \
         hold_reason = $5, hold_detail = $6, hold_time = $7, stage_session_id = $8, \
         stage_session_finished = $9, last_gate = $10, update_time = $11, stage_enter_time = $12 \
         WHERE id = $13",
    )
    .bind(task.stage.as_str())
    .bind(&task.head_sha)
    .bind(task.rollback_count)
    .bind(task.transient_retries)
    .bind(task.hold_reason.map(|r| r.as_str()))
    .bind(&task.hold_detail)
    .bind(task.hold_time.map(|t| t.0))
    .bind(&task.stage_session_id)
    .bind(task.stage_session_finished)
    .bind(task.last_gate.as_ref().map(json_value).transpose()?)
    .bind(task.update_time.0)
    .bind(task.stage_enter_time.0)
    .bind(task.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_task(conn: &mut Conn<'_>, id: i64) -> Result<Option<Task>, StoreError> {
    let payload = query("SELECT payload FROM tasks_payload WHERE id = $1")
        .bind(id)
        .fetch_optional_scalar(conn)
        .await?;
    decode_payload("task", payload)
}

pub async fn task_by_issue(
    conn: &mut Conn<'_>,
    tracker_issue_id: &str,
) -> Result<Option<Task>, StoreError> {
    let payload = query(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id WHERE t.tracker_issue_id = $1",
    )
    .bind(tracker_issue_id)
    .fetch_optional_scalar(conn)
    .await?;
    decode_payload("task", payload)
}

/// The order of ListTasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum TaskOrder {
    /// Newest first, by id.
    #[default]
    CreateTime,
    /// Last updated first, then newest first.
    UpdateTime,
}

/// ListTasks' filters and order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskFilter {
    pub project_id: Option<String>,
    pub stage: Option<Stage>,
    pub repo: Option<String>,
    pub held: Option<bool>,
    pub work_item_id: Option<String>,
    pub tracker_issue_id: Option<String>,
    pub order: TaskOrder,
}

/// Tasks in the filter's order after `after`.
pub async fn list_tasks(
    conn: &mut Conn<'_>,
    filter: &TaskFilter,
    after: Option<OrderedCursor>,
    limit: u32,
) -> Result<Vec<Task>, StoreError> {
    let mut query = Builder::new(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id WHERE 1 = 1",
    );
    if let Some(project_id) = &filter.project_id {
        query.push(" AND t.project_id = ").push_bind(project_id);
    }
    if let Some(stage) = filter.stage {
        query.push(" AND t.stage = ").push_bind(stage.as_str());
    }
    if let Some(repo) = &filter.repo {
        query.push(" AND t.repo = ").push_bind(repo);
    }
    match filter.held {
        Some(true) => {
            query.push(" AND t.hold_reason IS NOT NULL");
        }
        Some(false) => {
            query.push(" AND t.hold_reason IS NULL");
        }
        None => {}
    }
    if let Some(work_item_id) = &filter.work_item_id {
        query.push(" AND t.work_item_id = ").push_bind(work_item_id);
    }
    if let Some(issue) = &filter.tracker_issue_id {
        query.push(" AND t.tracker_issue_id = ").push_bind(issue);
    }
    let by_update = filter.order == TaskOrder::UpdateTime;
    match after {
        Some(OrderedCursor {
            time: Some(time),
            id,
        }) if by_update => {
            query
                .push(" AND (t.update_time < ")
                .push_bind(time)
                .push(" OR (t.update_time = ")
                .push_bind(time)
                .push(" AND t.id < ")
                .push_bind(id)
                .push("))");
        }
        Some(OrderedCursor { id, .. }) => {
            query.push(" AND t.id < ").push_bind(id);
        }
        None => {}
    }
    query.push(if by_update {
        " ORDER BY t.update_time DESC, t.id DESC LIMIT "
    } else {
        " ORDER BY t.id DESC LIMIT "
    });
    query.push_bind(i64::from(limit));
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    decode_payloads("task", &payloads)
}

/// The task of `repo` that is not done on `branch`.
pub async fn open_task_on_branch(
    conn: &mut Conn<'_>,
    repo: &str,
    branch: &str,
) -> Result<Option<Task>, StoreError> {
    let payload = query(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.repo = $1 AND t.branch = $2 AND t.stage <> 'done'",
    )
    .bind(repo)
    .bind(branch)
    .fetch_optional_scalar(conn)
    .await?;
    decode_payload("task", payload)
}

/// The newest task of `repo` whose head is `sha`.
pub async fn task_with_head(
    conn: &mut Conn<'_>,
    repo: &str,
    sha: &str,
) -> Result<Option<Task>, StoreError> {
    let payload = query(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.repo = $1 AND t.head_sha = $2 ORDER BY t.id DESC LIMIT 1",
    )
    .bind(repo)
    .bind(sha)
    .fetch_optional_scalar(conn)
    .await?;
    decode_payload("task", payload)
}

/// The ids of the development-stage tasks of `repo`.
pub async fn development_tasks(conn: &mut Conn<'_>, repo: &str) -> Result<Vec<i64>, StoreError> {
    query("SELECT id FROM tasks WHERE repo = $1 AND stage = 'development' ORDER BY id")
        .bind(repo)
        .fetch_all_scalars(conn)
        .await
}

/// Tasks the reconciler's gate side may look at: not done, not in
/// analysis, not held.
pub async fn sweepable_tasks(conn: &mut Conn<'_>) -> Result<Vec<Task>, StoreError> {
    let payloads: Vec<JsonText> = query(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.stage NOT IN ('done', 'analysis') AND t.hold_reason IS NULL ORDER BY t.id",
    )
    .fetch_all_scalars(conn)
    .await?;
    decode_payloads("task", &payloads)
}

/// Sets a task's head commit, when it has another one.
pub(crate) async fn note_head_sha(
    conn: &mut Conn<'_>,
    task_id: i64,
    sha: &str,
) -> Result<(), StoreError> {
    query(
        "UPDATE tasks SET head_sha = $1, update_time = $2 \
         WHERE id = $3 AND head_sha IS DISTINCT FROM $1",
    )
    .bind(sha)
    .bind(UnixMicros::now().0)
    .bind(task_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The project of a task, `None` when there is no such task.
pub(crate) async fn task_project(
    conn: &mut Conn<'_>,
    task_id: i64,
) -> Result<Option<String>, StoreError> {
    query("SELECT project_id FROM tasks WHERE id = $1")
        .bind(task_id)
        .fetch_optional_scalar(conn)
        .await
}
