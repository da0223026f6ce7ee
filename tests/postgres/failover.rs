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

// The replicas as clients see them.

/// One replica's slot: the generation of its process, and a channel while
/// that process serves.
#[derive(Clone, Default)]
struct Slot {
    generation: u64,
    channel: Option<Channel>,
}

/// Where clients find the serving replicas. The killer retires a slot
/// BEFORE it sends SIGKILL, so a client whose call failed can tell whether
/// the replica it called was killed.
#[derive(Clone)]
struct Replicas(Arc<watch::Sender<Vec<Slot>>>);

impl Replicas {
    fn new() -> Self {
        Self(Arc::new(watch::Sender::new(vec![
            Slot::default();
            REPLICAS
        ])))
    }

    fn publish(&self, index: usize, channel: Channel) {
        self.0
            .send_modify(|slots| slots[index].channel = Some(channel));
    }

    fn retire(&self, index: usize) {
        self.0.send_modify(|slots| {
            slots[index].generation += 1;
            slots[index].channel = None;
        });
    }

    /// Whether process `generation` of replica `index` still serves.
    fn serving(&self, index: usize, generation: u64) -> bool {
        let slots = self.0.borrow();
        slots[index].generation == generation && slots[index].channel.is_some()
    }

    fn get(&self, index: usize) -> Option<(usize, u64, Channel)> {
        let slot = self.0.borrow()[index].clone();
        Some((index, slot.generation, slot.channel?))
    }

    /// A serving replica other than `avoid`, at random; waits for a restart
    /// when there is none.
    async fn pick(&self, rng: &mut StdRng, avoid: Option<usize>) -> (usize, u64, Channel) {
        let mut changes = self.0.subscribe();
        let deadline = Instant::now() + PATIENCE;
        loop {
            {
                let slots = changes.borrow_and_update();
                let serving: Vec<usize> = (0..REPLICAS)
                    .filter(|i| Some(*i) != avoid && slots[*i].channel.is_some())
                    .collect();
                if let Some(&index) = serving.get(rng.random_range(0..serving.len().max(1))) {
                    let slot = &slots[index];
                    return (index, slot.generation, slot.channel.clone().unwrap());
                }
            }
            timeout(deadline - Instant::now(), changes.changed())
                .await
                .expect("a replica other than the one that failed serves")
                .unwrap();
        }
    }
}

/// Failed calls: those on a killed replica are the test's doing; any other
/// is a finding.
#[derive(Default)]
struct Failures {
    on_killed: usize,
    unexpected: Vec<String>,
}

