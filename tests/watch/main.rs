//! Events.Watch guarantees, each checked by the history checker over what
//! real streams delivered and what the change log holds.
//! - properties: random interleavings of writers, watchers, disconnects and
//!   resumes; a slow reader; a resume across a restart;
//! - compaction: what retention deletes, and streams whose cursor it took;
//! - streams: shutdown, clients that go away, bad requests, progress.
//!
//! The helpers below (live streams, watchers, writes behind the server's
//! back) are shared by those files.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/history.rs"]
mod history;

mod compaction;
mod properties;
mod streams;

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
