//! SQL of reconciler passes, read through `reconciler_runs_payload`.

use super::{Action, Run, RunState, RunTrigger, Side, SideCounts, Totals};
use crate::storage::sql::{Builder, Conn, Engine, JsonOwned, JsonText, query, query_per_engine};
use crate::storage::{StoreError, decode_row, json_text};
use crate::time::UnixMicros;

/// Most actions or errors a pass keeps (the counts stay exact).
pub const MAX_LISTED: usize = 100;

/// Decodes payloads (jsonb on PostgreSQL, text on SQLite).
fn decode_payloads<T: serde::de::DeserializeOwned>(
    kind: &str,
    payloads: &[JsonText],
) -> Result<Vec<T>, StoreError> {
    payloads.iter().map(|p| decode_row(kind, &p.0)).collect()
}

/// Inserts a RUNNING pass run by `replica`.
pub async fn insert_run(
    conn: &mut Conn<'_>,
    trigger: RunTrigger,
    side: Option<Side>,
    gate_side_ran: bool,
    tracker_side_ran: bool,
    start: UnixMicros,
    replica: &str,
) -> Result<Run, StoreError> {
    let id: i64 = query(
        "INSERT INTO reconciler_runs \
         (trigger, state, side, start_time, gate_side_ran, tracker_side_ran, replica) \
         VALUES ($1, 'running', $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(trigger.as_str())
    .bind(side.map(|s| s.as_str()))
    .bind(start.0)
    .bind(gate_side_ran)
    .bind(tracker_side_ran)
    .bind(replica)
    .fetch_scalar(&mut *conn)
    .await?;
    get_run(conn, id)
        .await?
        .ok_or_else(|| StoreError::Malformed(format!("reconciler run {id} vanished")))
}

/// Writes a pass's end: state, counts, actions and errors, if its row is
/// still RUNNING; if another replica already ended it (this one lost the
/// lease, see `storage::lease`), leaves it and returns the row as stored.
pub async fn finish_run(conn: &mut Conn<'_>, run: &Run) -> Result<Option<Run>, StoreError> {
    let (g, t) = (run.gate_side, run.tracker_side);
    let ended = query(
        "UPDATE reconciler_runs SET state = $1, end_time = $2, gate_side_ran = $3, gate_scanned = $4, \
         gate_advanced = $5, gate_skipped = $6, gate_errors = $7, tracker_side_ran = $8, \
         tracker_scanned = $9, tracker_advanced = $10, tracker_replayed = $11, tracker_skipped = $12, \
         tracker_errors = $13, projects_polled = $14, actions = $15, error_details = $16, error = $17 \
         WHERE id = $18 AND state = 'running'",
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
    .bind(JsonOwned(json_text(&run.actions)?))
    .bind(JsonOwned(json_text(&run.error_details)?))
    .bind(&run.error)
    .bind(run.id)
    .execute(&mut *conn)
    .await?;
    if ended == 1 {
        return Ok(None);
    }
    let id = run.id;
    get_run(conn, id)
        .await?
        .map(Some)
        .ok_or_else(|| StoreError::Malformed(format!("reconciler run {id} vanished")))
}

/// Marks passes left RUNNING by a replica that stopped during them, or lost
/// the lease, as FAILED; returns how many.
pub async fn fail_interrupted(conn: &mut Conn<'_>) -> Result<u64, StoreError> {
    query(
        "UPDATE reconciler_runs SET state = 'failed', end_time = $1, \
         error = 'the bosun running the pass stopped, or lost its lease, before the pass ended' WHERE state = 'running'",
    )
    .bind(UnixMicros::now().0)
    .execute(conn)
    .await
}

/// The latest passes, whoever ran them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latest {
    /// When the newest pass started, whatever its state.
    pub start_time: Option<UnixMicros>,
    /// The newest pass still recorded RUNNING.
    pub running: Option<i64>,
}

/// The latest passes: what the loop reads before a pass.
pub async fn latest(conn: &mut Conn<'_>) -> Result<Latest, StoreError> {
    let (start_time, running): (Option<i64>, Option<i64>) = query(
        "SELECT (SELECT MAX(start_time) FROM reconciler_runs), \
         (SELECT MAX(id) FROM reconciler_runs WHERE state = 'running')",
    )
    .fetch_one(conn)
    .await?;
    Ok(Latest {
        start_time: start_time.map(UnixMicros),
        running,
    })
}

pub async fn get_run(conn: &mut Conn<'_>, id: i64) -> Result<Option<Run>, StoreError> {
    let payload: Option<JsonText> =
        query("SELECT payload FROM reconciler_runs_payload WHERE id = $1")
            .bind(id)
            .fetch_optional_scalar(conn)
            .await?;
    payload
        .map(|p| decode_row("reconciler_run", &p.0))
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
pub async fn list_runs(
    conn: &mut Conn<'_>,
    filter: &RunFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Run>, StoreError> {
    let mut query = Builder::new(
        "SELECT p.payload FROM reconciler_runs r JOIN reconciler_runs_payload p ON p.id = r.id WHERE 1 = 1",
    );
    if let Some(trigger) = filter.trigger {
        query.push(" AND r.trigger = ").push_bind(trigger.as_str());
    }
    if let Some(state) = filter.state {
        query.push(" AND r.state = ").push_bind(state.as_str());
    }
    if filter.with_actions_only {
        // Per engine: actions is JSON text on SQLite, jsonb on PostgreSQL,
        // and each engine names its array length function differently.
        query.push(match conn.engine() {
            Engine::Sqlite => " AND json_array_length(r.actions) > 0",
            Engine::Postgres => " AND jsonb_array_length(r.actions) > 0",
        });
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
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    decode_payloads("reconciler_run", &payloads)
}

/// The most recent pass that ended.
pub async fn last_finished(conn: &mut Conn<'_>) -> Result<Option<Run>, StoreError> {
    let payload: Option<JsonText> = query(
        "SELECT p.payload FROM reconciler_runs r JOIN reconciler_runs_payload p ON p.id = r.id \
         WHERE r.state <> 'running' ORDER BY r.id DESC LIMIT 1",
    )
    .fetch_optional_scalar(conn)
    .await?;
    payload
        .map(|p| decode_row("reconciler_run", &p.0))
        .transpose()
}

type TotalsRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

pub async fn totals(conn: &mut Conn<'_>) -> Result<Totals, StoreError> {
    // SUM of bigint is numeric on PostgreSQL: cast back (both engines take
    // the cast). Failed passes are counted, not summed from a comparison,
    // since PostgreSQL cannot sum a boolean.
    let row: TotalsRow = query(
        "SELECT COUNT(*), COUNT(CASE WHEN state = 'failed' THEN 1 END), \
         COALESCE(CAST(SUM(gate_scanned) AS BIGINT), 0), \
         COALESCE(CAST(SUM(gate_advanced) AS BIGINT), 0), \
         COALESCE(CAST(SUM(gate_skipped) AS BIGINT), 0), \
         COALESCE(CAST(SUM(gate_errors) AS BIGINT), 0), \
         COALESCE(CAST(SUM(tracker_scanned) AS BIGINT), 0), \
         COALESCE(CAST(SUM(tracker_advanced) AS BIGINT), 0), \
         COALESCE(CAST(SUM(tracker_replayed) AS BIGINT), 0), \
         COALESCE(CAST(SUM(tracker_skipped) AS BIGINT), 0), \
         COALESCE(CAST(SUM(tracker_errors) AS BIGINT), 0) FROM reconciler_runs",
    )
    .fetch_one(conn)
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

/// Per engine: SQLite walks a JSON array with the table function
/// `json_each` and reads a member with `json_extract`; PostgreSQL walks
/// jsonb with `jsonb_array_elements` and reads a member as text (`->>`),
/// cast back to a number for the order.
const ACTIONS_SINCE_SQLITE: &str = "SELECT a.value FROM reconciler_runs r, json_each(r.actions) a \
     WHERE r.start_time >= $1 AND json_array_length(r.actions) > 0 \
     ORDER BY json_extract(a.value, '$.action_time') DESC, r.id DESC LIMIT $2";
const ACTIONS_SINCE_POSTGRES: &str = "SELECT a.value FROM reconciler_runs r, \
     jsonb_array_elements(r.actions) AS a(value) \
     WHERE r.start_time >= $1 AND jsonb_array_length(r.actions) > 0 \
     ORDER BY CAST(a.value ->> 'action_time' AS BIGINT) DESC, r.id DESC LIMIT $2";

/// Actions of passes started since `since`, newest first, at most `limit`.
pub async fn actions_since(
    conn: &mut Conn<'_>,
    since: UnixMicros,
    limit: i64,
) -> Result<Vec<Action>, StoreError> {
    let payloads: Vec<JsonText> = query_per_engine(ACTIONS_SINCE_SQLITE, ACTIONS_SINCE_POSTGRES)
        .bind(since.0)
        .bind(limit)
        .fetch_all_scalars(conn)
        .await?;
    decode_payloads("reconciler_action", &payloads)
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::storage::Db;

    /// A pass ends its run only while the row is RUNNING: when another
    /// replica, holding the lease this one lost, ended it FAILED first,
    /// that outcome stands and the pass is told what it was.
    #[tokio::test]
    async fn a_pass_ends_its_run_only_while_it_is_still_running() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path()).await?;
        let (kept, taken_over) = db
            .write(|conn| {
                async move {
                    let start = UnixMicros(1);
                    let mut first =
                        insert_run(conn, RunTrigger::Manual, None, true, false, start, "a").await?;
                    first.state = RunState::Succeeded;
                    first.end_time = Some(UnixMicros(2));
                    let kept = finish_run(conn, &first).await?;
                    let mut second =
                        insert_run(conn, RunTrigger::Manual, None, true, false, start, "a").await?;
                    // Replica b took the lease over and ends what a left.
                    assert_eq!(fail_interrupted(conn).await?, 1);
                    second.state = RunState::Succeeded;
                    second.end_time = Some(UnixMicros(2));
                    second.gate_side.scanned = 7;
                    let taken_over = finish_run(conn, &second).await?;
                    Ok::<_, StoreError>((kept, taken_over))
                }
                .boxed()
            })
            .await?;
        assert!(kept.is_none(), "a RUNNING row takes the pass's outcome");
        let stored = taken_over.expect("the row another replica ended stays as it ended it");
        assert_eq!(stored.state, RunState::Failed);
        assert_eq!(stored.gate_side.scanned, 0);
        assert_eq!(
            stored.error.as_deref(),
            Some("the bosun running the pass stopped, or lost its lease, before the pass ended")
        );
        let stored_again = get_run(&mut db.read().await?.conn(), stored.id).await?;
        assert_eq!(stored_again.map(|run| run.state), Some(RunState::Failed));
        db.close().await;
        Ok(())
    }
}
