//! Crash safety: the real binary under a mixed write load with watchers is
//! killed with SIGKILL at random moments (some during start-up, while the
//! database is being opened or migrated), restarted on the same data dir,
//! and checked after every restart:
//! - every write whose RPC answered OK is stored, and nothing twice (each
//!   request_id is one row; retrying an unanswered one stores it once,
//!   retrying an answered one returns the original result);
//! - `change_log` is exactly seqs 1..=head, and `PRAGMA integrity_check` is ok;
//! - each watcher resuming after its last resume_seq gets exactly the
//!   events it missed (the history checker, over every segment so far);
//! - no processor or reconciler pass is left RUNNING by the killed process,
//!   and, at the end, both loops run again after the restart.
//!
//! The seed is printed; `BOSUN_CRASH_SEED=<n>` replays a run's kill times.

mod common;
#[path = "common/history.rs"]
mod history;
#[path = "crash/load.rs"]
mod load;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bosun::pb::events_client::EventsClient;
use bosun::pb::{EventFilter, GetHeadRequest, WatchRequest};
use common::process::{BosunProcess, connect};
use history::{WatcherHistory, check, read_table};
use load::{Acked, Watcher, run_load};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, SqliteConnection};

const KILLS: usize = 20;
/// Bound for anything the test waits on; never a sleep.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_lose_nothing_acknowledged_and_duplicate_nothing() {
    let seed = std::env::var("BOSUN_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("crash test seed: {seed} (BOSUN_CRASH_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let transcripts = dir.path().join("transcripts");
    std::fs::create_dir_all(transcripts.join("-home-dev-crash")).unwrap();
    std::fs::write(
        transcripts.join("-home-dev-crash/s1.jsonl"),
        "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"}}\n",
    )
    .unwrap();
    let envs = [
        (
            "BOSUN_PROCESSORS__TRANSCRIPTS_DIR",
            transcripts.display().to_string(),
        ),
        ("BOSUN_PROCESSORS__USAGE__CADENCE", "100ms".into()),
        ("BOSUN_PROCESSORS__TOOL_ERRORS__CADENCE", "100ms".into()),
        ("BOSUN_RECONCILER__INTERVAL", "1s".into()),
        ("BOSUN_EVENTS__PROGRESS_INTERVAL", "50ms".into()),
        ("BOSUN_EVENTS__COMPACTION_INTERVAL", "1s".into()),
    ];
    let mut acked = Acked::default();
    let mut watchers = [
        EventFilter::default(),
        EventFilter {
            event_type_prefixes: vec!["lesson.".into()],
            ..EventFilter::default()
        },
        EventFilter {
            event_type_prefixes: vec!["session.".into(), "project.".into()],
            ..EventFilter::default()
        },
    ]
    .map(Watcher::new);
    let started = std::time::Instant::now();
    let mut kills_before_ready = 0;

    for round in 0..=KILLS {
        let spawned_at = now_micros();
        let mut bosun = BosunProcess::spawn(&data_dir, &envs);
        // Every fourth kill may land during start-up (opening, migrating);
        // the others after a random stretch of load.
        let early = round < KILLS && round % 4 == 0;
        let delay = if early {
            Duration::from_millis(rng.random_range(0..400))
        } else {
            Duration::from_millis(rng.random_range(100..1200))
        };
        let deadline = tokio::time::Instant::now() + delay;
        let addr = if early {
            tokio::select! {
                addr = bosun.ready() => addr,
                () = tokio::time::sleep_until(deadline) => None,
            }
        } else {
            bosun.ready().await
        };
        let Some(addr) = addr else {
            assert!(early, "bosun did not start:\n{}", bosun.log_tail(20));
            kills_before_ready += 1;
            bosun.kill();
            continue;
        };
        let channel = connect(addr).await;
        let context = format!("round {round} (seed {seed})");
        verify(&data_dir, &acked, &watchers, spawned_at, &context).await;
        acked.retry_unanswered(&channel).await;

        if round == KILLS {
            background_loops_run_again(&channel).await;
            finish_watchers(&channel, &mut watchers).await;
            verify(&data_dir, &acked, &watchers, spawned_at, &context).await;
            break;
        }
        let load_deadline = if early {
            deadline
        } else {
            tokio::time::Instant::now() + delay
        };
        let kill = || bosun.kill();
        run_load(
            &channel,
            round,
            &mut acked,
            &mut watchers,
            kill,
            load_deadline,
        )
        .await;
    }
    let path = data_dir.join(bosun::storage::DB_FILE);
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let interrupted: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM processor_runs WHERE error LIKE 'interrupted%') \
         + (SELECT COUNT(*) FROM reconciler_runs WHERE error LIKE 'bosun stopped%')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    println!(
        "crash test: {KILLS} kills ({kills_before_ready} before serving), {} lessons and {} \
         sessions acknowledged, {} retried after a kill, {interrupted} interrupted passes \
         ended FAILED at the next start, in {:?}",
        acked.lessons.len(),
        acked.sessions.len(),
        acked.retried,
        started.elapsed()
    );
}

fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// Everything the test can check about the stored state right after a
/// restart, reading the file directly as an operator's sqlite3 would.
async fn verify(
    data_dir: &std::path::Path,
    acked: &Acked,
    watchers: &[Watcher],
    spawned_at: i64,
    context: &str,
) {
    let path = data_dir.join(bosun::storage::DB_FILE);
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(integrity, "ok", "{context}");
    let table = read_table(&mut bosun::storage::Conn::Sqlite(&mut conn)).await;
    let seqs: Vec<i64> = table.iter().map(|event| event.seq).collect();
    let gapless: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert!(seqs == gapless, "{context}: change_log is not 1..=head");
    acked.check_stored(&mut conn, context).await;
    for table_name in ["processor_runs", "reconciler_runs"] {
        let left_running: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table_name} WHERE state = 'running' AND start_time < ?"
        ))
        .bind(spawned_at)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            left_running, 0,
            "{context}: a pass of the killed process is still RUNNING in {table_name}"
        );
    }
    for watcher in watchers {
        let history = WatcherHistory {
            filter: watcher.filter.clone(),
            segments: watcher.segments.clone(),
        };
        if let Err(err) = check(&history, &table, &[]) {
            panic!("{context}: watcher {:?}: {err}", watcher.filter);
        }
    }
    conn.close().await.unwrap();
}

/// Both background loops run after the restart: a processor pass and a
/// reconciler pass appear on the change log.
async fn background_loops_run_again(channel: &tonic::transport::Channel) {
    let mut events = EventsClient::new(channel.clone());
    let head = events
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_seq;
    let mut stream = events
        .watch(WatchRequest {
            after_seq: head,
            filter: Some(EventFilter {
                event_type_prefixes: vec!["processor_run.".into(), "reconciler_run.".into()],
                ..EventFilter::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let (mut processor, mut reconciler) = (false, false);
    while !(processor && reconciler) {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("a processor and a reconciler pass after the restart")
            .unwrap()
            .expect("stream open");
        for event in message.events {
            processor |= event.event_type.starts_with("processor_run.");
            reconciler |= event.event_type.starts_with("reconciler_run.");
        }
    }
}

/// Resumes every watcher once more and reads until it is caught up with
/// the head, so the final check covers all it missed while down.
async fn finish_watchers(channel: &tonic::transport::Channel, watchers: &mut [Watcher]) {
    let head = EventsClient::new(channel.clone())
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_seq;
    for watcher in watchers {
        watcher.catch_up(channel, head, PATIENCE).await;
    }
}
