//! SQL of the facts the gates read: CI statuses, verdicts, test reports,
//! deploy statuses and freezes, and a task's pull request.

use sqlx::{Executor, Sqlite, SqliteConnection};

use crate::sessions::{PullRequestState, ReviewDecision};
use crate::storage::{StoreError, decode_row, decode_rows};
use crate::tasks::{
    CiStatus, Decision, DeployFreeze, DeployStatus, Facts, PullRequestFacts, Task, TestReport,
    Verdict,
};
use crate::time::UnixMicros;

/// Most verdicts, test reports or deploy statuses one read returns.
pub const FACTS_LIMIT: i64 = 100;

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
    decode_rows("ci_status", &payloads)
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
    decode_rows(table, &payloads)
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
