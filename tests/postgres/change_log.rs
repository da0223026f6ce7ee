//! The change log's promises with concurrent writers on three replicas:
//! seq gapless 1..N in commit order, every committed change's events (and
//! only those) in the log, one transaction's events contiguous, and tailing
//! readers that poll `seq > last` never skip or repeat one, checked with
//! the history checker.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bosun::pb::EventFilter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

use super::commit_order::lesson_insert;
use super::history::{self, Received, Segment, TableEvent, WatcherHistory};
use super::{migrated_database, pool};

const REPLICAS: usize = 3;
const WRITERS_PER_REPLICA: usize = 3;
const TRANSACTIONS_PER_WRITER: usize = 40;
const HOT_PROJECTS: usize = 3;

/// One event as the test expects it: (entity_kind, entity_id, event_type).
type Expected = (String, String, String);

/// What one write transaction did: its events, or what it rolled back.
enum Outcome {
    Committed(Vec<Expected>),
    RolledBack(Vec<(String, String)>),
}

/// One random write transaction: maybe a hot shared project first (so
/// transactions contend on rows as well as on the log), then a lesson
/// written twice, or a session with a task that changes stage.
async fn write_once(pool: &PgPool, rng: &mut StdRng, tag: &str, number: i64) -> Outcome {
    let mut tx = pool.begin().await.unwrap();
    let mut events: Vec<Expected> = Vec::new();
    let mut entities: Vec<(String, String)> = Vec::new();
    let event =
        |kind: &str, id: &str, verb: &str| (kind.to_owned(), id.to_owned(), verb.to_owned());
    if rng.random_bool(0.5) {
        let hot = format!("hot-{}", rng.random_range(0..HOT_PROJECTS));
        sqlx::query("UPDATE projects SET update_time = $1 WHERE id = $2")
            .bind(number)
            .bind(&hot)
            .execute(&mut *tx)
            .await
            .unwrap();
        events.push(event("project", &hot, "project.updated"));
    }
    if rng.random_bool(0.5) {
        let id = lesson_insert(&mut tx, tag).await.to_string();
        sqlx::query(
            "UPDATE lessons SET status = 'in_progress', update_time = 2 WHERE id = $1::bigint",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await
        .unwrap();
        events.push(event("lesson", &id, "lesson.created"));
        events.push(event("lesson", &id, "lesson.updated"));
        entities.push(("lesson".into(), id));
    } else {
        let session = format!("base-{number}");
        sqlx::query(
            "INSERT INTO sessions (id, project_id, number, harness, state, create_time) \
             VALUES ($1, 'base', $2, 'codex', 'working', 1)",
        )
        .bind(&session)
        .bind(number)
        .execute(&mut *tx)
        .await
        .unwrap();
        let task: i64 = sqlx::query_scalar(
            "INSERT INTO tasks (project_id, tracker_issue_id, work_item_id, repo, branch, stage, \
             stage_session_id, create_time, update_time, stage_enter_time) \
             VALUES ('base', $1, $1, 'org/repo', $1, 'analysis', $2, 1, 1, 1) RETURNING id",
        )
        .bind(tag)
        .bind(&session)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query("UPDATE tasks SET stage = 'development', update_time = 2 WHERE id = $1")
            .bind(task)
            .execute(&mut *tx)
            .await
            .unwrap();
        events.push(event("session", &session, "session.created"));
        events.push(event("task", &task.to_string(), "task.created"));
        events.push(event("task", &task.to_string(), "task.stage_changed"));
        entities.push(("session".into(), session));
        entities.push(("task".into(), task.to_string()));
    }
    if rng.random_bool(0.2) {
        tx.rollback().await.unwrap();
        Outcome::RolledBack(entities)
    } else {
        tx.commit().await.unwrap();
        Outcome::Committed(events)
    }
}

/// Polls `seq > last` until a read made after the writers finished finds
/// nothing new.
async fn tail(pool: PgPool, done: Arc<AtomicBool>) -> Vec<Received> {
    let mut last = 0;
    let mut received = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM change_log WHERE seq > $1 ORDER BY seq LIMIT 200")
                .bind(last)
                .fetch_all(&pool)
                .await
                .unwrap();
        match rows.last() {
            Some(&newest) => {
                last = newest;
                received.push(Received {
                    seqs: rows,
                    resume_seq: newest,
                    progress: false,
                });
            }
            // Writers were done before this empty read: it saw everything.
            None if finished => return received,
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_write_concurrently_and_every_reader_sees_every_event_once_in_order() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let setup = pool(&url, 1).await;
    let mut setup_events: Vec<Expected> = Vec::new();
    for project in ["base".to_owned()]
        .into_iter()
        .chain((0..HOT_PROJECTS).map(|n| format!("hot-{n}")))
    {
        sqlx::query(
            "INSERT INTO projects (id, repo_path, display_name, register_time) VALUES ($1, '/r', $1, 1)",
        )
        .bind(&project)
        .execute(&setup)
        .await
        .unwrap();
        setup_events.push(("project".into(), project, "project.created".into()));
    }

    let replicas: Vec<PgPool> = futures::future::join_all(
        (0..REPLICAS).map(|_| pool(&url, WRITERS_PER_REPLICA as u32 + 1)),
    )
    .await;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = replicas
        .iter()
        .map(|replica| tokio::spawn(tail(replica.clone(), done.clone())))
        .collect();
    let mut writers = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for w in 0..WRITERS_PER_REPLICA {
            let replica = replica.clone();
            writers.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64((r * 100 + w) as u64);
                let mut outcomes = Vec::new();
                for i in 0..TRANSACTIONS_PER_WRITER {
                    let number = (r * 1_000_000 + w * 1_000 + i) as i64;
                    let tag = format!("r{r}-w{w}-t{i}");
                    outcomes.push(write_once(&replica, &mut rng, &tag, number).await);
                }
                outcomes
            }));
        }
    }
    let outcomes: Vec<Outcome> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    done.store(true, Ordering::Release);
    let histories: Vec<Vec<Received>> = futures::future::join_all(readers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT seq, entity_kind, entity_id, event_type FROM change_log ORDER BY seq",
    )
    .fetch_all(&setup)
    .await
    .unwrap();
    let n = rows.len() as i64;
    assert!(rows.iter().map(|r| r.0).eq(1..=n), "seq is gapless 1..{n}");
    let counter: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(&setup)
        .await
        .unwrap();
    assert_eq!(counter, n, "the counter is the newest committed seq");

    // Every committed transaction's events, exactly, contiguous, in order.
    let position: HashMap<(&str, &str), usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.3.ends_with(".created"))
        .map(|(index, r)| ((r.1.as_str(), r.2.as_str()), index))
        .collect();
    let mut claimed = vec![false; rows.len()];
    let mut transactions: Vec<Vec<i64>> = Vec::new();
    let mut committed = 0;
    let mut rolled_back: HashSet<(String, String)> = HashSet::new();
    let setup_outcome = Outcome::Committed(setup_events);
    for outcome in outcomes.iter().chain([&setup_outcome]) {
        let events = match outcome {
            Outcome::Committed(events) => events,
            Outcome::RolledBack(entities) => {
                rolled_back.extend(entities.iter().cloned());
                continue;
            }
        };
        committed += 1;
        let (anchor, (kind, id, _)) = events
            .iter()
            .enumerate()
            .find(|(_, e)| e.2.ends_with(".created"))
            .expect("every transaction creates something");
        let found = position[&(kind.as_str(), id.as_str())];
        let start = found - anchor;
        let block: Vec<Expected> = rows[start..start + events.len()]
            .iter()
            .map(|r| (r.1.clone(), r.2.clone(), r.3.clone()))
            .collect();
        assert_eq!(
            &block,
            events,
            "a committed transaction's events, at seq {}",
            start + 1
        );
        for (index, taken) in claimed
            .iter_mut()
            .enumerate()
            .skip(start)
            .take(events.len())
        {
            assert!(!*taken, "seq {} belongs to two transactions", index + 1);
            *taken = true;
        }
        transactions.push((start as i64 + 1..=(start + events.len()) as i64).collect());
    }
    assert!(
        claimed.iter().all(|c| *c),
        "no event without a committed change"
    );
    assert!(
        rows.iter()
            .all(|r| !rolled_back.contains(&(r.1.clone(), r.2.clone()))),
        "rolled-back changes left no event"
    );
    assert!(
        committed > 250 && !rolled_back.is_empty(),
        "the load ran: {committed} committed"
    );

    // Every tailing reader saw exactly the log, in order, at every poll.
    let table: Vec<TableEvent> = sqlx::query_as(
        "SELECT seq, event_type, project_id, session_id, task_id FROM change_log ORDER BY seq",
    )
    .fetch_all(&setup)
    .await
    .unwrap();
    for (replica, received) in histories.into_iter().enumerate() {
        let polls = received.len();
        let history = WatcherHistory {
            filter: EventFilter::default(),
            segments: vec![Segment {
                after_seq: 0,
                received,
            }],
        };
        assert!(
            polls > 20,
            "reader {replica} tailed the log while it grew: {polls} polls"
        );
        assert_eq!(
            history.segments[0].resume_point(),
            n,
            "reader {replica} caught up"
        );
        if let Err(err) = history::check(&history, &table, &transactions) {
            panic!("reader on replica {replica} ({polls} polls): {err}");
        }
    }
}

