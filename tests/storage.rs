//! The single writer's group commit: many jobs share one transaction, yet
//! each one that fails or panics is undone alone, and the others commit.

use bosun::storage::{Db, StoreError};
use futures::FutureExt;
use sqlx::{Acquire, SqliteConnection};

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("refused on purpose")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn insert(conn: &mut SqliteConnection, value: i64) -> Result<(), JobError> {
    sqlx::query("INSERT INTO scratch (value) VALUES (?)")
        .bind(value)
        .execute(conn)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

#[tokio::test]
async fn failing_and_panicking_jobs_are_undone_alone_in_a_shared_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    db.write(|conn| {
        async move {
            sqlx::query("CREATE TABLE scratch (value INTEGER NOT NULL)")
                .execute(conn)
                .await
                .map_err(StoreError::from)?;
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
                        insert(conn, value).await?;
                        match value % 10 {
                            3 => Err(JobError::Refused),
                            7 => panic!("job {value} panics after writing"),
                            // A job may open its own nested transaction.
                            5 => {
                                let mut nested = conn.begin().await.map_err(StoreError::from)?;
                                insert(&mut nested, -value).await?;
                                nested.commit().await.map_err(StoreError::from)?;
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
            3 => assert!(
                matches!(outcome, Err(JobError::Refused)),
                "{value}: {outcome:?}"
            ),
            7 => assert!(
                matches!(outcome, Err(JobError::Store(StoreError::Panicked))),
                "{value}: {outcome:?}"
            ),
            _ => assert!(outcome.is_ok(), "{value}: {outcome:?}"),
        }
    }

    let mut stored: Vec<i64> = sqlx::query_scalar("SELECT value FROM scratch")
        .fetch_all(db.reader())
        .await
        .unwrap();
    stored.sort_unstable();
    let mut expected: Vec<i64> = (0..300)
        .filter(|value| !matches!(value % 10, 3 | 7))
        .chain((0..300).filter(|value| value % 10 == 5).map(|value| -value))
        .collect();
    expected.sort_unstable();
    assert_eq!(stored, expected);
    db.close().await;
}
