//! The single writer on SQLite: group commit, where many jobs share one
//! transaction, yet each one that fails or panics is undone alone, and the
//! others commit (tests/common/batches.rs, also run on PostgreSQL). A
//! job's savepoint rides in front of its first statement, so those jobs
//! also fail before any statement, at their first statement, and count the
//! rows their first statement changed. And the WAL's checkpoints.

#[path = "common/batches.rs"]
mod batches;

use batches::JobError;
use bosun::storage::Db;
use bosun::storage::sql::query;
use futures::FutureExt;

#[tokio::test]
async fn failing_and_panicking_jobs_are_undone_alone_in_a_shared_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    batches::failing_and_panicking_jobs_are_undone_alone(db).await;
}

/// The writer never checkpoints the WAL itself (a checkpoint inside a
/// commit held up that write and every event it carried); the checkpointer
/// beside it does, soon after commits: the database file grows as the WAL's
/// pages are copied into it, with no other connection open.
#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    let file = dir.path().join(bosun::storage::DB_FILE);
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    let mut checkpoints = db.checkpoints().expect("SQLite checkpoints its WAL");
    let seen = *checkpoints.borrow_and_update();
    db.write(|conn| {
        async move {
            query("CREATE TABLE scratch (value TEXT NOT NULL)")
                .execute(&mut *conn)
                .await?;
            for n in 0..2_000 {
                query("INSERT INTO scratch (value) VALUES ($1)")
                    .bind(format!("{n:01000}"))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok::<_, JobError>(())
        }
        .boxed()
    })
    .await
    .unwrap();
    // Two megabytes went into the WAL; the checkpoint after that commit
    // copies them into the database file.
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        checkpoints.wait_for(|done| *done > seen),
    )
    .await
    .expect("a checkpoint after the commit")
    .expect("the checkpointer runs");
    assert!(
        size() >= before + 1_000_000,
        "not checkpointed: {} bytes, {before} before",
        size()
    );
    db.close().await;
}
