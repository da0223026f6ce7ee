//! SQL of tasks and their facts. Rows are read through the `<table>_payload`
//! views that also feed the change log, so what bosun returns and what an
//! event carries have one shape.

mod gate_facts;

use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};

pub use gate_facts::*;

use super::{Stage, Task};
use crate::pagination::OrderedCursor;
use crate::storage::{StoreError, decode_row, decode_rows, json_text};
use crate::time::UnixMicros;

// Tasks.

/// Inserts a task (its id is assigned) and returns the id.
pub async fn insert_task(conn: &mut SqliteConnection, task: &Task) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO tasks (id, project_id, tracker_issue_id, work_item_id, title, repo, branch, stage, \
         stage_session_id, create_time, update_time, stage_enter_time) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The id the next task will get. bosun has one writer, so inside its
/// transaction this is the id the insert takes.
pub async fn next_task_id(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0) + 1",
    )
    .fetch_one(conn)
    .await?)
}

/// The first session requested for a task.
pub async fn first_session(
    conn: &mut SqliteConnection,
    task_id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM sessions WHERE task_id = ? ORDER BY create_time, number LIMIT 1",
    )
    .bind(task_id)
    .fetch_optional(conn)
    .await?)
}

/// Writes every mutable column of `task`.
pub async fn save_task(conn: &mut SqliteConnection, task: &Task) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tasks SET stage = ?, head_sha = ?, rollback_count = ?, transient_retries = ?, hold_reason = ?, \
         hold_detail = ?, hold_time = ?, stage_session_id = ?, stage_session_finished = ?, last_gate = ?, \
         update_time = ?, stage_enter_time = ? WHERE id = ?",
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
    .bind(task.last_gate.as_ref().map(json_text).transpose()?)
    .bind(task.update_time.0)
    .bind(task.stage_enter_time.0)
    .bind(task.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_task<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    id: i64,
) -> Result<Option<Task>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM tasks_payload WHERE id = ?")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    payload.map(|p| decode_row("task", &p)).transpose()
}

pub async fn task_by_issue<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    tracker_issue_id: &str,
) -> Result<Option<Task>, StoreError> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id WHERE t.tracker_issue_id = ?",
    )
    .bind(tracker_issue_id)
    .fetch_optional(executor)
    .await?;
    payload.map(|p| decode_row("task", &p)).transpose()
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
pub async fn list_tasks<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &TaskFilter,
    after: Option<OrderedCursor>,
    limit: u32,
) -> Result<Vec<Task>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
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
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    decode_rows("task", &payloads)
}

/// The task of `repo` that is not done on `branch`.
pub async fn open_task_on_branch(
    conn: &mut SqliteConnection,
    repo: &str,
    branch: &str,
) -> Result<Option<Task>, StoreError> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.repo = ? AND t.branch = ? AND t.stage <> 'done'",
    )
    .bind(repo)
    .bind(branch)
    .fetch_optional(conn)
    .await?;
    payload.map(|p| decode_row("task", &p)).transpose()
}

/// The newest task of `repo` whose head is `sha`.
pub async fn task_with_head(
    conn: &mut SqliteConnection,
    repo: &str,
    sha: &str,
) -> Result<Option<Task>, StoreError> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.repo = ? AND t.head_sha = ? ORDER BY t.id DESC LIMIT 1",
    )
    .bind(repo)
    .bind(sha)
    .fetch_optional(conn)
    .await?;
    payload.map(|p| decode_row("task", &p)).transpose()
}

/// The ids of the development-stage tasks of `repo`.
pub async fn development_tasks(
    conn: &mut SqliteConnection,
    repo: &str,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tasks WHERE repo = ? AND stage = 'development' ORDER BY id",
    )
    .bind(repo)
    .fetch_all(conn)
    .await?)
}

/// Tasks the reconciler's gate side may look at: not done, not in
/// analysis, not held.
pub async fn sweepable_tasks<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
) -> Result<Vec<Task>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM tasks t JOIN tasks_payload p ON p.id = t.id \
         WHERE t.stage NOT IN ('done', 'analysis') AND t.hold_reason IS NULL ORDER BY t.id",
    )
    .fetch_all(executor)
    .await?;
    decode_rows("task", &payloads)
}

/// Sets a task's head commit, when it has another one.
pub(crate) async fn note_head_sha(
    conn: &mut SqliteConnection,
    task_id: i64,
    sha: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tasks SET head_sha = ?, update_time = ? WHERE id = ? AND head_sha IS NOT ?",
    )
    .bind(sha)
    .bind(UnixMicros::now().0)
    .bind(task_id)
    .bind(sha)
    .execute(conn)
    .await?;
    Ok(())
}

/// The project of a task, `None` when there is no such task.
pub(crate) async fn task_project(
    conn: &mut SqliteConnection,
    task_id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT project_id FROM tasks WHERE id = ?")
            .bind(task_id)
            .fetch_optional(conn)
            .await?,
    )
}
