//! Events.Watch guarantees, each checked by the history checker over what
//! real streams delivered and what the change log holds.

mod common;
#[path = "common/history.rs"]
mod history;

use bosun::storage::sql::{Json, query};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun::pb::{EventFilter, GetHeadRequest, Lesson, RecordLessonRequest, WatchRequest};
use common::{TestServer, assert_error, error_metadata};
use futures::future::join_all;
use history::{Received, Segment, WatcherHistory, check, read_table};
use proptest::prelude::*;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Code, Status};

/// Generous bound for "eventually" in these tests; never a sleep.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start() -> TestServer {
    TestServer::start_with(|config| config.events.progress_interval = Duration::from_millis(20))
        .await
}

async fn head(server: &TestServer) -> i64 {
    server
        .events()
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_seq
}

async fn write(
    server: &TestServer,
    lesson_type: &str,
    session_id: impl Into<String>,
    task_id: i64,
) {
    let lesson = Lesson {
        lesson_type: lesson_type.into(),
        session_id: session_id.into(),
        task_id,
        ..Lesson::default()
    };
    server.record(lesson).await;
}

/// One live Watch call whose messages are recorded as they arrive.
struct Live {
    task: JoinHandle<Option<Status>>,
    resume_rx: watch::Receiver<i64>,
    segment: Arc<Mutex<Segment>>,
}

impl Live {
    async fn open(
        server: &TestServer,
        after_seq: i64,
        filter: EventFilter,
    ) -> Result<Self, Status> {
        let mut stream = server
            .events()
            .watch(WatchRequest {
                after_seq,
                filter: Some(filter),
            })
            .await?
            .into_inner();
        let segment = Arc::new(Mutex::new(Segment {
            after_seq,
            received: Vec::new(),
        }));
        let (resume_tx, resume_rx) = watch::channel(after_seq);
        let recorded = segment.clone();
        let task = tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(message)) => {
                        recorded
                            .lock()
                            .unwrap()
                            .received
                            .push(Received::from(&message));
                        resume_tx.send_replace(message.resume_seq);
                    }
                    Ok(None) => return None,
                    Err(status) => return Some(status),
                }
            }
        });
        Ok(Self {
            task,
            resume_rx,
            segment,
        })
    }

    /// Waits until the stream has delivered everything up to `seq`.
    async fn reach(&mut self, seq: i64) {
        let reached =
            tokio::time::timeout(PATIENCE, self.resume_rx.wait_for(|resume| *resume >= seq))
                .await
                .map(|result| result.is_ok());
        match reached {
            Ok(open) => assert!(open, "stream ended before {seq}"),
            Err(_) => panic!(
                "stream stuck at {} short of {seq}",
                *self.resume_rx.borrow()
            ),
        }
    }

    /// Disconnects (drops the stream) and returns what it delivered.
    fn disconnect(self) -> Segment {
        self.task.abort();
        self.segment.lock().unwrap().clone()
    }

    /// Waits for the server to end the stream; returns its final status.
    async fn ended(self) -> (Segment, Option<Status>) {
        let status = tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("stream did not end")
            .unwrap();
        let segment = self.segment.lock().unwrap().clone();
        (segment, status)
    }
}

/// A watcher across disconnects and resumes.
struct Watcher {
    filter: EventFilter,
    done: Vec<Segment>,
    live: Option<Live>,
}

impl Watcher {
    async fn open(server: &TestServer, after_seq: i64, filter: EventFilter) -> Self {
        let live = Live::open(server, after_seq, filter.clone())
            .await
            .expect("watch");
        Self {
            filter,
            done: Vec::new(),
            live: Some(live),
        }
    }

    fn disconnect(&mut self) {
        if let Some(live) = self.live.take() {
            self.done.push(live.disconnect());
        }
    }

    async fn resume(&mut self, server: &TestServer) {
        if self.live.is_none() {
            let after = self.done.last().map_or(0, Segment::resume_point);
            self.live = Some(
                Live::open(server, after, self.filter.clone())
                    .await
                    .expect("resume"),
            );
        }
    }

    fn history(mut self) -> WatcherHistory {
        self.disconnect();
        WatcherHistory {
            filter: self.filter,
            segments: self.done,
        }
    }
}

