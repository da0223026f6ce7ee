//! The crash test's load and its ledger: writers that record what the
//! server acknowledged (and what it never answered), and watchers that
//! record every message they received, segment by segment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun::pb::events_client::EventsClient;
use bosun::pb::lessons_client::LessonsClient;
use bosun::pb::sessions_client::SessionsClient;
use bosun::pb::{
    ActivitySource, ActivityState, EventFilter, Harness, Lesson, Project, RecordLessonRequest,
    RegisterProjectRequest, ReportActivityRequest, SpawnSessionRequest, WatchRequest,
};
use futures::future::join_all;
use sqlx::SqliteConnection;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::history::{Received, Segment};

/// Concurrent RecordLesson writers per round.
const LESSON_WRITERS: usize = 3;
/// Concurrent session writers (spawn, then report activity) per round.
const SESSION_WRITERS: usize = 2;
const PROJECT: &str = "crash";

/// What the server acknowledged, and what it was asked but never answered.
#[derive(Default)]
pub struct Acked {
    /// request_id (also the lesson's work_item_id) -> lesson id.
    pub lessons: BTreeMap<String, i64>,
    unanswered_lessons: Vec<String>,
    /// session id -> the states it may be in: the last acknowledged one and
    /// any reported after it without an answer.
    pub sessions: BTreeMap<String, Vec<&'static str>>,
    /// Spawn request ids (also the session's issue_id) never answered.
    unanswered_spawns: Vec<String>,
    /// How many unanswered requests were retried after a restart.
    pub retried: usize,
}

impl Acked {
    /// Acknowledged writes are stored; no request_id is stored twice.
    pub async fn check_stored(&self, conn: &mut SqliteConnection, context: &str) {
        let lessons: BTreeMap<String, i64> =
            sqlx::query_as::<_, (String, i64)>("SELECT work_item_id, id FROM lessons")
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .into_iter()
                .collect();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lessons")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            rows as usize,
            lessons.len(),
            "{context}: a lesson stored twice"
        );
        for (request_id, id) in &self.lessons {
            assert_eq!(
                lessons.get(request_id),
                Some(id),
                "{context}: lost {request_id}"
            );
        }
        let sessions: BTreeMap<String, (String, String)> =
            sqlx::query_as::<_, (String, String, String)>(
                "SELECT id, issue_id, state FROM sessions",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, issue, state)| (id, (issue, state)))
            .collect();
        let mut spawn_ids: Vec<&String> = sessions.values().map(|(issue, _)| issue).collect();
        spawn_ids.sort();
        spawn_ids.dedup();
        assert_eq!(
            spawn_ids.len(),
            sessions.len(),
            "{context}: a spawn stored twice"
        );
        for (id, states) in &self.sessions {
            let (_, state) = sessions
                .get(id)
                .unwrap_or_else(|| panic!("{context}: lost session {id}"));
            assert!(
                states.contains(&state.as_str()),
                "{context}: session {id} is {state}, expected one of {states:?}"
            );
        }
    }

    /// Retries every request the kill left unanswered, with its request_id,
    /// and one answered lesson: each must answer OK, the answered one with
    /// its original lesson.
    pub async fn retry_unanswered(&mut self, channel: &Channel) {
        let mut lessons = LessonsClient::new(channel.clone());
        if let Some((request_id, id)) = self.lessons.iter().next_back() {
            let again = record(&mut lessons, request_id)
                .await
                .expect("retry answered");
            assert_eq!(again, *id, "a repeated request_id returns the first result");
        }
        for request_id in std::mem::take(&mut self.unanswered_lessons) {
            let id = record(&mut lessons, &request_id)
                .await
                .expect("retry lesson");
            self.lessons.insert(request_id, id);
            self.retried += 1;
        }
        let mut sessions = SessionsClient::new(channel.clone());
        register_project(&mut sessions)
            .await
            .expect("register project");
        for request_id in std::mem::take(&mut self.unanswered_spawns) {
            let id = spawn(&mut sessions, &request_id)
                .await
                .expect("retry spawn");
            // Stored before the kill (then maybe reported on) or just now.
            self.sessions
                .entry(id)
                .or_insert_with(|| vec!["not_started"]);
            self.retried += 1;
        }
    }
}

/// Everything one watcher received, across kills and resumes.
pub struct Watcher {
    pub filter: EventFilter,
    pub segments: Vec<Segment>,
}

impl Watcher {
    pub fn new(filter: EventFilter) -> Self {
        Self {
            filter,
            segments: Vec::new(),
        }
    }

    fn resume_point(&self) -> i64 {
        self.segments.last().map_or(0, Segment::resume_point)
    }

    /// Opens a segment after the last resume_seq and records its messages
    /// until the stream ends (it ends when bosun dies).
    fn follow(&self, channel: &Channel) -> (Arc<Mutex<Segment>>, tokio::task::JoinHandle<()>) {
        let segment = Arc::new(Mutex::new(Segment {
            after_seq: self.resume_point(),
            received: Vec::new(),
        }));
        let request = WatchRequest {
            after_seq: self.resume_point(),
            filter: Some(self.filter.clone()),
        };
        let mut events = EventsClient::new(channel.clone());
        let recorded = segment.clone();
        let task = tokio::spawn(async move {
            let Ok(response) = events.watch(request).await else {
                return;
            };
            let mut stream = response.into_inner();
            while let Ok(Some(message)) = stream.message().await {
                recorded
                    .lock()
                    .unwrap()
                    .received
                    .push(Received::from(&message));
            }
        });
        (segment, task)
    }