/// What every load task shares.
#[derive(Clone)]
struct Ctx {
    replicas: Replicas,
    failures: Arc<Mutex<Failures>>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    fn failed(&self, index: usize, generation: u64, what: &str, error: &str) {
        let mut failures = self.failures.lock().unwrap();
        if self.replicas.serving(index, generation) {
            failures
                .unexpected
                .push(format!("{what} on serving replica {index}: {error}"));
        } else {
            failures.on_killed += 1;
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Calls `call` on a serving replica (not `avoid`), and after a failure
    /// again, same request, on another one, until one answers. Returns the
    /// answer, the replica that gave it and how many calls it took.
    async fn until_answered<T, F, Fut>(
        &self,
        rng: &mut StdRng,
        what: &str,
        mut avoid: Option<usize>,
        mut call: F,
    ) -> (T, usize, usize)
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + PATIENCE;
        let mut unexpected = 0;
        for attempt in 1.. {
            let (index, generation, channel) = self.replicas.pick(rng, avoid).await;
            let error = match timeout(CALL_TIMEOUT, call(channel)).await {
                Ok(Ok(answer)) => return (answer, index, attempt),
                Ok(Err(status)) => describe(&status),
                Err(_) => format!("no answer in {CALL_TIMEOUT:?}"),
            };
            if self.replicas.serving(index, generation) {
                unexpected += 1;
            }
            self.failed(index, generation, what, &error);
            assert!(
                Instant::now() < deadline && unexpected < 3,
                "{what}: no replica answered ({unexpected} failures on serving replicas); last: {error}"
            );
            avoid = Some(index);
        }
        unreachable!()
    }
}

fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

// The load.

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Ack<T> {
    value: T,
    replica: usize,
}

#[derive(Default)]
struct LessonLedger {
    /// request_id (also the lesson's work_item_id) -> lesson id.
    acked: BTreeMap<String, Ack<i64>>,
    /// Requests that needed more than one call.
    retried: usize,
    /// Answered requests sent again to another replica.
    repeated: usize,
    mismatches: Vec<String>,
}

async fn record(channel: Channel, request_id: String) -> Result<i64, Status> {
    let response = LessonsClient::new(channel)
        .record_lesson(RecordLessonRequest {
            request_id: request_id.clone(),
            lesson: Some(Lesson {
                lesson_type: "gate_failure".into(),
                work_item_id: request_id,
                ..Lesson::default()
            }),
        })
        .await?
        .into_inner();
    match (response.outcome(), response.lesson) {
        (RecordOutcome::Recorded, Some(lesson)) => Ok(lesson.id),
        (outcome, _) => Err(Status::internal(format!(
            "test: RecordLesson answered {outcome:?}"
        ))),
    }
}

/// Records lessons until the stop; every eighth answered one is sent again
/// to another replica and must answer the same lesson.
async fn write_lessons(ctx: Ctx, writer: usize, seed: u64) -> LessonLedger {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = LessonLedger::default();
    for n in 0.. {
        if ctx.stopping() {
            break;
        }
        let request_id = format!("lesson-{writer}-{n}");
        let what = format!("RecordLesson {request_id}");
        let (id, replica, calls) = ctx
            .until_answered(&mut rng, &what, None, |channel| {
                record(channel, request_id.clone())
            })
            .await;
        ledger.retried += usize::from(calls > 1);
        if n % 8 == 7 {
            let (again, other, _) = ctx
                .until_answered(&mut rng, &what, Some(replica), |channel| {
                    record(channel, request_id.clone())
                })
                .await;
            ledger.repeated += 1;
            if again != id {
                ledger.mismatches.push(format!(
                    "{request_id}: replica {replica} answered lesson {id}, \
                     the repeat on replica {other} lesson {again}"
                ));
            }
        }
        ledger.acked.insert(request_id, Ack { value: id, replica });
        tokio::time::sleep(Duration::from_millis(rng.random_range(2..20))).await;
    }
    ledger
}

/// A session as the last acknowledged call left it.
#[derive(Debug, Clone)]
struct SessionAck {
    spawn_request: String,
    state: i32,
}

#[derive(Default)]
struct SessionLedger {
    /// session id -> its last acknowledged state.
    acked: BTreeMap<String, Ack<SessionAck>>,
    retried: usize,
    mismatches: Vec<String>,
}

async fn register_project(channel: Channel) -> Result<Project, Status> {
    SessionsClient::new(channel)
        .register_project(RegisterProjectRequest {
            request_id: "register-failover".into(),
            project: Some(Project {
                id: PROJECT.into(),
                origin_url: "https://github.com/acme/failover.git".into(),
                ..Project::default()
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn spawn(channel: Channel, request_id: String) -> Result<bosun::pb::Session, Status> {
    SessionsClient::new(channel)
        .spawn_session(SpawnSessionRequest {
            request_id: request_id.clone(),
            project_id: PROJECT.into(),
            issue_id: request_id,
            harness: Harness::ClaudeCode.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn complete(
    channel: Channel,
    request_id: String,
    session_id: String,
) -> Result<bosun::pb::Session, Status> {
    SessionsClient::new(channel)
        .complete_spawn(CompleteSpawnRequest {
            request_id,
            runtime_handle_id: format!("tmux-{session_id}"),
            session_id,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn report(
    channel: Channel,
    request_id: String,
    session_id: String,
    state: ActivityState,
) -> Result<bosun::pb::Session, Status> {
    SessionsClient::new(channel)
        .report_activity(ReportActivityRequest {
            request_id,
            session_id,
            state: state.into(),
            source: ActivitySource::Hook.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Registers the project (every session writer at once, with one
/// request_id: all must get the same project), then spawns sessions and
/// reports activity on each until the stop.
async fn write_sessions(ctx: Ctx, writer: usize, seed: u64) -> (SessionLedger, Project) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = SessionLedger::default();
    let (project, _, _) = ctx
        .until_answered(&mut rng, "RegisterProject", Some(writer), register_project)
        .await;
    for n in 0.. {
        if ctx.stopping() {
            break;
        }
        let spawn_request = format!("spawn-{writer}-{n}");
        let what = format!("SpawnSession {spawn_request}");
        let (session, replica, calls) = ctx
            .until_answered(&mut rng, &what, None, |channel| {
                spawn(channel, spawn_request.clone())
            })
            .await;
        ledger.retried += usize::from(calls > 1);
        if session.issue_id != spawn_request {
            ledger.mismatches.push(format!(
                "{spawn_request} answered session {} of issue {}",
                session.id, session.issue_id
            ));
        }
        let mut last = Ack {
            value: SessionAck {
                spawn_request: spawn_request.clone(),
                state: session.state,
            },
            replica,
        };
        let request_id = format!("{spawn_request}-complete");
        let what = format!("CompleteSpawn {request_id}");
        let (answer, replica, calls) = ctx
            .until_answered(&mut rng, &what, None, |channel| {
                complete(channel, request_id.clone(), session.id.clone())
            })
            .await;
        ledger.retried += usize::from(calls > 1);
        last.value.state = answer.state;
        last.replica = replica;
        for (step, state) in [
            ActivityState::Idle,
            ActivityState::Active,
            ActivityState::Idle,
        ]
        .into_iter()
        .enumerate()
        {
            let request_id = format!("{spawn_request}-activity-{step}");
            let what = format!("ReportActivity {request_id}");
            let (answer, replica, calls) = ctx
                .until_answered(&mut rng, &what, None, |channel| {
                    report(channel, request_id.clone(), session.id.clone(), state)
                })
                .await;
            ledger.retried += usize::from(calls > 1);
            last.value.state = answer.state;
            last.replica = replica;
        }
        ledger.acked.insert(session.id.clone(), last);
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
    }
    (ledger, project)
}

/// Everything one watcher received, and which replica served each segment.
struct WatcherLog {
    history: WatcherHistory,
    served_by: Vec<usize>,
}

fn reached(target: &watch::Receiver<Option<i64>>, resume_seq: i64) -> bool {
    target.borrow().is_some_and(|target| resume_seq >= target)
}

/// Watches on replica `home`; when a stream fails, resumes on another
/// replica after the last resume_seq. Ends once it has passed `target`.
async fn follow(
    ctx: Ctx,
    home: usize,
    filter: EventFilter,
    mut target: watch::Receiver<Option<i64>>,
    seed: u64,
) -> WatcherLog {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = WatcherLog {
        history: WatcherHistory {
            filter: filter.clone(),
            segments: Vec::new(),
        },
        served_by: Vec::new(),
    };
    let mut previous = None;
    loop {
        let after_seq = log.history.segments.last().map_or(0, Segment::resume_point);
        if reached(&target, after_seq) {
            return log;
        }
        let (index, generation, channel) = match previous {
            None => ctx
                .replicas
                .get(home)
                .expect("every replica serves at first"),
            Some(previous) => ctx.replicas.pick(&mut rng, Some(previous)).await,
        };
        previous = Some(index);
        let request = WatchRequest {
            after_seq,
            filter: Some(filter.clone()),
        };
        let opened = timeout(CALL_TIMEOUT, EventsClient::new(channel).watch(request)).await;
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                ctx.failed(index, generation, "Watch", &describe(&status));
                continue;
            }
            Err(_) => {
                ctx.failed(index, generation, "Watch", "no answer");
                continue;
            }
        };
        let mut segment = Segment {
            after_seq,
            received: Vec::new(),
        };
        let ended = loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(message)) => {
                        segment.received.push(Received::from(&message));
                        if reached(&target, segment.resume_point()) {
                            break None;
                        }
                    }
                    Ok(None) => break Some("the stream ended".to_owned()),
                    Err(status) => break Some(describe(&status)),
                },
                changed = target.changed() => {
                    // An error: the test failed and dropped the target.
                    if changed.is_err() || reached(&target, segment.resume_point()) {
                        break None;
                    }
                }
            }
        };
        log.history.segments.push(segment);
        log.served_by.push(index);
        match ended {
            None => return log,
            Some(error) => ctx.failed(index, generation, "Watch stream", &error),
        }
    }
}

/// An agent writing its transcripts, so processor passes have work.
async fn agents(transcripts: PathBuf, stop: Arc<AtomicBool>, seed: u64) {
    use std::io::Write;
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0.. {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let session = format!("s{}", rng.random_range(0..4));
        let path = transcripts.join(format!("-home-dev-failover/{session}.jsonl"));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        writeln!(file, "{}", assistant_line(&session, n)).unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..250))).await;
    }
}

fn assistant_line(session: &str, n: u64) -> String {
    serde_json::json!({
        "type": "assistant", "sessionId": session, "uuid": format!("{session}-{n}"),
        "message": {"id": format!("msg-{session}-{n}"), "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "working on it"}],
            "usage": {"input_tokens": 10 + n, "output_tokens": 5,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    })
    .to_string()
}

// The processes.

struct Fleet {
    root: tempfile::TempDir,
    envs: Vec<(&'static str, String)>,
    serving: Vec<Option<BosunProcess>>,
    generations: Vec<u64>,
    /// Processes killed so far, kept for their logs.
    killed: Vec<(String, BosunProcess)>,
    replicas: Replicas,
    /// Every kill: (replica, unix micros just before SIGKILL).
    kills: Vec<(usize, i64)>,
}

impl Fleet {
    fn name(&self, index: usize) -> String {
        format!("replica-{index}.{}", self.generations[index])
    }

    fn spawn(&mut self, index: usize) {
        let data_dir = self.root.path().join(format!("data-{index}"));
        let mut envs = self.envs.clone();
        envs.push(("BOSUN_REPLICA_NAME", self.name(index)));
        self.serving[index] = Some(BosunProcess::spawn(&data_dir, &envs));
    }

    /// Waits until replica `index` serves, then hands it to clients.
    async fn ready(&mut self, index: usize) {
        let name = self.name(index);
        let process = self.serving[index].as_mut().unwrap();
        let addr = match timeout(PATIENCE, process.ready()).await {
            Ok(Some(addr)) => addr,
            outcome => panic!(
                "{name} did not serve ({}):\n{}",
                if outcome.is_err() {
                    "timed out"
                } else {
                    "exited"
                },
                process.log_tail(30)
            ),
        };
        let channel = timeout(PATIENCE, connect(addr))
            .await
            .unwrap_or_else(|_| panic!("{name} answered no health check"));
        self.replicas.publish(index, channel);
    }

    async fn start(&mut self, index: usize) {
        self.spawn(index);
        self.ready(index).await;
    }

    fn kill(&mut self, index: usize) {
        self.replicas.retire(index);
        self.kills.push((index, now_micros()));
        let name = self.name(index);
        let mut process = self.serving[index].take().expect("a serving replica");
        process.kill();
        self.generations[index] += 1;
        self.killed.push((name, process));
    }

    /// Kills the rest at the end (the database then stands still).
    fn kill_all(&mut self) -> i64 {
        for index in 0..REPLICAS {
            self.kill(index);
        }
        self.kills.last().unwrap().1
    }

    /// Every process's last log lines, for failure messages.
    fn tails(&self) -> String {
        let mut out = String::new();
        for (name, process) in &self.killed {
            out.push_str(&format!("--- {name} ---\n{}\n", process.log_tail(15)));
        }
        for (index, process) in self.serving.iter().enumerate() {
            if let Some(process) = process {
                out.push_str(&format!(
                    "--- {} ---\n{}\n",
                    self.name(index),
                    process.log_tail(15)
                ));
            }
        }
        out
    }
}

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
    let listed: Vec<BTreeMap<String, i64>> = {
        let mut listed = Vec::new();
        for index in 0..REPLICAS {
            let (_, _, channel) = fleet.replicas.get(index).unwrap();
            listed.push(list_lessons(channel).await);
        }
        listed
    };
    for (request_id, ack) in &lessons.acked {
        for (index, stored) in listed.iter().enumerate() {
            if index == ack.replica {
                continue;
            }
            assert_eq!(
                stored.get(request_id),
                Some(&ack.value),
                "{context}: lesson {request_id} (id {}, acknowledged by replica {}) as replica {index} lists it",
                ack.value,
                ack.replica
            );
        }
    }
    for (session_id, ack) in &sessions.acked {
        let other = (ack.replica + 1) % REPLICAS;
        let (_, _, channel) = fleet.replicas.get(other).unwrap();
        let stored = SessionsClient::new(channel)
            .get_session(GetSessionRequest {
                session_id: session_id.clone(),
            })
            .await
            .unwrap_or_else(|status| {
                panic!("{context}: session {session_id} on replica {other}: {status}")
            })
            .into_inner();
        assert_eq!(
            (stored.issue_id.as_str(), stored.state),
            (ack.value.spawn_request.as_str(), ack.value.state),
            "{context}: session {session_id} as replica {other} reads it (acknowledged by replica {})",
            ack.replica
        );
    }
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
    let stored_lessons: Vec<(String, i64)> =
        sqlx::query_as("SELECT work_item_id, id FROM lessons WHERE work_item_id LIKE 'lesson-%'")
            .fetch_all(&db)
            .await
            .unwrap();
    let by_request: BTreeMap<&str, Vec<i64>> =
        stored_lessons
            .iter()
            .fold(BTreeMap::new(), |mut by_request, (request_id, id)| {
                by_request
                    .entry(request_id.as_str())
                    .or_insert_with(Vec::new)
                    .push(*id);
                by_request
            });
    let doubled: Vec<_> = by_request.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "{context}: request_ids applied twice: {doubled:?}"
    );
    assert_eq!(
        stored_lessons.len(),
        lessons.acked.len(),
        "{context}: lessons stored vs distinct acknowledged request_ids"
    );
    for (request_id, ack) in &lessons.acked {
        assert_eq!(
            by_request.get(request_id.as_str()),
            Some(&vec![ack.value]),
            "{context}: lesson {request_id}"
        );
    }
    let stored_sessions: Vec<(String, String)> =
        sqlx::query_as("SELECT id, issue_id FROM sessions WHERE project_id = $1")
            .bind(PROJECT)
            .fetch_all(&db)
            .await
            .unwrap();
    let mut issues: Vec<&str> = stored_sessions.iter().map(|(_, i)| i.as_str()).collect();
    issues.sort_unstable();
    issues.dedup();
    assert_eq!(
        issues.len(),
        stored_sessions.len(),
        "{context}: a SpawnSession request_id stored twice"
    );
    assert_eq!(
        stored_sessions.len(),
        sessions.acked.len(),
        "{context}: sessions stored vs acknowledged spawns"
    );
    let projects_stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(projects_stored, 1, "{context}: the project registered once");

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
        let segments = log.history.segments.len();
        assert!(
            segments >= 2,
            "{context}: watcher {home} never failed over ({segments} segment)"
        );
        assert!(
            log.served_by.windows(2).all(|pair| pair[0] != pair[1]),
            "{context}: watcher {home} resumed on the replica that failed: {:?}",
            log.served_by
        );
        let reached = log.history.segments.last().unwrap().resume_point();
        assert!(
            reached >= head_after_load,
            "{context}: watcher {home} stopped at {reached}, before the head {head_after_load}"
        );
        if let Err(err) = history::check(&log.history, &table, &[]) {
            panic!(
                "{context}: watcher {home} {:?} (segments on replicas {:?}): {err}",
                log.history.filter, log.served_by
            );
        }
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
    // Every finding of check 5 at once: they tell apart a lease that does
    // not exclude from bookkeeping that records what did not happen.
    let mut findings = Vec::new();
    for job in ["usage", "tool_errors", "reconciler"] {
        let runs: Vec<&Run> = processor_runs
            .iter()
            .chain(&reconciler_runs)
            .filter(|run| run.job == job)
            .collect();
        let minimum = if job == "reconciler" { 4 } else { 20 };
        assert!(
            runs.len() >= minimum && runs.iter().any(|run| run.start_time > last_kill),
            "{context}: {job} ran {} passes, none after the last failover: check 5 would prove nothing\n{tails}",
            runs.len()
        );
        let ran: Vec<(i64, i64, i64)> = runs
            .iter()
            .map(|run| (run.id, run.start_time, run.ran_until(&ends)))
            .collect();
        if let Some(overlap) = overlap(&ran) {
            findings.push(format!("{job} passes ran at once: {overlap}"));
        }
        let recorded: Vec<(i64, i64, i64)> = runs
            .iter()
            .filter_map(|run| Some((run.id, run.start_time, run.end_time?)))
            .collect();
        if let Some(overlap) = overlap(&recorded) {
            findings.push(format!(
                "{job} passes RECORDED (start_time, end_time) as running at once: {overlap}"
            ));
        }
    }
    let ended_twice: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT entity_kind, entity_id, COUNT(*) FROM change_log \
         WHERE entity_kind IN ('processor_run', 'reconciler_run') \
           AND payload->>'state' <> 'running' \
         GROUP BY entity_kind, entity_id HAVING COUNT(*) > 1 ORDER BY 1, 2",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    if !ended_twice.is_empty() {
        findings.push(format!(
            "{} passes ended twice in the change log (ended by another replica's start while \
             running, then by their own end), e.g. {:?}",
            ended_twice.len(),
            &ended_twice[..ended_twice.len().min(5)]
        ));
    }
    assert!(
        findings.is_empty(),
        "{context}: background passes:\n{}\n{tails}",
        findings.join("\n")
    );
}

/// Every lesson a replica lists: work_item_id -> id.
async fn list_lessons(channel: Channel) -> BTreeMap<String, i64> {
    let mut client = LessonsClient::new(channel);
    let mut lessons = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_lessons(ListLessonsRequest {
                page_size: 1000,
                page_token,
                ..ListLessonsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        for lesson in page.lessons {
            lessons.insert(lesson.work_item_id, lesson.id);
        }
        if page.next_page_token.is_empty() {
            return lessons;
        }
        page_token = page.next_page_token;
    }
}

/// A replica's ListEvents pages up to `head`: (seq, event_type).
async fn list_events(channel: Channel, head: i64) -> Vec<(i64, String)> {
    let mut client = EventsClient::new(channel);
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_events(ListEventsRequest {
                page_size: 1000,
                page_token,
                ..ListEventsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        events.extend(
            page.events
                .into_iter()
                .take_while(|event| event.seq <= head)
                .map(|event| (event.seq, event.event_type)),
        );
        if page.next_page_token.is_empty() || events.last().is_some_and(|e| e.0 >= head) {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Up to ten seqs of 1..=head missing from `seqs`.
fn first_holes(seqs: impl Iterator<Item = i64>, head: i64) -> Vec<i64> {
    let present: std::collections::HashSet<i64> = seqs.collect();
    (1..=head)
        .filter(|seq| !present.contains(seq))
        .take(10)
        .collect()
}

/// A background pass as its table records it.
#[derive(Debug, sqlx::FromRow)]
struct Run {
    job: String,
    id: i64,
    state: String,
    start_time: i64,
    end_time: Option<i64>,
    error: Option<String>,
}

impl Run {
    /// Left unfinished by a killed replica: RUNNING still, or ended by the
    /// next start of a replica.
    fn interrupted(&self) -> bool {
        self.state == "running"
            || self
                .error
                .as_deref()
                .is_some_and(|error| error.contains("stopped during the pass"))
    }

    /// Until when the pass surely ran. A finished pass: its end. An
    /// interrupted one ran until its replica was killed, which is no
    /// earlier than the first kill after its start (`kills`, in order; the
    /// last ones end the test), nor than its recorded end if that is
    /// earlier.
    fn ran_until(&self, kills: &[i64]) -> i64 {
        if !self.interrupted() {
            return self.end_time.expect("a finished pass has an end");
        }
        let killed = kills
            .iter()
            .copied()
            .find(|kill| *kill >= self.start_time)
            .unwrap_or(i64::MAX);
        self.end_time.unwrap_or(i64::MAX).min(killed)
    }
}

/// How many of the (id, start, end) intervals start while an earlier one
/// still runs, and the first such pair, described.
fn overlap(runs: &[(i64, i64, i64)]) -> Option<String> {
    let mut runs = runs.to_vec();
    runs.sort_by_key(|run| (run.1, run.2));
    let mut latest: Option<(i64, i64, i64)> = None;
    let mut first = None;
    let mut count = 0;
    for run in runs {
        if let Some(previous) = latest
            && run.1 < previous.2
        {
            count += 1;
            first.get_or_insert_with(|| {
                format!(
                    "pass {} [{}, {}] and pass {} [{}, {}]",
                    previous.0, previous.1, previous.2, run.0, run.1, run.2
                )
            });
        }
        if latest.is_none_or(|previous| run.2 > previous.2) {
            latest = Some(run);
        }
    }
    first.map(|first| format!("{count} started while another ran; first {first}"))
}

#[test]
fn the_overlap_check_finds_overlaps_and_only_them() {
    assert_eq!(overlap(&[(1, 0, 10), (2, 10, 20), (3, 25, 30)]), None);
    assert!(overlap(&[(1, 0, 10), (2, 9, 20)]).is_some());
    // Contained in a long pass, after a short one.
    assert!(overlap(&[(1, 0, 100), (2, 10, 20), (3, 50, 60)]).is_some());
    let killed = Run {
        job: "usage".into(),
        id: 1,
        state: "failed".into(),
        start_time: 5,
        end_time: Some(500),
        error: Some("interrupted: bosun stopped during the pass".into()),
    };
    assert_eq!(killed.ran_until(&[3, 40, 90]), 40);
}
