//! The single writer on SQLite: group commit, where many jobs share one
//! transaction, yet each one that fails or panics is undone alone, and the
//! others commit (tests/common/batches.rs, also run on PostgreSQL). A
//! job's savepoint rides in front of its first statement, so those jobs
//! also fail before any statement, at their first statement, and count the
//! rows their first statement changed. And the WAL's checkpoints, and the
//! schema's CHECK constraints.

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

/// The checkpointer beside the writer copies the WAL into the database soon
/// after commits (the writer itself checkpoints only a WAL past its bound, as
/// a checkpoint inside a commit holds up that write and every event it
/// carried): the database file grows as the WAL's pages are copied into it,
/// with no other connection open.
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

/// SQLite evaluates a CHECK's `IN` list of more than two constants by
/// building a temporary index on every write that checks the column;
/// migration 0014 writes those lists as comparisons joined by OR. No table
/// keeps such a list, a new lesson and a session's save build no temporary
/// index, and the constraints still refuse what they refused.
#[tokio::test]
async fn checks_build_no_temporary_index_and_still_refuse_bad_values() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    bosun::storage::migrate(dir.path()).await.unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join(bosun::storage::DB_FILE).display()
    );
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();

    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (table, sql) in &tables {
        for (at, _) in sql.match_indices(" IN (") {
            let list = &sql[at..at + sql[at..].find(')').unwrap()];
            assert!(
                list.matches(',').count() < 2,
                "{table} still checks a list of three or more values with IN: {list}"
            );
        }
    }

    for statement in [
        "INSERT INTO lessons (create_time, lesson_type, status, source, attribution, target_domain) \
         VALUES (1, 'flaky_test', 'new', 'manual', 'platform', 'quality')",
        "UPDATE sessions SET state = 'working', termination_reason = 'runtime_lost', is_alive = 1 \
         WHERE id = 'p-1'",
        "UPDATE pull_requests SET state = 'open', ci_state = 'passing', mergeability = 'mergeable', \
         review_decision = 'approved' WHERE session_id = 'p-1'",
    ] {
        let opcodes: Vec<String> = sqlx::query(&format!("EXPLAIN {statement}"))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("opcode"))
            .collect();
        assert!(opcodes.contains(&"Halt".to_string()), "{opcodes:?}");
        assert!(
            !opcodes.iter().any(|opcode| opcode == "OpenEphemeral"),
            "{statement} builds a temporary index: {opcodes:?}"
        );
    }

    let insert = |status: &'static str, attribution: Option<&'static str>| {
        sqlx::query(
            "INSERT INTO lessons (create_time, lesson_type, status, source, attribution) \
             VALUES (1, 'flaky_test', $1, 'manual', $2)",
        )
        .bind(status)
        .bind(attribution)
    };
    insert("closed", None).execute(&mut conn).await.unwrap();
    insert("linked", Some("both"))
        .execute(&mut conn)
        .await
        .unwrap();
    for (status, attribution) in [("bogus", None), ("NEW", None), ("new", Some("nobody"))] {
        let err = insert(status, attribution)
            .execute(&mut conn)
            .await
            .expect_err(status);
        assert!(
            err.to_string().contains("CHECK constraint failed"),
            "{status} {attribution:?}: {err}"
        );
    }
}