    /// One more segment, read until it has delivered up to `head`.
    pub async fn catch_up(&mut self, channel: &Channel, head: i64, patience: Duration) {
        let mut stream = EventsClient::new(channel.clone())
            .watch(WatchRequest {
                after_seq: self.resume_point(),
                filter: Some(self.filter.clone()),
            })
            .await
            .unwrap()
            .into_inner();
        let mut segment = Segment {
            after_seq: self.resume_point(),
            received: Vec::new(),
        };
        while segment.resume_point() < head {
            let message = tokio::time::timeout(patience, stream.message())
                .await
                .expect("watcher caught up")
                .unwrap()
                .expect("stream open");
            segment.received.push(Received::from(&message));
        }
        self.segments.push(segment);
    }
}

/// Runs writers and watchers against bosun until `deadline`, calls `kill`,
/// then records what each writer got answered and what each watcher got.
pub async fn run_load(
    channel: &Channel,
    round: usize,
    acked: &mut Acked,
    watchers: &mut [Watcher],
    kill: impl FnOnce(),
    deadline: Instant,
) {
    let following: Vec<_> = watchers.iter().map(|w| w.follow(channel)).collect();
    let lesson_writers: Vec<_> = (0..LESSON_WRITERS)
        .map(|writer| tokio::spawn(write_lessons(channel.clone(), round, writer)))
        .collect();
    let session_writers: Vec<_> = (0..SESSION_WRITERS)
        .map(|writer| tokio::spawn(write_sessions(channel.clone(), round, writer)))
        .collect();
    tokio::time::sleep_until(deadline).await;
    kill();
    for writer in join_all(lesson_writers).await {
        let (answered, unanswered) = writer.unwrap();
        acked.lessons.extend(answered);
        acked.unanswered_lessons.extend(unanswered);
    }
    for writer in join_all(session_writers).await {
        let SessionLedger {
            states,
            unanswered_spawn,
        } = writer.unwrap();
        for (id, possible) in states {
            acked.sessions.insert(id, possible);
        }
        acked.unanswered_spawns.extend(unanswered_spawn);
    }
    for (watcher, (segment, task)) in watchers.iter_mut().zip(following) {
        task.await.unwrap();
        let segment = segment.lock().unwrap().clone();
        watcher.segments.push(segment);
    }
}

/// Records lessons until a call fails; returns the answered ones and the
/// one left unanswered.
async fn write_lessons(
    channel: Channel,
    round: usize,
    writer: usize,
) -> (Vec<(String, i64)>, Option<String>) {
    let mut lessons = LessonsClient::new(channel);
    let mut answered = Vec::new();
    for n in 0.. {
        let request_id = format!("lesson-{round}-{writer}-{n}");
        match record(&mut lessons, &request_id).await {
            Ok(id) => answered.push((request_id, id)),
            Err(_) => return (answered, Some(request_id)),
        }
    }
    unreachable!("the loop ends with the server")
}

struct SessionLedger {
    states: Vec<(String, Vec<&'static str>)>,
    unanswered_spawn: Option<String>,
}

/// Spawns sessions and reports activity on each until a call fails.
async fn write_sessions(channel: Channel, round: usize, writer: usize) -> SessionLedger {
    let mut sessions = SessionsClient::new(channel);
    let mut ledger = SessionLedger {
        states: Vec::new(),
        unanswered_spawn: None,
    };
    if register_project(&mut sessions).await.is_err() {
        return ledger;
    }
    for n in 0.. {
        let request_id = format!("spawn-{round}-{writer}-{n}");
        let Ok(id) = spawn(&mut sessions, &request_id).await else {
            ledger.unanswered_spawn = Some(request_id);
            return ledger;
        };
        let mut possible = vec!["not_started"];
        for (step, (state, stored)) in [
            (ActivityState::Active, "working"),
            (ActivityState::Idle, "idle"),
            (ActivityState::Active, "working"),
        ]
        .into_iter()
        .enumerate()
        {
            let reported = sessions
                .report_activity(ReportActivityRequest {
                    request_id: format!("{request_id}-activity-{step}"),
                    session_id: id.clone(),
                    state: state.into(),
                    source: ActivitySource::Hook.into(),
                })
                .await;
            if reported.is_err() {
                possible.push(stored);
                ledger.states.push((id, possible));
                return ledger;
            }
            possible = vec![stored];
        }
        ledger.states.push((id, possible));
    }
    unreachable!("the loop ends with the server")
}

async fn record(
    lessons: &mut LessonsClient<Channel>,
    request_id: &str,
) -> Result<i64, tonic::Status> {
    let response = lessons
        .record_lesson(RecordLessonRequest {
            request_id: request_id.into(),
            lesson: Some(Lesson {
                lesson_type: "gate_failure".into(),
                work_item_id: request_id.into(),
                ..Lesson::default()
            }),
        })
        .await?;
    Ok(response.into_inner().lesson.expect("lesson").id)
}

async fn register_project(sessions: &mut SessionsClient<Channel>) -> Result<(), tonic::Status> {
    sessions
        .register_project(RegisterProjectRequest {
            request_id: "register-crash".into(),
            project: Some(Project {
                id: PROJECT.into(),
                origin_url: "https://github.com/acme/crash.git".into(),
                ..Project::default()
            }),
        })
        .await
        .map(|_| ())
}

async fn spawn(
    sessions: &mut SessionsClient<Channel>,
    request_id: &str,
) -> Result<String, tonic::Status> {
    let session = sessions
        .spawn_session(SpawnSessionRequest {
            request_id: request_id.into(),
            project_id: PROJECT.into(),
            issue_id: request_id.into(),
            harness: Harness::ClaudeCode.into(),
            ..Default::default()
        })
        .await?;
    Ok(session.into_inner().id)
}
