//! SQL of tasks and their facts. Rows are read through the `<table>_payload`
//! views that also feed the change log, so what bosun returns and what an
//! event carries have one shape.

use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};

use super::{
    CiStatus, Decision, DeployFreeze, DeployStatus, Facts, PullRequestFacts, Stage, Task,
    TestReport, Verdict,
};
use crate::sessions::{PullRequestState, ReviewDecision};
use crate::storage::{StoreError, decode_row, json_text};
use crate::time::UnixMicros;

/// Most verdicts, test reports or deploy statuses one read returns.
pub const FACTS_LIMIT: i64 = 100;

fn decode_all<T: serde::de::DeserializeOwned>(
    kind: &str,
    payloads: Vec<String>,
) -> Result<Vec<T>, StoreError> {
    payloads.iter().map(|p| decode_row(kind, p)).collect()
}

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

/// ListTasks' filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskFilter {
    pub project_id: Option<String>,
    pub stage: Option<Stage>,
    pub repo: Option<String>,
    pub held: Option<bool>,
    pub work_item_id: Option<String>,
    pub tracker_issue_id: Option<String>,
}

/// Tasks newest first (by id) below `before`.
pub async fn list_tasks<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &TaskFilter,
    before: Option<i64>,
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
    if let Some(before) = before {
        query.push(" AND t.id < ").push_bind(before);
    }
    query
        .push(" ORDER BY t.id DESC LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    decode_all("task", payloads)
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
    decode_all("task", payloads)
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

// CI statuses.

/// Records the newest state of (repo, sha, context); writes nothing when it
/// did not change.
pub async fn upsert_ci_status(
    conn: &mut SqliteConnection,
    status: &CiStatus,
) -> Result<CiStatus, StoreError> {
    sqlx::query(
        "INSERT INTO ci_statuses (repo, sha, branch, context, state, target_url, description, create_time, \
         update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (repo, sha, context) DO UPDATE SET branch = COALESCE(excluded.branch, branch), \
         state = excluded.state, target_url = excluded.target_url, description = excluded.description, \
         update_time = excluded.update_time \
         WHERE (state, target_url, description) IS NOT (excluded.state, excluded.target_url, excluded.description) \
            OR (excluded.branch IS NOT NULL AND branch IS NOT excluded.branch)",
    )
    .bind(&status.repo)
    .bind(&status.sha)
    .bind(&status.branch)
    .bind(&status.context)
    .bind(status.state.as_str())
    .bind(&status.target_url)
    .bind(&status.description)
    .bind(status.create_time.0)
    .bind(status.update_time.0)
    .execute(&mut *conn)
    .await?;
    let payload: String = sqlx::query_scalar(
        "SELECT p.payload FROM ci_statuses c JOIN ci_statuses_payload p ON p.id = c.id \
         WHERE c.repo = ? AND c.sha = ? AND c.context = ?",
    )
    .bind(&status.repo)
    .bind(&status.sha)
    .bind(&status.context)
    .fetch_one(conn)
    .await?;
    decode_row("ci_status", &payload)
}

pub async fn ci_statuses<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    repo: &str,
    sha: &str,
) -> Result<Vec<CiStatus>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT p.payload FROM ci_statuses c JOIN ci_statuses_payload p ON p.id = c.id \
         WHERE c.repo = ? AND c.sha = ? ORDER BY c.context",
    )
    .bind(repo)
    .bind(sha)
    .fetch_all(executor)
    .await?;
    decode_all("ci_status", payloads)
}

// Verdicts, test reports, deploy statuses.

pub async fn insert_verdict(
    conn: &mut SqliteConnection,
    verdict: &Verdict,
) -> Result<Verdict, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO verdicts (task_id, decision, source, author, comment, stage, create_time) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(verdict.task_id)
    .bind(verdict.decision.as_str())
    .bind(verdict.source.as_str())
    .bind(&verdict.author)
    .bind(&verdict.comment)
    .bind(verdict.stage.as_str())
    .bind(verdict.create_time.0)
    .fetch_one(conn)
    .await?;
    Ok(Verdict {
        id,
        ..verdict.clone()
    })
}

pub async fn insert_test_report(
    conn: &mut SqliteConnection,
    report: &TestReport,
) -> Result<TestReport, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO test_reports (task_id, passed, coverage_percent, sha, summary, create_time) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(report.task_id)
    .bind(report.passed)
    .bind(report.coverage_percent)
    .bind(&report.sha)
    .bind(&report.summary)
    .bind(report.create_time.0)
    .fetch_one(conn)
    .await?;
    Ok(TestReport {
        id,
        ..report.clone()
    })
}

pub async fn insert_deploy_status(
    conn: &mut SqliteConnection,
    status: &DeployStatus,
) -> Result<DeployStatus, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deploy_statuses (task_id, health, detail, create_time) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(status.task_id)
    .bind(status.health.as_str())
    .bind(&status.detail)
    .bind(status.create_time.0)
    .fetch_one(conn)
    .await?;
    Ok(DeployStatus {
        id,
        ..status.clone()
    })
}

