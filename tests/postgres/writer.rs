//! The writer's transaction on PostgreSQL: a batch begins with the counter
//! lock in one message and, when no rows are wanted, reads its head and
//! commits in another; its jobs run without savepoints until one fails,
//! then again each in one (but a transaction's first). Jobs that fail or
//! panic are undone alone, the first ones with their whole transaction. Whatever fails in those messages, or at COMMIT itself,
//! fails the batch: no caller hears "done" for a change that was not
//! committed, and the writer goes on with the next batch. The read of what
//! a batch appended goes through the primary key even on a change log
//! PostgreSQL has not analyzed yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bosun::storage::feed::appended_postgres;
use bosun::storage::postgres::DatabaseUrl;
use bosun::storage::sql::{Conn, query};
use bosun::storage::{Db, StorageSettings, StoreError};
use futures::FutureExt;

use super::{batches, migrated_database, pool};

async fn open(url: &str) -> Db {
    let url: DatabaseUrl = url.parse().expect("a database URL");
    Db::open_postgres(&url, StorageSettings::default())
        .await
        .expect("open bosun's storage on the test database")
}

async fn insert_lesson(conn: &mut Conn<'_>, lesson_type: &str) -> Result<u64, StoreError> {
    query("INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, $1, 'manual')")
        .bind(lesson_type)
        .execute(conn)
        .await
}

async fn counts(url: &str) -> (i64, i64) {
    let pool = pool(url, 1).await;
    let counts = sqlx::query_as(
        "SELECT (SELECT count(*) FROM lessons), (SELECT COALESCE(max(seq), 0) FROM change_log)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    counts
}

/// A job that swallowed a statement's error leaves the transaction
/// aborted: the head read before COMMIT fails, COMMIT is not sent, the
/// caller gets the error, and the next write commits.
#[tokio::test]
async fn a_batch_whose_job_swallowed_an_error_is_refused_and_the_next_commits() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let db = open(&url).await;
    let swallowed: Result<(), StoreError> = db
        .write(|conn| {
            async move {
                insert_lesson(conn, "review").await?;
                let _ = query("SELECT 1 / 0").execute(conn).await;
                Ok(())
            }
            .boxed()
        })
        .await;
    assert!(swallowed.is_err(), "{swallowed:?}");
    assert_eq!(counts(&url).await, (0, 0), "nothing committed");

    let next: Result<u64, StoreError> =
        db.write(|conn| insert_lesson(conn, "review").boxed()).await;
    assert_eq!(next.unwrap(), 1);
    assert_eq!(counts(&url).await, (1, 1));
    assert_eq!(*db.head().borrow(), 1, "the head the commit read");
    db.close().await;
}

/// An error raised at COMMIT itself (here a deferred constraint trigger
/// of the test's own) reaches the caller: the head read and COMMIT go in
/// one message, and its answer is read to the end.
#[tokio::test]
async fn an_error_at_commit_reaches_the_caller_and_changes_nothing() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let setup = pool(&url, 1).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON lessons \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
         WHEN (NEW.lesson_type = 'refused_at_commit') EXECUTE FUNCTION refuse_at_commit();",
    )
    .execute(&setup)
    .await
    .unwrap();
    setup.close().await;

    let db = open(&url).await;
    // Without, then with, a stream following the head: with one, the batch
    // reads its rows (not only its head) in the message with COMMIT.
    for (committed, following) in [(0, false), (1, true)] {
        let subscription = following.then(|| db.feed().subscribe());
        let refused: Result<u64, StoreError> = db
            .write(|conn| insert_lesson(conn, "refused_at_commit").boxed())
            .await;
        let err = refused.expect_err("COMMIT failed, so the write must not succeed");
        assert!(format!("{err:?}").contains("refused at commit"), "{err:?}");
        assert_eq!(
            counts(&url).await,
            (committed, committed),
            "nothing committed (following: {following})"
        );

        let next: Result<u64, StoreError> =
            db.write(|conn| insert_lesson(conn, "review").boxed()).await;
        assert_eq!(next.unwrap(), 1);
        assert_eq!(counts(&url).await, (committed + 1, committed + 1));
        assert_eq!(*db.head().borrow(), committed + 1);
        drop(subscription);
    }
    db.close().await;
}

/// The shared-batch test of tests/storage.rs on PostgreSQL, where a
/// batch takes at most 48 jobs and each transaction's first job has no
/// savepoint (it fails with its transaction).
#[tokio::test]
async fn failing_and_panicking_jobs_are_undone_alone_in_a_shared_batch() {
    let Some(url) = migrated_database().await else {
        return;
    };
    batches::failing_and_panicking_jobs_are_undone_alone(open(&url).await).await;
}

/// A transaction's first job fails and the jobs queued behind it commit in
/// the transaction begun after it; a batch of one failing job commits
/// nothing and leaves the writer ready.
#[tokio::test]
async fn a_first_job_that_fails_takes_only_its_own_transaction_with_it() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let db = open(&url).await;
    let alone: Result<u64, StoreError> = db
        .write(|conn| {
            async move {
                insert_lesson(conn, "review").await?;
                Err(StoreError::Malformed("refused after writing".into()))
            }
            .boxed()
        })
        .await;
    assert!(alone.is_err());
    assert_eq!(counts(&url).await, (0, 0));

    // Queued together, first the one that fails after writing: the writer
    // usually takes them in one batch (if not, the same must hold).
    let failing = db.write(|conn| {
        async move {
            insert_lesson(conn, "review").await?;
            Err::<u64, _>(StoreError::Malformed("refused after writing".into()))
        }
        .boxed()
    });
    let others = (0..5).map(|_| db.write(|conn| insert_lesson(conn, "review").boxed()));
    let (failing, others) = tokio::join!(failing, futures::future::join_all(others));
    assert!(failing.is_err());
    for other in others {
        assert_eq!(other.unwrap(), 1);
    }
    assert_eq!(counts(&url).await, (5, 5), "the five after it, and no more");
    db.close().await;
}

