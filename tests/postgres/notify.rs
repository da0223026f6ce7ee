//! LISTEN/NOTIFY wake-ups: a head signal on one replica follows commits
//! made through another within the deadline, long before its fallback
//! re-read; rolled-back writes do not move it; a killed listener connection
//! reconnects and re-reads (notifications sent meanwhile are lost, the
//! head is not); with no notification at all, the fallback re-read finds it.

use std::time::Duration;

use bosun::storage::postgres::{CHANNEL, HeadSignal};
use tokio::sync::watch;

use super::{migrated_database, pool};

/// Far longer than the deadline: a wake-up within it came from NOTIFY.
const NO_FALLBACK: Duration = Duration::from_secs(600);
const DEADLINE: Duration = Duration::from_secs(5);

async fn insert_lesson(pool: &sqlx::PgPool) {
    sqlx::query(
        "INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, 'review', 'manual')",
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn reaches(head: &mut watch::Receiver<i64>, seq: i64) {
    let reached = tokio::time::timeout(DEADLINE, head.wait_for(|h| *h >= seq))
        .await
        .map(|result| result.map(|h| *h));
    assert!(
        matches!(reached, Ok(Ok(_))),
        "the head never reached {seq}: {}",
        *head.borrow()
    );
}

#[tokio::test]
async fn a_commit_on_one_replica_wakes_the_head_signal_of_another() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let (replica_a, replica_b) = (pool(&url, 2).await, pool(&url, 2).await);
    insert_lesson(&replica_b).await;
    let signal = HeadSignal::start(replica_a.clone(), watch::channel(0).0, NO_FALLBACK)
        .await
        .unwrap();
    let mut head = signal.head();
    assert_eq!(*head.borrow_and_update(), 1, "starts at the committed head");

    insert_lesson(&replica_b).await;
    reaches(&mut head, 2).await;

    let mut tx = replica_b.begin().await.unwrap();
    sqlx::query("INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, 'x', 'manual')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = replica_b.begin().await.unwrap();
    for _ in 0..3 {
        sqlx::query(
            "INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, 'y', 'manual')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    reaches(&mut head, 5).await;
    assert_eq!(*head.borrow(), 5, "the rolled-back insert took no seq");
}

#[tokio::test]
async fn a_killed_listener_connection_reconnects_and_re_reads_the_head() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let (replica_a, replica_b) = (pool(&url, 2).await, pool(&url, 2).await);
    let signal = HeadSignal::start(replica_a, watch::channel(0).0, NO_FALLBACK)
        .await
        .unwrap();
    let mut head = signal.head();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query = $1",
    )
    .bind(format!("LISTEN \"{CHANNEL}\""))
    .fetch_all(&replica_b)
    .await
    .unwrap();
    assert_eq!(
        killed,
        [true],
        "the listener's connection was found and killed"
    );
    insert_lesson(&replica_b).await;
    reaches(&mut head, 1).await;
    insert_lesson(&replica_b).await;
    reaches(&mut head, 2).await;
}

#[tokio::test]
async fn without_any_notification_the_fallback_re_read_finds_the_head() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let (replica_a, replica_b) = (pool(&url, 2).await, pool(&url, 2).await);
    let signal = HeadSignal::start(replica_a, watch::channel(0).0, Duration::from_millis(100))
        .await
        .unwrap();
    let mut head = signal.head();
    // Moves the committed head the way no write path does: no NOTIFY.
    sqlx::query("UPDATE change_log_head SET seq = 7")
        .execute(&replica_b)
        .await
        .unwrap();
    reaches(&mut head, 7).await;
}

/// One notification per commit, with its last seq: a listener that saw
/// one per row could publish a head inside the transaction, and a Watch
/// stream would then bookmark the middle of it.
#[tokio::test]
async fn each_commit_notifies_once_with_its_last_seq_once_committed() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let writer = pool(&url, 2).await;
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();

    let mut tx = writer.begin().await.unwrap();
    for _ in 0..3 {
        sqlx::query(
            "INSERT INTO lessons (create_time, lesson_type, source) VALUES (1, 'z', 'manual')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE lessons SET related_task = 'x' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(200), listener.recv()).await;
    assert!(early.is_err(), "notified before COMMIT: {early:?}");
    tx.commit().await.unwrap();
    // A second commit, of one row: notifications arrive in commit order, so
    // anything more the first commit sent comes before this one's.
    insert_lesson(&writer).await;

    let mut payloads = Vec::new();
    while payloads.last().map(String::as_str) != Some("5") {
        let notification = tokio::time::timeout(DEADLINE, listener.recv())
            .await
            .expect("notified after COMMIT")
            .unwrap();
        payloads.push(notification.payload().to_owned());
    }
    assert_eq!(
        payloads,
        ["4", "5"],
        "each commit's last seq, once, in order"
    );
}
