//! SQL of reconciler passes, read through `reconciler_runs_payload`.

use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};

use super::{Action, Run, RunState, RunTrigger, Side, SideCounts, Totals};
use crate::storage::{StoreError, decode_row, decode_rows, json_text};
use crate::time::UnixMicros;

/// Most actions or errors a pass keeps (the counts stay exact).
pub const MAX_LISTED: usize = 100;

pub async fn insert_run(
    conn: &mut SqliteConnection,
    trigger: RunTrigger,
    side: Option<Side>,
    gate_side_ran: bool,
    tracker_side_ran: bool,
    start: UnixMicros,
) -> Result<Run, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reconciler_runs (trigger, state, side, start_time, gate_side_ran, tracker_side_ran) \
         VALUES (?, 'running', ?, ?, ?, ?) RETURNING id",
    )
    .bind(trigger.as_str())
    .bind(side.map(|s| s.as_str()))
    .bind(start.0)
    .bind(gate_side_ran)
    .bind(tracker_side_ran)
    .fetch_one(&mut *conn)
    .await?;
    get_run(conn, id)
        .await?
        .ok_or_else(|| StoreError::Malformed(format!("reconciler run {id} vanished")))
}

/// Writes a pass's end: state, counts, actions and errors.
pub async fn finish_run(conn: &mut SqliteConnection, run: &Run) -> Result<(), StoreError> {
    let (g, t) = (run.gate_side, run.tracker_side);
    sqlx::query(
        "UPDATE reconciler_runs SET state = ?, end_time = ?, gate_side_ran = ?, gate_scanned = ?, \
         gate_advanced = ?, gate_skipped = ?, gate_errors = ?, tracker_side_ran = ?, tracker_scanned = ?, \
         tracker_advanced = ?, tracker_replayed = ?, tracker_skipped = ?, tracker_errors = ?, \
         projects_polled = ?, actions = ?, error_details = ?, error = ? WHERE id = ?",
    )
    .bind(run.state.as_str())
    .bind(run.end_time.map(|t| t.0))
    .bind(run.gate_side_ran)
    .bind(g.scanned)
    .bind(g.advanced)
    .bind(g.skipped)
    .bind(g.errors)
    .bind(run.tracker_side_ran)
    .bind(t.scanned)
    .bind(t.advanced)
    .bind(t.replayed)
    .bind(t.skipped)
    .bind(t.errors)
    .bind(run.projects_polled)
    .bind(json_text(&run.actions)?)
    .bind(json_text(&run.error_details)?)
    .bind(&run.error)
    .bind(run.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks passes left RUNNING by a stopped process as FAILED; returns how
/// many.
pub async fn fail_interrupted(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE reconciler_runs SET state = 'failed', end_time = ?, \
         error = 'bosun stopped during the pass' WHERE state = 'running'",
    )
    .bind(UnixMicros::now().0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn get_run<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    id: i64,
) -> Result<Option<Run>, StoreError> {
    let payload: Option<String> =
        sqlx::query_scalar("SELECT payload FROM reconciler_runs_payload WHERE id = ?")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    payload
        .map(|p| decode_row("reconciler_run", &p))
        .transpose()
}

/// ListReconcilerRuns' filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunFilter {
    pub trigger: Option<RunTrigger>,
    pub state: Option<RunState>,
    pub with_actions_only: bool,
    pub with_errors_only: bool,
}

/// Passes newest first (by id) below `before`.
pub async fn list_runs<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    filter: &RunFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Run>, StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT p.payload FROM reconciler_runs r JOIN reconciler_runs_payload p ON p.id = r.id WHERE 1 = 1",
    );
    if let Some(trigger) = filter.trigger {
        query.push(" AND r.trigger = ").push_bind(trigger.as_str());
    }
    if let Some(state) = filter.state {
        query.push(" AND r.state = ").push_bind(state.as_str());
    }
    if filter.with_actions_only {
        query.push(" AND json_array_length(r.actions) > 0");
    }
    if filter.with_errors_only {
        query.push(" AND (r.gate_errors + r.tracker_errors > 0 OR r.state = 'failed')");
    }
    if let Some(before) = before {
        query.push(" AND r.id < ").push_bind(before);
    }
    query
        .push(" ORDER BY r.id DESC LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<String> = query.build_query_scalar().fetch_all(executor).await?;
    decode_rows("reconciler_run", &payloads)
}

/// The most recent pass that ended.
pub async fn last_finished<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
) -> Result<Option<Run>, StoreError> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT p.payload FROM reconciler_runs r JOIN reconciler_runs_payload p ON p.id = r.id \
         WHERE r.state <> 'running' ORDER BY r.id DESC LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    payload
        .map(|p| decode_row("reconciler_run", &p))
        .transpose()
}

type TotalsRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

pub async fn totals<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
) -> Result<Totals, StoreError> {
    let row: TotalsRow = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(state = 'failed'), 0), \
         COALESCE(SUM(gate_scanned), 0), COALESCE(SUM(gate_advanced), 0), COALESCE(SUM(gate_skipped), 0), \
         COALESCE(SUM(gate_errors), 0), COALESCE(SUM(tracker_scanned), 0), \
         COALESCE(SUM(tracker_advanced), 0), COALESCE(SUM(tracker_replayed), 0), \
         COALESCE(SUM(tracker_skipped), 0), COALESCE(SUM(tracker_errors), 0) FROM reconciler_runs",
    )
    .fetch_one(executor)
    .await?;
    Ok(Totals {
        passes: row.0,
        failed_passes: row.1,
        gate_side: SideCounts {
            scanned: row.2,
            advanced: row.3,
            replayed: 0,
            skipped: row.4,
            errors: row.5,
        },
        tracker_side: SideCounts {
            scanned: row.6,
            advanced: row.7,
            replayed: row.8,
            skipped: row.9,
            errors: row.10,
        },
    })
}

/// Actions of passes started since `since`, newest first, at most `limit`.
pub async fn actions_since<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    since: UnixMicros,
    limit: i64,
) -> Result<Vec<Action>, StoreError> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT a.value FROM reconciler_runs r, json_each(r.actions) a \
         WHERE r.start_time >= ? AND json_array_length(r.actions) > 0 \
         ORDER BY json_extract(a.value, '$.action_time') DESC, r.id DESC LIMIT ?",
    )
    .bind(since.0)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    decode_rows("reconciler_action", &payloads)
}
