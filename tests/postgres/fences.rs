//! Fences: a write of a background pass lands only while its replica still
//! holds the pass's lease. A replica whose lease connection ended does not
//! know it at once, and another replica may take the job meanwhile; the old
//! holder's writes must then fail and change nothing, and the new holder
//! must not start before a write the old one had begun has ended.

use std::sync::{Arc, Mutex};

use bosun::storage::postgres::DatabaseUrl;
use bosun::storage::sql::{Conn, query};
use bosun::storage::{Db, Fence, StorageSettings, StoreError};
use futures::FutureExt;
use tokio::sync::oneshot;

use super::leases::{JOB, end_the_holder, leases, wait_until_free};
use super::{migrated_database, pool};

async fn open(url: &str) -> Db {
    let url: DatabaseUrl = url.parse().expect("a database URL");
    Db::open_postgres(&url, StorageSettings::default())
        .await
        .expect("open bosun's storage on the test database")
}

async fn insert_lesson(conn: &mut Conn<'_>) -> Result<u64, StoreError> {
    query("INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, 'review', 'manual')")
        .execute(conn)
        .await
}

/// A lesson written behind `fence`.
async fn fenced_write(db: &Db, fence: &Fence) -> Result<u64, StoreError> {
    let fence = fence.clone();
    db.write(move |conn| {
        async move {
            fence.check(conn).await?;
            insert_lesson(conn).await
        }
        .boxed()
    })
    .await
}

async fn lessons(admin: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lessons")
        .fetch_one(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_old_holders_writes_fail_and_change_nothing_once_another_replica_took_the_job() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let (db, admin) = (open(&url).await, pool(&url, 2).await);
    let (replica_a, replica_b) = (leases(&url, "a"), leases(&url, "b"));

    // A lease taken without a fence writes nothing.
    let plain = replica_a
        .try_take("unfenced_job")
        .await
        .unwrap()
        .expect("free");
    plain.release().await;
    let fences: i64 = sqlx::query_scalar("SELECT count(*) FROM lease_fences")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(fences, 0);

    let lease_a = replica_a.try_take_fenced(JOB).await.unwrap().expect("free");
    fenced_write(&db, &lease_a.fence())
        .await
        .expect("the holder writes");
    end_the_holder(&admin).await;
    wait_until_free(&admin).await;
    let lease_b = replica_b
        .try_take_fenced(JOB)
        .await
        .unwrap()
        .expect("b takes the job over");

    // a has not noticed yet (its keeper asks every second); its fence has.
    let refused = fenced_write(&db, &lease_a.fence()).await;
    assert!(
        matches!(&refused, Err(StoreError::LeaseLost(job)) if job == JOB),
        "{refused:?}"
    );
    assert_eq!(
        lessons(&admin).await,
        1,
        "the refused write changed nothing"
    );
    fenced_write(&db, &lease_b.fence())
        .await
        .expect("the new holder writes");
    assert_eq!(lessons(&admin).await, 2);
    let fence_b = lease_b.fence();
    lease_b.release().await;

    // Taken again, by a this time: b's fence is the old one now.
    let lease_a = replica_a
        .try_take_fenced(JOB)
        .await
        .unwrap()
        .expect("free again");
    assert!(matches!(
        fenced_write(&db, &fence_b).await,
        Err(StoreError::LeaseLost(_))
    ));
    fenced_write(&db, &lease_a.fence()).await.unwrap();
    assert_eq!(lessons(&admin).await, 3);
}

#[tokio::test]
async fn the_new_holder_waits_for_a_write_the_old_holder_had_begun() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let (db, admin) = (open(&url).await, pool(&url, 2).await);
    let (replica_a, replica_b) = (leases(&url, "a"), leases(&url, "b"));
    let lease_a = replica_a.try_take_fenced(JOB).await.unwrap().expect("free");

    // a's write checks its fence, then waits in its transaction.
    let (checked_tx, checked_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let fence = lease_a.fence();
    // A write job must be cloneable (the writer may run it again).
    let (checked_tx, go_rx) = (
        Arc::new(Mutex::new(Some(checked_tx))),
        Arc::new(Mutex::new(Some(go_rx))),
    );
    let writing = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |conn| {
                async move {
                    fence.check(conn).await?;
                    if let Some(checked_tx) = checked_tx.lock().unwrap().take() {
                        let _ = checked_tx.send(());
                    }
                    let go_rx = go_rx.lock().unwrap().take();
                    if let Some(go_rx) = go_rx {
                        let _ = go_rx.await;
                    }
                    insert_lesson(conn).await
                }
                .boxed()
            })
            .await
        }
    });
    checked_rx.await.expect("the write checked its fence");

    end_the_holder(&admin).await;
    wait_until_free(&admin).await;
    let taking = tokio::spawn(async move { replica_b.try_take_fenced(JOB).await });
    // b has the lock and counts the generation up: that waits on a's row lock.
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'INSERT INTO lease_fences%')",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            !taking.is_finished(),
            "b took the job while a's write was open"
        );
        tokio::task::yield_now().await;
    }
    assert!(!taking.is_finished());

    go_tx.send(()).unwrap();
    writing
        .await
        .unwrap()
        .expect("a's write, fenced before b took the job, commits");
    let lease_b = taking
        .await
        .unwrap()
        .unwrap()
        .expect("then b takes the job");
    assert_eq!(lessons(&admin).await, 1);
    assert!(matches!(
        fenced_write(&db, &lease_a.fence()).await,
        Err(StoreError::LeaseLost(_))
    ));
    fenced_write(&db, &lease_b.fence()).await.unwrap();
    assert_eq!(lessons(&admin).await, 2);
}