fn filters() -> Vec<EventFilter> {
    vec![
        EventFilter::default(),
        EventFilter {
            event_type_prefixes: vec!["lesson.created".into()],
            ..Default::default()
        },
        EventFilter {
            session_id: "s-1".into(),
            ..Default::default()
        },
        EventFilter {
            task_id: 2,
            ..Default::default()
        },
        EventFilter {
            event_type_prefixes: vec!["lesson.updated".into(), "nothing.".into()],
            ..Default::default()
        },
        EventFilter {
            session_id: "s-0".into(),
            task_id: 1,
            ..Default::default()
        },
    ]
}

/// Begins a write transaction behind the server's back. SQLite: IMMEDIATE
/// takes the write lock up front, as bosun does (a deferred transaction
/// that upgrades fails at once when bosun is writing). PostgreSQL: the
/// first event locks the change-log counter.
async fn begin_external(conn: &mut bosun::storage::Conn<'_>) {
    let begin = if common::on_postgres() {
        "BEGIN"
    } else {
        "BEGIN IMMEDIATE"
    };
    query(begin).execute(conn).await.unwrap();
}

/// Writes one multi-event transaction behind the server's back (as another
/// process would): `size` lessons and an update of the last; returns its seqs.
async fn external_transaction(server: &TestServer, size: usize, session: usize) -> Vec<i64> {
    let mut db = server.direct().await;
    let mut conn = db.conn();
    begin_external(&mut conn).await;
    let before: i64 = query("SELECT COALESCE(MAX(seq), 0) FROM change_log")
        .fetch_scalar(&mut conn)
        .await
        .unwrap();
    let mut last = 0_i64;
    for _ in 0..size {
        last = query("INSERT INTO lessons (create_time, lesson_type, source, session_id, task_id) VALUES (1, 'external', 'manual', $1, $2) RETURNING id")
            .bind(format!("s-{session}"))
            .bind(session as i64 + 1)
            .fetch_scalar(&mut conn)
            .await
            .unwrap();
    }
    query("UPDATE lessons SET related_task = 'x' WHERE id = $1")
        .bind(last)
        .execute(&mut conn)
        .await
        .unwrap();
    let seqs: Vec<i64> = query("SELECT seq FROM change_log WHERE seq > $1 ORDER BY seq")
        .bind(before)
        .fetch_all_scalars(&mut conn)
        .await
        .unwrap();
    query("COMMIT").execute(&mut conn).await.unwrap();
    seqs
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        lesson_type: usize,
        session: usize,
        task: usize,
        concurrent: usize,
    },
    ExternalTransaction {
        size: usize,
        session: usize,
    },
    Open {
        filter: usize,
        from_head: bool,
    },
    Disconnect {
        watcher: usize,
    },
    Resume {
        watcher: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..4usize, 1..6usize)
            .prop_map(|(lesson_type, session, task, concurrent)| Op::Write { lesson_type, session, task, concurrent }),
        1 => (2..5usize, 0..3usize).prop_map(|(size, session)| Op::ExternalTransaction { size, session }),
        2 => (0..6usize, any::<bool>()).prop_map(|(filter, from_head)| Op::Open { filter, from_head }),
        1 => (0..8usize).prop_map(|watcher| Op::Disconnect { watcher }),
        1 => (0..8usize).prop_map(|watcher| Op::Resume { watcher }),
    ]
}