/// Ten jobs queued together, the sixth failing after it wrote; `runs`
/// counts how often each job ran. Returns each job's outcome.
async fn mixed_batch(db: &Db, runs: &Arc<[AtomicUsize; 10]>) -> Vec<Result<u64, StoreError>> {
    let jobs = (0..10).map(|n| {
        let runs = runs.clone();
        db.write(move |conn| {
            async move {
                runs[n].fetch_add(1, Ordering::Relaxed);
                insert_lesson(conn, "review").await?;
                if n == 5 {
                    return Err(StoreError::Malformed("refused after writing".into()));
                }
                Ok(1)
            }
            .boxed()
        })
    });
    // Polled together on this (current-thread) runtime, all ten are queued
    // before the writer's task runs: it takes them in one batch.
    futures::future::join_all(jobs).await
}

/// A batch runs its jobs without savepoints (a round trip each on
/// PostgreSQL) until one fails: then the transaction is rolled back and the
/// whole batch runs again, each job in a savepoint, so the jobs before the
/// failing one run twice and commit once. After a batch where a job failed
/// the next one uses savepoints from the start; after a clean one, none.
#[tokio::test]
async fn a_job_failing_in_a_batch_without_savepoints_has_the_batch_run_again_with_them() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let db = open(&url).await;
    let expect = |outcomes: Vec<Result<u64, StoreError>>| {
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match n {
                5 => assert!(
                    matches!(outcome, Err(StoreError::Malformed(_))),
                    "{outcome:?}"
                ),
                _ => assert_eq!(outcome.unwrap(), 1, "job {n}"),
            }
        }
    };
    let runs_of = |runs: &Arc<[AtomicUsize; 10]>| -> Vec<usize> {
        runs.iter()
            .map(|runs| runs.load(Ordering::Relaxed))
            .collect()
    };

    // Without savepoints: the failure undoes jobs 0-4 too, which run again.
    let runs = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    expect(mixed_batch(&db, &runs).await);
    assert_eq!(runs_of(&runs), [2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
    assert_eq!(
        counts(&url).await,
        (9, 9),
        "nine lessons, nine events, no gap"
    );

    // Right after: savepoints from the start, so every job runs once.
    let runs = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    expect(mixed_batch(&db, &runs).await);
    assert_eq!(runs_of(&runs), [1; 10]);
    assert_eq!(counts(&url).await, (18, 18));

    // A clean batch, then the writer is optimistic again.
    let clean = (0..3).map(|_| db.write(|conn| insert_lesson(conn, "review").boxed()));
    for outcome in futures::future::join_all(clean).await {
        assert_eq!(outcome.unwrap(), 1);
    }
    let runs = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    expect(mixed_batch(&db, &runs).await);
    assert_eq!(runs_of(&runs), [2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
    assert_eq!(counts(&url).await, (30, 30));
    assert_eq!(*db.head().borrow(), 30);
    db.close().await;
}

/// The writer's read of what its batch appended goes through change_log's
/// primary key on a table PostgreSQL never analyzed (a bulk of events
/// written before autovacuum came by): with `seq > head` alone the planner
/// guessed a third of the table and scanned all of it at every commit.
#[tokio::test]
async fn the_read_of_a_batchs_appends_uses_the_primary_key_before_any_analyze() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let pool = pool(&url, 1).await;
    let mut conn = pool.acquire().await.unwrap();
    // Events the size of a lesson's, 50,000 of them, never analyzed.
    let append = |events: u32| {
        format!(
            "INSERT INTO change_log (event_type, entity_kind, entity_id, payload) \
             SELECT 'lesson.created', 'lesson', g::text, \
             jsonb_build_object('root_cause', repeat('x', 600)) \
             FROM generate_series(1, {events}) g"
        )
    };
    run_sql(
        &mut conn,
        "ALTER TABLE change_log SET (autovacuum_enabled = false)",
    )
    .await;
    run_sql(&mut conn, &format!("BEGIN; {}; COMMIT", append(50_000))).await;
    let analyzed: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'change_log'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(analyzed < 0.0, "change_log was analyzed ({analyzed} rows)");
    let head: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(&mut *conn)
        .await
        .unwrap();

    // A batch of five, read back as the writer reads it before COMMIT.
    run_sql(&mut conn, &format!("BEGIN; {}", append(5))).await;
    let read = appended_postgres(head);
    let seqs: Vec<i64> = sqlx::query_scalar(&format!("SELECT seq FROM ({read}) AS appended"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {read}"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    run_sql(&mut conn, "COMMIT").await;
    assert_eq!(seqs, (head + 1..=head + 5).collect::<Vec<_>>());
    let plan = plan.join("\n");
    assert!(
        plan.contains("change_log_pkey") && !plan.contains("Seq Scan"),
        "the read scans change_log:\n{plan}"
    );
}

/// Runs `sql` (one or more statements, no parameters) on `conn`.
async fn run_sql(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap();
}