/// A transaction counts its seqs on from its first append without touching
/// the counter row again; a rolled-back savepoint gives back its seqs (and,
/// when it held the first append, the counter's update too), so what
/// commits is still gapless and the counter ends at the last seq.
#[tokio::test]
async fn rolled_back_savepoints_give_their_seqs_back() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let pool = pool(&url, 1).await;
    let mut tx = pool.begin().await.unwrap();
    let statements: &[Option<&str>] = &[
        // The first append, in a savepoint rolled back.
        Some("SAVEPOINT a"),
        None,
        Some("ROLLBACK TO SAVEPOINT a"),
        None,
        // Two appends rolled back after one kept.
        Some("SAVEPOINT b"),
        None,
        None,
        Some("ROLLBACK TO SAVEPOINT b"),
        Some("SAVEPOINT c"),
        None,
        Some("RELEASE SAVEPOINT c"),
    ];
    for statement in statements {
        match statement {
            Some(sql) => {
                sqlx::query(sql).execute(&mut *tx).await.unwrap();
            }
            None => {
                lesson_insert(&mut tx, "savepoints").await;
            }
        }
    }
    tx.commit().await.unwrap();
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM change_log ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(seqs, [1, 2], "the kept appends, gapless");
    let counter: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counter, 2, "the counter is the last committed seq");

    // The next transaction counts on from there.
    let mut tx = pool.begin().await.unwrap();
    lesson_insert(&mut tx, "next").await;
    lesson_insert(&mut tx, "next").await;
    tx.commit().await.unwrap();
    let newest: Vec<i64> = sqlx::query_scalar("SELECT seq FROM change_log ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(newest, [1, 2, 3, 4]);
}