async fn run_ops(ops: Vec<Op>) -> Result<(), String> {
    let server = start().await;
    let filters = filters();
    let mut watchers: Vec<Watcher> = Vec::new();
    let mut transactions = Vec::new();
    for op in ops {
        match op {
            Op::Write {
                lesson_type,
                session,
                task,
                concurrent,
            } => {
                let lesson_type = ["gate_failure", "merge_hold", "transient_retry"][lesson_type];
                let session = format!("s-{session}");
                join_all(
                    (0..concurrent)
                        .map(|_| write(&server, lesson_type, session.clone(), task as i64)),
                )
                .await;
            }
            Op::ExternalTransaction { size, session } => {
                transactions.push(external_transaction(&server, size, session).await)
            }
            Op::Open { filter, from_head } => {
                let after = if from_head { head(&server).await } else { 0 };
                watchers.push(Watcher::open(&server, after, filters[filter].clone()).await);
            }
            Op::Disconnect { watcher } => {
                if let Some(watcher) = watchers.get_mut(watcher) {
                    watcher.disconnect();
                }
            }
            Op::Resume { watcher } => {
                if let Some(watcher) = watchers.get_mut(watcher) {
                    watcher.resume(&server).await;
                }
            }
        }
    }
    // A last write wakes every stream (external writes do not), then every
    // live stream must reach the head.
    write(&server, "sentinel", "s-9", 9).await;
    let head = head(&server).await;
    for watcher in &mut watchers {
        if let Some(live) = watcher.live.as_mut() {
            live.reach(head).await;
        }
    }
    let table = read_table(&mut server.direct().await.conn()).await;
    for (index, watcher) in watchers.into_iter().enumerate() {
        check(&watcher.history(), &table, &transactions)
            .map_err(|err| format!("watcher {index}: {err}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        // Each case starts a server: bound the shrinking a failure triggers.
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_of_writers_watchers_disconnects_and_resumes(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run_ops(ops)).map_err(TestCaseError::fail)?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_back_nobody_and_still_gets_everything() {
    let server = start().await;
    // The slow watcher's stream is open but nobody reads it yet.
    let mut slow_stream = server
        .events()
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut fast = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    // ~10 MB of events: far more than transport buffers hold, so the slow
    // stream really falls behind and must be caught up from the table.
    let root_cause = "x".repeat(4096);
    for chunk in 0..40 {
        join_all((0..64).map(|i| {
            let lesson = Lesson {
                lesson_type: "gate_failure".into(),
                session_id: format!("s-{}", (chunk + i) % 3),
                root_cause: root_cause.clone(),
                ..Lesson::default()
            };
            let mut client = server.lessons();
            async move {
                client
                    .record_lesson(RecordLessonRequest {
                        request_id: String::new(),
                        lesson: Some(lesson),
                    })
                    .await
                    .unwrap()
            }
        }))
        .await;
    }
    let head = head(&server).await;
    assert_eq!(
        head,
        40 * 64,
        "every write committed while a reader was stalled"
    );
    fast.reach(head).await;

    let mut slow = Segment::default();
    while slow.resume_point() < head {
        let message = tokio::time::timeout(PATIENCE, slow_stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        slow.received.push(Received::from(&message));
    }
    let table = read_table(&mut server.direct().await.conn()).await;
    for segment in [fast.disconnect(), slow] {
        check(
            &WatcherHistory {
                filter: EventFilter::default(),
                segments: vec![segment],
            },
            &table,
            &[],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_stream_resumes_across_a_server_restart_with_nothing_lost_or_repeated() {
    let mut server = start().await;
    let filter = EventFilter {
        session_id: "s-1".into(),
        ..Default::default()
    };
    let mut all = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    let mut mine = Watcher::open(&server, 0, filter.clone()).await;
    for i in 0..60 {
        write(&server, "gate_failure", format!("s-{}", i % 3), 1).await;
    }
    let before = head(&server).await;
    all.reach(before).await;
    mine.live.as_mut().unwrap().reach(before).await;

    // Stop mid-stream: each stream ends with a resumable error.
    let (all_before, status) = {
        let stopping = server.stop();
        let ((), ended) = tokio::join!(stopping, all.ended());
        ended
    };
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
    let (mine_before, status) = mine.live.take().unwrap().ended().await;
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
    mine.done.push(mine_before);

    server.restart().await;
    mine.resume(&server).await;
    let mut all_after = Live::open(&server, all_before.resume_point(), EventFilter::default())
        .await
        .unwrap();
    for i in 0..60 {
        write(&server, "merge_hold", format!("s-{}", i % 3), 2).await;
    }
    let after = head(&server).await;
    all_after.reach(after).await;
    mine.live.as_mut().unwrap().reach(after).await;

    let table = read_table(&mut server.direct().await.conn()).await;
    assert_eq!(table.len(), 120);
    let all_history = WatcherHistory {
        filter: EventFilter::default(),
        segments: vec![all_before, all_after.disconnect()],
    };
    check(&all_history, &table, &[]).unwrap();
    check(&mine.history(), &table, &[]).unwrap();
}

/// Waits for the compaction pass the server runs at start-up. On a loaded
/// machine it can start late, wait for a test's append to release the write
/// lock, and then compact the test's old events itself before the test's
/// own pass.
async fn startup_compaction_done(server: &TestServer) {
    let mut passes = server.compactor.passes();
    tokio::time::timeout(PATIENCE, passes.wait_for(|passes| *passes >= 1))
        .await
        .expect("the start-up compaction pass ran")
        .expect("the compactor is alive");
}

/// Appends `count` events dated at the epoch, i.e. far past any retention.
async fn append_old_events(server: &TestServer, count: usize) {
    append_old_events_sized(server, count, 0).await;
}

/// Like [`append_old_events`], each with an entity id `id_len` bytes long
/// (the id is sent on the wire; a test kind's payload is not).
async fn append_old_events_sized(server: &TestServer, count: usize, id_len: usize) {
    let entity_id = "0".repeat(id_len.max(1));
    let mut db = server.direct().await;
    let mut conn = db.conn();
    // The events are old: create_time 0 (on PostgreSQL the append trigger
    // stamps the time, so it is set back after).
    begin_external(&mut conn).await;
    for _ in 0..count {
        query("INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time) VALUES ('test.old', 'test', $1, $2, 0)")
            .bind(&entity_id)
            .bind(Json("{}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    query("UPDATE change_log SET create_time = 0 WHERE event_type = 'test.old'")
        .execute(&mut conn)
        .await
        .unwrap();
    query("COMMIT").execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn compaction_keeps_the_newest_10000_and_refuses_compacted_cursors() {
    let server = start().await;
    startup_compaction_done(&server).await;
    append_old_events(&server, 10_100).await;
    for _ in 0..5 {
        write(&server, "gate_failure", "s-0", 1).await;
    }
    let deleted = server.compactor.run_once().await.unwrap();
    assert_eq!(deleted, 105, "old history goes, the newest 10,000 stay");
    assert_eq!(
        server.compactor.run_once().await.unwrap(),
        0,
        "never below the newest 10,000"
    );
    let bounds = server
        .events()
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((bounds.oldest_seq, bounds.head_seq), (106, 10_105));

    // A compacted cursor: OUT_OF_RANGE with the oldest kept seq.
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: 50,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::OutOfRange, "CURSOR_COMPACTED");
    assert_eq!(
        error_metadata(&status, "oldest_seq").as_deref(),
        Some("106")
    );

    // A kept cursor continues exactly, and 0 means from the oldest kept.
    let table = read_table(&mut server.direct().await.conn()).await;
    for after_seq in [105, 0, 10_000] {
        let mut live = Live::open(&server, after_seq, EventFilter::default())
            .await
            .unwrap();
        live.reach(bounds.head_seq).await;
        let segment = live.disconnect();
        let first = segment
            .received
            .iter()
            .flat_map(|r| &r.seqs)
            .next()
            .copied();
        assert_eq!(
            first,
            Some(if after_seq == 0 { 106 } else { after_seq + 1 })
        );
        check(
            &WatcherHistory {
                filter: EventFilter::default(),
                segments: vec![segment],
            },
            &table,
            &[],
        )
        .unwrap();
    }
}

/// Appends runs of events, in one transaction: each run `(old, count)` is
/// dated at the epoch (far past any retention) when `old`, else now.
async fn append_aged_events(server: &TestServer, runs: &[(bool, usize)]) {
    let mut db = server.direct().await;
    let mut conn = db.conn();
    begin_external(&mut conn).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    for &(old, count) in runs {
        let age = if old { "old" } else { "young" };
        for _ in 0..count {
            query("INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time) VALUES ('test.aged', 'test', $1, $2, $3)")
                .bind(age)
                .bind(Json("{}"))
                .bind(now)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    // On PostgreSQL the append trigger stamps the time: set the old ones back.
    query("UPDATE change_log SET create_time = 0 WHERE event_type = 'test.aged' AND entity_id = 'old'")
        .execute(&mut conn)
        .await
        .unwrap();
    query("COMMIT").execute(&mut conn).await.unwrap();
}

/// With more events than the newest 10,000, compaction still goes by age:
/// it deletes the events older than the retention from the front, over
/// more than one of its 1,000-event transactions, and stops at the first
/// one that is not old enough, even when older ones follow it (a clock
/// stepped back): the kept log stays a gapless suffix.
#[tokio::test]
async fn compaction_deletes_by_age_from_the_front_and_stops_at_the_first_young_event() {
    let server = start().await;
    startup_compaction_done(&server).await;
    assert_eq!(head(&server).await, 0, "a fresh log");
    append_aged_events(
        &server,
        &[(true, 1_500), (false, 1), (true, 200), (false, 12_000)],
    )
    .await;
    assert_eq!(server.compactor.run_once().await.unwrap(), 1_500);
    assert_eq!(
        server.compactor.run_once().await.unwrap(),
        0,
        "the young event at 1,501 keeps the old ones behind it"
    );
    let bounds = server
        .events()
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((bounds.oldest_seq, bounds.head_seq), (1_501, 13_701));
}

#[tokio::test]
async fn a_stream_whose_cursor_is_compacted_under_it_ends_with_cursor_compacted() {
    let server = start().await;
    startup_compaction_done(&server).await;
    // 2 KiB events over a connection with 64 KiB flow-control windows: the
    // transport and the stream's queue hold about 1,300 of them (measured
    // with all the time in the world), so the unread stream below is parked
    // far before seq 6001 when compaction runs. (With small events, transport buffers could hold the whole
    // backlog: the stream would pass the compacted range before it was
    // deleted and rightly never fail.)
    append_old_events_sized(&server, 16_000, 2048).await;
    write(&server, "gate_failure", "s-0", 1).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    // Opened at the start, then not read: it is parked far behind.
    let mut stream = bosun::pb::events_client::EventsClient::new(channel)
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(server.compactor.run_once().await.unwrap(), 6_001);
    let mut seqs = Vec::new();
    let status = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
        {
            // A progress message means the stream caught up with the head,
            // which it cannot do across compacted history: fail rather than
            // read progress messages forever.
            Ok(Some(message)) if message.progress => panic!(
                "the stream caught up to {} without ending; it delivered up to {:?}",
                message.resume_seq,
                seqs.last()
            ),
            Ok(Some(message)) => seqs.extend(message.events.iter().map(|e| e.seq)),
            Ok(None) => panic!("the stream must end with an error"),
            Err(status) => break status,
        }
    };
    assert_error(&status, Code::OutOfRange, "CURSOR_COMPACTED");
    // Compaction deletes in small transactions: the stream may have seen any
    // of the intermediate oldest seqs, all beyond what it had delivered.
    let oldest: i64 = error_metadata(&status, "oldest_seq")
        .unwrap()
        .parse()
        .unwrap();
    // after_seq 0 starts at the oldest seq kept when the stream first reads,
    // which under load can come after compaction's first small transactions.
    let first = seqs.first().copied().unwrap_or(1);
    let last = seqs.last().copied().unwrap_or(0);
    assert!(
        oldest > last + 1 && oldest <= 6002,
        "oldest {oldest} after delivering {first}..={last}"
    );
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "what it got before was gapless"
    );
}

#[tokio::test]
async fn shutdown_ends_open_streams_instead_of_waiting_for_them() {
    let mut server =
        TestServer::start_with(|config| config.drain_timeout = Duration::from_secs(3600)).await;
    let live = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    let stopping = tokio::time::timeout(PATIENCE, server.stop());
    let (stopped, (_, status)) = tokio::join!(stopping, live.ended());
    stopped.expect("shutdown did not wait for the open stream");
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
}

#[tokio::test]
async fn streams_free_their_resources_when_the_client_goes_away() {
    let server = start().await;
    let mut open = server.watchers.open_streams();
    let streams: Vec<Live> =
        join_all((0..3).map(|_| Live::open(&server, 0, EventFilter::default())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::timeout(PATIENCE, open.wait_for(|n| *n == 3))
        .await
        .unwrap()
        .unwrap();
    let mut streams = streams.into_iter();
    streams.next().unwrap().disconnect();
    streams.next().unwrap().disconnect();
    tokio::time::timeout(PATIENCE, open.wait_for(|n| *n == 1))
        .await
        .expect("closed streams were not freed")
        .unwrap();
}

#[tokio::test]
async fn bad_watch_requests_are_refused() {
    let server = start().await;
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: -1,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    let filter = EventFilter {
        event_type_prefixes: vec!["Bad Prefix".into()],
        ..Default::default()
    };
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: 0,
            filter: Some(filter),
        })
        .await
        .unwrap_err();
    assert_eq!(common::bad_fields(&status), ["filter.event_type_prefixes"]);
}

#[tokio::test]
async fn an_idle_stream_gets_progress_messages_carrying_the_head() {
    let server = start().await;
    write(&server, "gate_failure", "s-0", 1).await;
    write(&server, "gate_failure", "s-0", 1).await;
    // Filtered to match nothing: only bookmarks can move its cursor.
    let filter = EventFilter {
        session_id: "nobody".into(),
        ..Default::default()
    };
    let mut stream = server
        .events()
        .watch(WatchRequest {
            after_seq: 0,
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner();
    let message = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(message.progress && message.events.is_empty());
    assert_eq!(message.resume_seq, 2, "a bookmark carries the head");
    write(&server, "gate_failure", "s-0", 1).await;
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(message.progress, "nothing matches the filter");
        assert!(
            message.resume_seq == 2 || message.resume_seq == 3,
            "{message:?}"
        );
        if message.resume_seq == 3 {
            break;
        }
    }
}
