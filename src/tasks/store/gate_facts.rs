//! SQL of the facts the gates read: CI statuses, verdicts, test reports,
//! deploy statuses and freezes, and a task's pull request.

use super::{decode_payload, decode_payloads};
use crate::sessions::{PullRequestState, ReviewDecision};
use crate::storage::sql::{Conn, JsonText, query};
use crate::storage::{StoreError, decode_row};
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
    conn: &mut Conn<'_>,
    status: &CiStatus,
) -> Result<CiStatus, StoreError> {
    // The existing row's columns are named with the table: PostgreSQL
    // finds a bare name ambiguous beside `excluded`.
    query(
        "INSERT INTO ci_statuses (repo, sha, branch, context, state, target_url, description, create_time, \
         update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (repo, sha, context) DO UPDATE SET \
         branch = COALESCE(excluded.branch, ci_statuses.branch), state = excluded.state, \
         target_url = excluded.target_url, description = excluded.description, \
         update_time = excluded.update_time \
         WHERE ci_statuses.state IS DISTINCT FROM excluded.state \
            OR ci_statuses.target_url IS DISTINCT FROM excluded.target_url \
            OR ci_statuses.description IS DISTINCT FROM excluded.description \
            OR (excluded.branch IS NOT NULL AND ci_statuses.branch IS DISTINCT FROM excluded.branch)",
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
    let payload: JsonText = query(
        "SELECT p.payload FROM ci_statuses c JOIN ci_statuses_payload p ON p.id = c.id \
         WHERE c.repo = $1 AND c.sha = $2 AND c.context = $3",
    )
    .bind(&status.repo)
    .bind(&status.sha)
    .bind(&status.context)
    .fetch_scalar(conn)
    .await?;
    decode_row("ci_status", &payload.0)
}

pub async fn ci_statuses(
    conn: &mut Conn<'_>,
    repo: &str,
    sha: &str,
) -> Result<Vec<CiStatus>, StoreError> {
    let payloads: Vec<JsonText> = query(
        "SELECT p.payload FROM ci_statuses c JOIN ci_statuses_payload p ON p.id = c.id \
         WHERE c.repo = $1 AND c.sha = $2 ORDER BY c.context",
    )
    .bind(repo)
    .bind(sha)
    .fetch_all_scalars(conn)
    .await?;
    decode_payloads("ci_status", &payloads)
}

// Verdicts, test reports, deploy statuses.

pub async fn insert_verdict(conn: &mut Conn<'_>, verdict: &Verdict) -> Result<Verdict, StoreError> {
    let id: i64 = query(
        "INSERT INTO verdicts (task_id, decision, source, author, comment, stage, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(verdict.task_id)
    .bind(verdict.decision.as_str())
    .bind(verdict.source.as_str())
    .bind(&verdict.author)
    .bind(&verdict.comment)
    .bind(verdict.stage.as_str())
    .bind(verdict.create_time.0)
    .fetch_scalar(conn)
    .await?;
    Ok(Verdict {
        id,
        ..verdict.clone()
    })
}

pub async fn insert_test_report(
    conn: &mut Conn<'_>,
    report: &TestReport,
) -> Result<TestReport, StoreError> {
    let id: i64 = query(
        "INSERT INTO test_reports (task_id, passed, coverage_percent, sha, summary, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(report.task_id)
    .bind(report.passed)
    .bind(report.coverage_percent)
    .bind(&report.sha)
    .bind(&report.summary)
    .bind(report.create_time.0)
    .fetch_scalar(conn)
    .await?;
    Ok(TestReport {
        id,
        ..report.clone()
    })
}

pub async fn insert_deploy_status(
    conn: &mut Conn<'_>,
    status: &DeployStatus,
) -> Result<DeployStatus, StoreError> {
    let id: i64 = query(
        "INSERT INTO deploy_statuses (task_id, health, detail, create_time) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(status.task_id)
    .bind(status.health.as_str())
    .bind(&status.detail)
    .bind(status.create_time.0)
    .fetch_scalar(conn)
    .await?;
    Ok(DeployStatus {
        id,
        ..status.clone()
    })
}

/// A task's rows of one fact table at or after `since`, newest first.
async fn facts_since<T: serde::de::DeserializeOwned>(
    conn: &mut Conn<'_>,
    table: &str,
    task_id: i64,
    since: UnixMicros,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT p.payload FROM {table} f JOIN {table}_payload p ON p.id = f.id \
         WHERE f.task_id = $1 AND f.create_time >= $2 ORDER BY f.id DESC LIMIT $3"
    );
    let payloads: Vec<JsonText> = query(&sql)
        .bind(task_id)
        .bind(since.0)
        .bind(FACTS_LIMIT)
        .fetch_all_scalars(conn)
        .await?;
    decode_payloads(table, &payloads)
}

/// The newest tracker verdict of a task, with when it was recorded.
pub async fn newest_tracker_verdict(
    conn: &mut Conn<'_>,
    task_id: i64,
) -> Result<Option<(Decision, UnixMicros)>, StoreError> {
    let row: Option<(String, i64)> = query(
        "SELECT decision, create_time FROM verdicts WHERE task_id = $1 AND source = 'tracker' \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(task_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(decision, at)| Some((Decision::parse(&decision)?, UnixMicros(at)))))
}

// Deploy freezes.

pub async fn deploy_freeze(
    conn: &mut Conn<'_>,
    repo: &str,
) -> Result<Option<DeployFreeze>, StoreError> {
    let payload = query("SELECT payload FROM deploy_freezes_payload WHERE repo = $1")
        .bind(repo)
        .fetch_optional_scalar(conn)
        .await?;
    decode_payload("deploy_freeze", payload)
}

/// Freezes `repo`'s deploys unless they already are.
pub async fn freeze_deploys(conn: &mut Conn<'_>, freeze: &DeployFreeze) -> Result<(), StoreError> {
    query(
        "INSERT INTO deploy_freezes (repo, task_id, detail, create_time) VALUES ($1, $2, $3, $4) \
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

pub async fn lift_freeze(conn: &mut Conn<'_>, repo: &str) -> Result<(), StoreError> {
    query("DELETE FROM deploy_freezes WHERE repo = $1")
        .bind(repo)
        .execute(conn)
        .await?;
    Ok(())
}

// Facts.

/// The task's pull request: the one most recently reported for a session of
/// the task on its branch.
async fn pull_request(
    conn: &mut Conn<'_>,
    task: &Task,
) -> Result<Option<PullRequestFacts>, StoreError> {
    let row: Option<(i64, String, Option<String>, i64)> = query(
        "SELECT pr.number, pr.state, pr.review_decision, COALESCE(pr.update_time, pr.create_time) AS reported \
         FROM pull_requests pr JOIN sessions s ON s.id = pr.session_id \
         WHERE s.task_id = $1 AND (pr.branch IS NULL OR pr.branch = $2) \
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
pub async fn facts(conn: &mut Conn<'_>, task: &Task) -> Result<Facts, StoreError> {
    let since = task.stage_enter_time;
    let (required, threshold): (JsonText, f64) =
        query("SELECT required_ci_contexts, coverage_threshold FROM projects WHERE id = $1")
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
        required_ci_contexts: decode_row("project.required_ci_contexts", &required.0)?,
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
pub async fn all_facts(conn: &mut Conn<'_>, task: &Task) -> Result<Facts, StoreError> {
    let mut facts = facts(&mut *conn, task).await?;
    let origin = UnixMicros(i64::MIN);
    facts.verdicts = facts_since(conn, "verdicts", task.id, origin).await?;
    facts.test_reports = facts_since(conn, "test_reports", task.id, origin).await?;
    facts.deploy_statuses = facts_since(conn, "deploy_statuses", task.id, origin).await?;
    Ok(facts)
}
