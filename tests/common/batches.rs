//! The single writer's group commit, on either engine: many jobs share one
//! transaction, yet each one that fails or panics is undone alone, and the
//! others commit (tests/storage.rs on SQLite, tests/postgres/writer.rs on
//! PostgreSQL, where a batch runs without savepoints until a job fails and
//! then runs again with one per job, but a transaction's first).

use bosun::storage::sql::{Conn, query};
use bosun::storage::{Db, StoreError};
use futures::FutureExt;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("refused on purpose")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn insert(conn: &mut Conn<'_>, value: i64) -> Result<(), JobError> {
    query("INSERT INTO scratch (value) VALUES ($1)")
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// Submits 300 jobs at once, so the writer takes many in one batch, each
/// failing, panicking, writing or nesting a savepoint by its value, and
/// checks that exactly the jobs that succeeded are stored. Closes `db`.
pub async fn failing_and_panicking_jobs_are_undone_alone(db: Db) {
    db.write(|conn| {
        async move {
            query("CREATE TABLE scratch (value BIGINT NOT NULL)")
                .execute(conn)
                .await?;
            Ok::<_, JobError>(())
        }
        .boxed()
    })
    .await
    .unwrap();

    // Submitted together, so the writer takes many of them in one batch.
    let jobs = (0..300i64).map(|value| {
        let db = db.clone();
        async move {
            let outcome = db
                .write(move |conn| {
                    async move {
                        match value % 10 {
                            // Before any statement: nothing to undo, and
                            // the job before it must stay.
                            1 => return Err(JobError::Refused),
                            9 => panic!("job {value} panics before writing"),
                            // Its first statement fails.
                            2 => {
                                query("INSERT INTO scratch (value) VALUES (NULL)")
                                    .execute(conn)
                                    .await?;
                            }
                            // Its first statement changes no row (the
                            // statement before it, in another job, did).
                            4 => {
                                let changed =
                                    query("UPDATE scratch SET value = value WHERE value = -1")
                                        .execute(conn)
                                        .await?;
                                assert_eq!(
                                    changed, 0,
                                    "job {value}: rows changed by its first statement"
                                );
                            }
                            _ => {}
                        }
                        insert(conn, value).await?;
                        match value % 10 {
                            3 => Err(JobError::Refused),
                            7 => panic!("job {value} panics after writing"),
                            // A job may open its own nested transaction.
                            5 => {
                                conn.begin_savepoint().await?;
                                insert(conn, -value).await?;
                                conn.end_savepoint(true).await?;
                                Ok(())
                            }
                            _ => Ok(()),
                        }
                    }
                    .boxed()
                })
                .await;
            (value, outcome)
        }
    });
    let outcomes = futures::future::join_all(jobs).await;
    for (value, outcome) in &outcomes {
        match value % 10 {
            1 | 3 => assert!(
                matches!(outcome, Err(JobError::Refused)),
                "{value}: {outcome:?}"
            ),
            2 => assert!(
                matches!(outcome, Err(JobError::Store(_))),
                "{value}: {outcome:?}"
            ),
            7 | 9 => assert!(
                matches!(outcome, Err(JobError::Store(StoreError::Panicked))),
                "{value}: {outcome:?}"
            ),
            _ => assert!(outcome.is_ok(), "{value}: {outcome:?}"),
        }
    }

    let mut stored: Vec<i64> = query("SELECT value FROM scratch")
        .fetch_all_scalars(&mut db.read().await.unwrap().conn())
        .await
        .unwrap();
    stored.sort_unstable();
    let mut expected: Vec<i64> = (0..300)
        .filter(|value| !matches!(value % 10, 1 | 2 | 3 | 7 | 9))
        .chain((0..300).filter(|value| value % 10 == 5).map(|value| -value))
        .collect();
    expected.sort_unstable();
    assert_eq!(stored, expected);
    db.close().await;
}
