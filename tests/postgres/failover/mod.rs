//! Failover: three `bosun serve` replicas on one PostgreSQL database under a
//! mixed write load (RecordLesson; RegisterProject, SpawnSession,
//! CompleteSpawn and ReportActivity; processor passes over transcripts an
//! agent keeps writing; reconciler passes), one Watch stream per replica,
//! while replicas are SIGKILLed and restarted at random (seeded), 3 to 5
//! times, one at a time. A client whose call fails
//! retries it with the SAME request_id on another replica; a watcher whose
//! replica dies resumes on another one after the last resume_seq it got.
//! Then:
//! 1. every acknowledged write is stored, read through a replica other than
//!    the one that acknowledged it;
//! 2. no request_id is applied twice: one lesson / session per request_id,
//!    and repeating an answered request on another replica (also two
//!    replicas registering the same project at once) answers the first
//!    result;
//! 3. the change log is gapless, seqs 1..=head, and every replica's
//!    ListEvents pages show exactly the table;
//! 4. every watcher's history (all its segments, on different replicas)
//!    passes the history checker: each resume got exactly the continuation;
//! 5. background passes never ran twice at once: `processor_runs` (per
//!    processor) and `reconciler_runs` intervals do not overlap, first as
//!    they really ran (a pass its killed replica left unfinished ran at
//!    least until the first kill after its start), then as recorded (what
//!    an operator reads), and no pass is ended twice in the change log.
//!
//! Beside those: no call fails on a replica that was not killed, and the
//! background loops really ran (else check 5 proves nothing).
//!
//! The seed is printed; `TEST_BOSUN_FAILOVER_SEED=<n>` replays a run's kill
//! schedule and load choices (timing still varies).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bosun::pb::events_client::EventsClient;
use bosun::pb::lessons_client::LessonsClient;
use bosun::pb::sessions_client::SessionsClient;
use bosun::pb::{
    ActivitySource, ActivityState, CompleteSpawnRequest, EventFilter, GetSessionRequest, Harness,
    Lesson, ListEventsRequest, ListLessonsRequest, Project, RecordLessonRequest, RecordOutcome,
    RegisterProjectRequest, ReportActivityRequest, SpawnSessionRequest, WatchRequest,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tonic::Status;
use tonic::transport::Channel;

use super::history::{self, Received, Segment, TableEvent, WatcherHistory};
use super::process::{BosunProcess, connect};
use super::{migrated_database, pool};

const REPLICAS: usize = 3;
const LESSON_WRITERS: usize = 4;
const SESSION_WRITERS: usize = 2;
const PROJECT: &str = "failover";
/// Bound for anything the test waits on; never a sleep.
const PATIENCE: Duration = Duration::from_secs(20);
/// A call that has not answered in this long counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

mod checks;
mod fleet;
mod load;
mod replicas;
mod watchers;

use checks::*;
use fleet::*;
use load::*;
use replicas::*;
use watchers::*;

// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_at_random_lose_nothing_and_watchers_resume_elsewhere() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let seed = std::env::var("TEST_BOSUN_FAILOVER_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("failover test seed: {seed} (TEST_BOSUN_FAILOVER_SEED={seed} replays it)");
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);

    let root = tempfile::tempdir().unwrap();
    let transcripts = root.path().join("transcripts");
    std::fs::create_dir_all(transcripts.join("-home-dev-failover")).unwrap();
    for session in 0..4 {
        std::fs::write(
            transcripts.join(format!("-home-dev-failover/s{session}.jsonl")),
            format!("{}\n", assistant_line(&format!("s{session}"), 0)),
        )
        .unwrap();
    }
    let envs = vec![
        ("BOSUN_DATABASE_URL", url.clone()),
        (
            "BOSUN_PROCESSORS__TRANSCRIPTS_DIR",
            transcripts.display().to_string(),
        ),
        ("BOSUN_PROCESSORS__USAGE__CADENCE", "100ms".into()),
        ("BOSUN_PROCESSORS__TOOL_ERRORS__CADENCE", "100ms".into()),
        ("BOSUN_RECONCILER__INTERVAL", "1s".into()),
        ("BOSUN_EVENTS__PROGRESS_INTERVAL", "200ms".into()),
        ("BOSUN_EVENTS__COMPACTION_INTERVAL", "1s".into()),
    ];
    let replicas = Replicas::new();
    let mut fleet = Fleet {
        root,
        envs,
        serving: (0..REPLICAS).map(|_| None).collect(),
        generations: vec![0; REPLICAS],
        killed: Vec::new(),
        replicas: replicas.clone(),
        kills: Vec::new(),
    };
    // All three start at once; then each is awaited.
    for index in 0..REPLICAS {
        fleet.spawn(index);
    }
    for index in 0..REPLICAS {
        fleet.ready(index).await;
    }
    let ctx = Ctx {
        replicas,
        failures: Arc::default(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let (target_tx, target_rx) = watch::channel(None);
    let filters = [
        EventFilter::default(),
        EventFilter {
            event_type_prefixes: vec!["lesson.".into()],
            ..EventFilter::default()
        },
        EventFilter {
            event_type_prefixes: vec!["session.".into(), "project.".into()],
            ..EventFilter::default()
        },
    ];
    let watchers: Vec<_> = filters
        .into_iter()
        .enumerate()
        .map(|(home, filter)| {
            tokio::spawn(follow(
                ctx.clone(),
                home,
                filter,
                target_rx.clone(),
                seed ^ (0x100 + home as u64),
            ))
        })
        .collect();
    let lesson_writers: Vec<_> = (0..LESSON_WRITERS)
        .map(|writer| {
            tokio::spawn(write_lessons(
                ctx.clone(),
                writer,
                seed ^ (0x200 + writer as u64),
            ))
        })
        .collect();
    let session_writers: Vec<_> = (0..SESSION_WRITERS)
        .map(|writer| {
            tokio::spawn(write_sessions(
                ctx.clone(),
                writer,
                seed ^ (0x300 + writer as u64),
            ))
        })
        .collect();
    let agent = tokio::spawn(agents(transcripts.clone(), ctx.stop.clone(), seed ^ 0x400));

    // Every replica dies at least once (so every watcher fails over), in a
    // random order, plus up to two more kills: 3 to 5 in all.
    let mut victims: Vec<usize> = (0..REPLICAS).collect();
    victims.shuffle(&mut rng);
    for _ in 0..rng.random_range(0..=2) {
        victims.push(rng.random_range(0..REPLICAS));
    }
    for &victim in &victims {
        // Load on the whole fleet, then the kill; the replica stays down a
        // while (the others serve), then restarts.
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..3500))).await;
        fleet.kill(victim);
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
        fleet.start(victim).await;
    }
    // The load goes on a while on the whole fleet again (the schedule is
    // the stimulus, as above), then stops.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ctx.stop.store(true, Ordering::Release);
    let load_time = started.elapsed();

    let mut lessons = LessonLedger::default();
    for writer in futures::future::join_all(lesson_writers).await {
        let ledger = writer.unwrap();
        lessons.acked.extend(ledger.acked);
        lessons.retried += ledger.retried;
        lessons.repeated += ledger.repeated;
        lessons.mismatches.extend(ledger.mismatches);
    }
    let mut sessions = SessionLedger::default();
    let mut projects = Vec::new();
    for writer in futures::future::join_all(session_writers).await {
        let (ledger, project) = writer.unwrap();
        sessions.acked.extend(ledger.acked);
        sessions.retried += ledger.retried;
        sessions.mismatches.extend(ledger.mismatches);
        projects.push(project);
    }
    agent.await.unwrap();

    let db = pool(&url, 2).await;
    let head_after_load: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(&db)
        .await
        .unwrap();
    target_tx.send(Some(head_after_load)).unwrap();
    let mut logs = Vec::new();
    for watcher in watchers {
        let log = timeout(PATIENCE, watcher).await.unwrap_or_else(|_| {
            panic!(
                "a watcher did not reach the head {head_after_load}:\n{}",
                fleet.tails()
            )
        });
        logs.push(log.unwrap());
    }
    let context = format!("seed {seed}, kills {:?}", fleet.kills);

    // 1 and 2, through the replicas: every acknowledged write is there, read
    // through a replica other than the one that acknowledged it.
    acknowledged_writes_read_elsewhere(&fleet.replicas, &lessons, &sessions, &context).await;
    assert!(
        lessons.mismatches.is_empty() && sessions.mismatches.is_empty(),
        "{context}: a repeated request_id answered another result: {:?} {:?}",
        lessons.mismatches,
        sessions.mismatches
    );
    assert!(
        projects.windows(2).all(|pair| pair[0] == pair[1]),
        "{context}: one RegisterProject request_id, sent on two replicas at once, answered two projects: {projects:?}"
    );
    // 3, through the replicas: each one's ListEvents pages up to the head.
    let mut pages_by_replica = Vec::new();
    for index in 0..REPLICAS {
        let (_, _, channel) = fleet.replicas.get(index).unwrap();
        pages_by_replica.push(list_events(channel, head_after_load).await);
    }

    let failures = std::mem::take(&mut *ctx.failures.lock().unwrap());
    let stopped_at = fleet.kill_all();
    let tails = fleet.tails();
    assert!(
        failures.unexpected.is_empty(),
        "{context}: calls failed on replicas that were not killed ({}):\n{}\n{tails}",
        failures.unexpected.len(),
        failures.unexpected[..failures.unexpected.len().min(20)].join("\n")
    );

    // From here on the database stands still; read it directly.
    // 2: one row per request_id, and exactly the acknowledged ones.
    each_request_stored_once(&db, &lessons, &sessions, &context).await;

    // 3: the change log is exactly 1..=head.
    let table: Vec<TableEvent> = sqlx::query_as(
        "SELECT seq, event_type, project_id, session_id, task_id FROM change_log ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let head: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(&db)
        .await
        .unwrap();
    let holes = first_holes(table.iter().map(|event| event.seq), head);
    assert!(
        holes.is_empty() && table.len() as i64 == head,
        "{context}: change_log is not 1..={head}: {} rows, missing {holes:?}",
        table.len()
    );
    for (index, pages) in pages_by_replica.iter().enumerate() {
        let expected: Vec<(i64, String)> = table
            .iter()
            .take_while(|event| event.seq <= head_after_load)
            .map(|event| (event.seq, event.event_type.clone()))
            .collect();
        assert!(
            *pages == expected,
            "{context}: replica {index}'s ListEvents pages ({} events) differ from the table's first {} rows",
            pages.len(),
            expected.len()
        );
    }

    // 4: every watcher saw exactly the log, across replicas.
    for (log, home) in logs.iter().zip(0..) {
        log.saw_exactly_the_log(home, &table, head_after_load, &context);
    }

    // 5: background passes, one at a time.
    let ends: Vec<i64> = fleet.kills.iter().map(|(_, at)| *at).collect();
    let processor_runs: Vec<Run> = sqlx::query_as(
        "SELECT processor AS job, id, state, start_time, end_time, error FROM processor_runs",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let reconciler_runs: Vec<Run> = sqlx::query_as(
        "SELECT 'reconciler' AS job, id, state, start_time, end_time, error FROM reconciler_runs",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let last_kill = fleet.kills[fleet.kills.len() - REPLICAS - 1].1;
    let interrupted = processor_runs
        .iter()
        .chain(&reconciler_runs)
        .filter(|run| run.interrupted())
        .count();
    println!(
        "failover test: {} kills {:?}, load {load_time:?}; {} lessons ({} retried, {} repeated), \
         {} sessions ({} calls retried); {} failed calls on killed replicas; watchers' segments \
         on replicas {:?}; head {head}; {} processor and {} reconciler passes ({interrupted} \
         interrupted); total {:?} (stopped at {stopped_at})",
        fleet.kills.len() - REPLICAS,
        &fleet.kills[..fleet.kills.len() - REPLICAS],
        lessons.acked.len(),
        lessons.retried,
        lessons.repeated,
        sessions.acked.len(),
        sessions.retried,
        failures.on_killed,
        logs.iter()
            .map(|log| log.served_by.clone())
            .collect::<Vec<_>>(),
        processor_runs.len(),
        reconciler_runs.len(),
        started.elapsed()
    );
    let runs: Vec<Run> = processor_runs.into_iter().chain(reconciler_runs).collect();
    let findings = background_pass_findings(&db, &runs, &ends, last_kill, &context, &tails).await;
    assert!(
        findings.is_empty(),
        "{context}: background passes:\n{}\n{tails}",
        findings.join("\n")
    );
}
