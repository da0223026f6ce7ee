//! The commit-order trap, step by step: on a SEQUENCE a tailing reader
//! loses an event that commits behind a later one; on `change_log` the
//! later writer waits for the earlier one (the counter row), so readers see
//! seqs in commit order, and a rollback gives its seq back.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgPool};

use super::{migrated_database, pool};

pub async fn lesson_insert(tx: &mut sqlx::PgConnection, detail: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO lessons (create_time, lesson_type, source, detail) \
         VALUES (1, 'review', 'manual', $1) RETURNING id",
    )
    .bind(detail)
    .fetch_one(tx)
    .await
    .expect("insert a lesson")
}

async fn head(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT seq FROM change_log ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Waits until backend `pid` waits for a lock (deadline 10s).
async fn wait_until_blocked(observer: &PgPool, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Option<String> =
            sqlx::query_scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1")
                .bind(pid)
                .fetch_one(observer)
                .await
                .unwrap();
        if waiting.as_deref() == Some("Lock") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "backend {pid} never waited for the lock"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_later_writer_waits_so_no_reader_sees_seqs_out_of_commit_order() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let observer = pool(&url, 2).await;

    // The trap, on a SEQUENCE: A takes 1, B takes 2 and commits, a reader
    // moves past 2, then A commits 1 behind it: lost.
    sqlx::query("CREATE TABLE naive_log (seq bigserial PRIMARY KEY, what text)")
        .execute(&observer)
        .await
        .unwrap();
    let mut a = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut b = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx_a = a.begin().await.unwrap();
    sqlx::query("INSERT INTO naive_log (what) VALUES ('a')")
        .execute(&mut *tx_a)
        .await
        .unwrap();
    sqlx::query("INSERT INTO naive_log (what) VALUES ('b')")
        .execute(&mut b)
        .await
        .unwrap();
    let seen: Vec<i64> = sqlx::query_scalar("SELECT seq FROM naive_log WHERE seq > 0")
        .fetch_all(&observer)
        .await
        .unwrap();
    assert_eq!(seen, [2], "the reader sees 2 while 1 is uncommitted");
    tx_a.commit().await.unwrap();
    let after: Vec<i64> = sqlx::query_scalar("SELECT seq FROM naive_log WHERE seq > 2")
        .fetch_all(&observer)
        .await
        .unwrap();
    assert!(
        after.is_empty(),
        "a reader at 2 never sees 1: the trap is real"
    );

    // The same interleaving on change_log: B's append waits for A.
    let b_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut b)
        .await
        .unwrap();
    let mut tx_a = a.begin().await.unwrap();
    let first = lesson_insert(&mut tx_a, "a").await;
    let writer_b = tokio::spawn(async move {
        let id = lesson_insert(&mut b, "b").await;
        (b, id)
    });
    wait_until_blocked(&observer, b_pid).await;
    assert!(head(&observer).await.is_empty(), "nothing is committed yet");
    tx_a.commit().await.unwrap();
    let (mut b, second) = writer_b.await.unwrap();
    let log: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, entity_id FROM change_log ORDER BY seq")
            .fetch_all(&observer)
            .await
            .unwrap();
    assert_eq!(log, [(1, first.to_string()), (2, second.to_string())]);

    // A writer that rolls back gives its seq back: the waiting one takes it.
    let mut tx_a = a.begin().await.unwrap();
    let rolled_back = lesson_insert(&mut tx_a, "rolled back").await;
    let writer_b = tokio::spawn(async move { lesson_insert(&mut b, "b2").await });
    wait_until_blocked(&observer, b_pid).await;
    tx_a.rollback().await.unwrap();
    let third = writer_b.await.unwrap();
    let log: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, entity_id FROM change_log WHERE seq > 2 ORDER BY seq")
            .fetch_all(&observer)
            .await
            .unwrap();
    assert_eq!(log, [(3, third.to_string())], "{rolled_back} left no event");
}
