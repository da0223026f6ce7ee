//! `Journal::record_auto`, the entry point through which bosun records its
//! own lessons inside another domain's write: a failing journal never fails
//! the caller's transaction.

use bosun::lessons::{AutoLesson, Journal, JournalSettings, NewLesson};
use bosun::storage::sql::query;
use bosun::storage::{Db, StoreError};
use futures::FutureExt;

async fn open() -> (tempfile::TempDir, Db, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    let journal = Journal::new(db.clone(), JournalSettings::default());
    db.write(|conn| {
        async move {
            query("CREATE TABLE caller_state (id INTEGER PRIMARY KEY, note TEXT)")
                .execute(conn)
                .await?;
            Ok::<_, StoreError>(())
        }
        .boxed()
    })
    .await
    .unwrap();
    (dir, db, journal)
}

/// The caller's change plus an auto lesson, in one write.
async fn caller_write(db: &Db, journal: &Journal, note: &'static str) -> AutoLesson {
    let journal = journal.clone();
    db.write(move |conn| {
        async move {
            query("INSERT INTO caller_state (note) VALUES ($1)")
                .bind(note)
                .execute(&mut *conn)
                .await?;
            let outcome = journal
                .record_auto(
                    conn,
                    NewLesson {
                        stage: Some("testing".into()),
                        ..NewLesson::auto("gate_failure")
                    },
                )
                .await;
            query("UPDATE caller_state SET note = note || ' (after)' WHERE note = $1")
                .bind(note)
                .execute(&mut *conn)
                .await?;
            Ok::<_, StoreError>(outcome)
        }
        .boxed()
    })
    .await
    .expect("the caller's write commits")
}

async fn count(db: &Db, sql: &str) -> i64 {
    query(sql)
        .fetch_scalar(&mut db.read().await.unwrap().conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn records_dedups_and_survives_a_failing_journal() {
    let (_dir, db, journal) = open().await;
    assert!(
        matches!(caller_write(&db, &journal, "first").await, AutoLesson::Recorded(ref l) if l.stage.as_deref() == Some("testing"))
    );
    assert!(matches!(
        caller_write(&db, &journal, "second").await,
        AutoLesson::Deduplicated(_)
    ));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM lessons").await, 1);

    // Break the journal: every insert into lessons now aborts.
    db.write(|conn| {
        async move {
            query("DELETE FROM lessons").execute(&mut *conn).await?;
            query("CREATE TRIGGER journal_down BEFORE INSERT ON lessons BEGIN SELECT RAISE(ABORT, 'journal down'); END")
                .execute(conn)
                .await?;
            Ok::<_, StoreError>(())
        }
        .boxed()
    })
    .await
    .unwrap();
    let events_before = count(&db, "SELECT COUNT(*) FROM change_log").await;
    assert_eq!(
        caller_write(&db, &journal, "third").await,
        AutoLesson::Failed
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM caller_state WHERE note = 'third (after)'"
        )
        .await,
        1,
        "the caller's whole change committed"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM lessons").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM change_log").await,
        events_before,
        "no half-written lesson event"
    );

    // Switched off, it does not touch the table at all.
    journal.update_settings(|s| s.enabled = false);
    assert_eq!(
        caller_write(&db, &journal, "fourth").await,
        AutoLesson::Disabled
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_state").await, 4);
    db.close().await;
}

#[tokio::test]
async fn a_failing_job_rolls_back_alone_and_replies_only_after_commit() {
    let (_dir, db, _journal) = open().await;
    // Many concurrent writes, one of which fails: the others commit.
    let writes = (0..50).map(|i| {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                async move {
                    query("INSERT INTO caller_state (id, note) VALUES ($1, 'x')")
                        .bind(i)
                        .execute(&mut *conn)
                        .await?;
                    if i == 17 {
                        return Err(StoreError::Malformed("refused by the job".into()));
                    }
                    Ok(i)
                }
                .boxed()
            })
            .await
        }
    });
    let results = futures::future::join_all(writes).await;
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_state").await, 49);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM caller_state WHERE id = 17").await,
        0
    );
    db.close().await;
    let closed = db
        .write(|_conn| async { Ok::<_, StoreError>(()) }.boxed())
        .await;
    assert!(
        matches!(closed, Err(StoreError::Closed)),
        "writes after close are refused"
    );
}