/// A task's rows of one fact table at or after `since`, newest first.
async fn facts_since<T: serde::de::DeserializeOwned>(
    conn: &mut SqliteConnection,
    table: &str,
    task_id: i64,
    since: UnixMicros,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT p.payload FROM {table} f JOIN {table}_payload p ON p.id = f.id \
         WHERE f.task_id = ? AND f.create_time >= ? ORDER BY f.id DESC LIMIT ?"
    );
    let payloads: Vec<String> = sqlx::query_scalar(&sql)
        .bind(task_id)
        .bind(since.0)
        .bind(FACTS_LIMIT)
        .fetch_all(conn)
        .await?;
    decode_all(table, payloads)
}

/// The newest tracker verdict of a task, with when it was recorded.
pub async fn newest_tracker_verdict<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    task_id: i64,
) -> Result<Option<(Decision, UnixMicros)>, StoreError> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT decision, create_time FROM verdicts WHERE task_id = ? AND source = 'tracker' \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(task_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.and_then(|(decision, at)| Some((Decision::parse(&decision)?, UnixMicros(at)))))
}

// Deploy freezes.

pub async fn deploy_freeze<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    repo: &str,
) -> Result<Option<DeployFreeze>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM deploy_freezes_payload WHERE repo = ?")
            .bind(repo)
            .fetch_optional(executor)
            .await?;
    payload.map(|p| decode_row("deploy_freeze", &p)).transpose()
}

/// Freezes `repo`'s deploys unless they already are.
pub async fn freeze_deploys(
    conn: &mut SqliteConnection,
    freeze: &DeployFreeze,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deploy_freezes (repo, task_id, detail, create_time) VALUES (?, ?, ?, ?) \
         ON CONFLICT (repo) DO NOTHING",
    )
    .bind(&freeze.repo)
    .bind(freeze.task_id)
    .bind(&freeze.detail)
    .bind(freeze.create_time.0)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn lift_freeze(conn: &mut SqliteConnection, repo: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM deploy_freezes WHERE repo = ?")
        .bind(repo)
        .execute(conn)
        .await?;
    Ok(())
}

// Facts.

/// The task's pull request: the one most recently reported for a session of
/// the task on its branch.
async fn pull_request(
    conn: &mut SqliteConnection,
    task: &Task,
) -> Result<Option<PullRequestFacts>, StoreError> {
    let row: Option<(i64, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT pr.number, pr.state, pr.review_decision, COALESCE(pr.update_time, pr.create_time) AS reported \
         FROM pull_requests pr JOIN sessions s ON s.id = pr.session_id \
         WHERE s.task_id = ? AND (pr.branch IS NULL OR pr.branch = ?) \
         ORDER BY reported DESC LIMIT 1",
    )
    .bind(task.id)
    .bind(&task.branch)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(number, state, review_decision, reported)| PullRequestFacts {
            number,
            merged: PullRequestState::parse(&state) == Some(PullRequestState::Merged),
            review_decision: review_decision.as_deref().and_then(ReviewDecision::parse),
            report_time: UnixMicros(reported),
        },
    ))
}

/// Everything the gates read about `task`.
pub async fn facts(conn: &mut SqliteConnection, task: &Task) -> Result<Facts, StoreError> {
    let since = task.stage_enter_time;
    let (required, threshold): (String, f64) = sqlx::query_as(
        "SELECT required_ci_contexts, coverage_threshold FROM projects WHERE id = ?",
    )
    .bind(&task.project_id)
    .fetch_one(&mut *conn)
    .await?;
    let ci_statuses = match &task.head_sha {
        Some(sha) => ci_statuses(&mut *conn, &task.repo, sha).await?,
        None => Vec::new(),
    };
    Ok(Facts {
        stage_enter_time: since,
        ci_statuses,
        required_ci_contexts: decode_row("project.required_ci_contexts", &required)?,
        coverage_threshold: threshold,
        verdicts: facts_since(conn, "verdicts", task.id, since).await?,
        test_reports: facts_since(conn, "test_reports", task.id, since).await?,
        deploy_statuses: facts_since(conn, "deploy_statuses", task.id, since).await?,
        deploy_freeze: deploy_freeze(&mut *conn, &task.repo).await?,
        pull_request: pull_request(conn, task).await?,
    })
}

/// Every recorded fact of a task for GetTaskFacts: not only those since the
/// stage began.
pub async fn all_facts(conn: &mut SqliteConnection, task: &Task) -> Result<Facts, StoreError> {
    let mut facts = facts(&mut *conn, task).await?;
    let origin = UnixMicros(i64::MIN);
    facts.verdicts = facts_since(conn, "verdicts", task.id, origin).await?;
    facts.test_reports = facts_since(conn, "test_reports", task.id, origin).await?;
    facts.deploy_statuses = facts_since(conn, "deploy_statuses", task.id, origin).await?;
    Ok(facts)
}
