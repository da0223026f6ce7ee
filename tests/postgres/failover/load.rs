//! The load: lessons and sessions written through any serving replica,
//! and agents writing transcripts for the processor passes.

use super::*;

/// One acknowledged write.
#[derive(Debug, Clone)]
pub struct Ack<T> {
    pub value: T,
    pub replica: usize,
}

#[derive(Default)]
pub struct LessonLedger {
    /// request_id (also the lesson's work_item_id) -> lesson id.
    pub acked: BTreeMap<String, Ack<i64>>,
    /// Requests that needed more than one call.
    pub retried: usize,
    /// Answered requests sent again to another replica.
    pub repeated: usize,
    pub mismatches: Vec<String>,
}

pub async fn record(channel: Channel, request_id: String) -> Result<i64, Status> {
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
pub async fn write_lessons(ctx: Ctx, writer: usize, seed: u64) -> LessonLedger {
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
pub struct SessionAck {
    pub spawn_request: String,
    pub state: i32,
}

#[derive(Default)]
pub struct SessionLedger {
    /// session id -> its last acknowledged state.
    pub acked: BTreeMap<String, Ack<SessionAck>>,
    pub retried: usize,
    pub mismatches: Vec<String>,
}

pub async fn register_project(channel: Channel) -> Result<Project, Status> {
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

pub async fn spawn(channel: Channel, request_id: String) -> Result<bosun::pb::Session, Status> {
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

pub async fn complete(
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

pub async fn report(
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
pub async fn write_sessions(ctx: Ctx, writer: usize, seed: u64) -> (SessionLedger, Project) {
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

/// An agent writing its transcripts, so processor passes have work.
pub async fn agents(transcripts: PathBuf, stop: Arc<AtomicBool>, seed: u64) {
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

pub fn assistant_line(session: &str, n: u64) -> String {
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
