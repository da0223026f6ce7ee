//! The processors' run and state SQL: the plans it asks SQLite for, and
//! how a pass ends its run.

use futures::FutureExt;

use super::super::{RunCounts, RunState};
use super::*;
use crate::storage::Db;

/// SQLite's plan for [`LATEST`] searches an index for each half and
/// scans no table (PostgreSQL's planner picks by table statistics, so
/// its plan on a small table says nothing).
#[tokio::test]
async fn the_schedulers_question_is_answered_from_indexes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path()).await?;
    let plan: Vec<(i64, i64, i64, String)> = query(&format!("EXPLAIN QUERY PLAN {LATEST}"))
        .bind("usage")
        .fetch_all(&mut db.read().await?.conn())
        .await?;
    let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
    assert!(
        steps
            .iter()
            .all(|step| !step.starts_with("SCAN processor_runs")),
        "{steps:?}"
    );
    for index in ["processor_runs_by_start", "processor_runs_running"] {
        assert!(
            steps.iter().any(|step| step.contains(index)),
            "{index}: {steps:?}"
        );
    }
    db.close().await;
    Ok(())
}

/// A pass ends its run only while the row is RUNNING: when another
/// replica, holding the lease this one lost, ended it FAILED first,
/// that outcome stands and the pass is told what it was.
#[tokio::test]
async fn a_pass_ends_its_run_only_while_it_is_still_running() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path()).await?;
    let run = |id: i64| ProcessorRun {
        id,
        processor: "usage".into(),
        trigger: RunTrigger::Manual,
        state: RunState::Succeeded,
        start_time: UnixMicros(1),
        end_time: Some(UnixMicros(2)),
        counts: RunCounts {
            scanned: 7,
            ..RunCounts::default()
        },
        error_details: Vec::new(),
        capped: false,
        error: None,
        replica: Some("a".into()),
    };
    let (kept, taken_over) = db
        .write(move |conn| {
            async move {
                let first =
                    insert_run(conn, "usage", RunTrigger::Manual, UnixMicros(1), "a").await?;
                let kept = finish_run(conn, &run(first)).await?;
                let second =
                    insert_run(conn, "usage", RunTrigger::Manual, UnixMicros(1), "a").await?;
                // Replica b took the lease over and ends what a left.
                assert_eq!(
                    fail_interrupted_runs(conn, "usage", UnixMicros(3)).await?,
                    1
                );
                let taken_over = finish_run(conn, &run(second)).await?;
                Ok::<_, StoreError>((kept, taken_over))
            }
            .boxed()
        })
        .await?;
    assert!(kept.is_none(), "a RUNNING row takes the pass's outcome");
    let stored = taken_over.expect("the row another replica ended stays as it ended it");
    assert_eq!(stored.state, RunState::Failed);
    assert_eq!(stored.counts.scanned, 0);
    assert_eq!(
        stored.error.as_deref(),
        Some(
            "interrupted: the bosun running the pass stopped, or lost its lease, before the pass ended"
        )
    );
    let ended = last_ended_run(&mut db.read().await?.conn(), "usage").await?;
    assert_eq!(ended.map(|run| run.state), Some(RunState::Failed));
    db.close().await;
    Ok(())
}
