//! Unary calls: the transport ceiling (health Check), writes (RecordLesson,
//! ReportActivity) and reads (GetSession, ListLessons), each at several
//! concurrencies over a few connections.

use std::sync::Arc;

use bosun::pb;
use bosun::pb::lessons_client::LessonsClient;
use bosun::pb::sessions_client::SessionsClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::load::{Run, Window, closed_loop};

/// Connections the load is spread over ("a few", as clients would).
pub const CONNECTIONS: usize = 4;

/// Sessions ReportActivity and GetSession spread over.
pub const SESSIONS: usize = 256;

/// The channel worker `worker` uses.
fn pick(channels: &Arc<Vec<Channel>>, worker: usize) -> Channel {
    channels[worker % channels.len()].clone()
}

pub async fn health(channels: Arc<Vec<Channel>>, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, _| {
        let mut client = HealthClient::new(pick(&channels, worker));
        async move { client.check(HealthCheckRequest::default()).await.map(drop) }
    })
    .await
}

/// A lesson as an agent would record it; distinct work items, so the
/// journal's dedup never drops one.
pub fn lesson(worker: usize, n: u64) -> pb::Lesson {
    pb::Lesson {
        lesson_type: "flaky_test".into(),
        work_item_id: format!("BENCH-{worker}-{n}"),
        repo: "acme/payments".into(),
        stage: "testing".into(),
        agent: "claude-code".into(),
        root_cause: "the payment test depends on wall-clock time".into(),
        suggestion: "inject a clock into PaymentWindow".into(),
        source: pb::LessonSource::Manual as i32,
        ..Default::default()
    }
}

pub async fn record_lesson(channels: Arc<Vec<Channel>>, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let mut client = LessonsClient::new(pick(&channels, worker));
        async move {
            let request = pb::RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(lesson(worker, n)),
            };
            client.record_lesson(request).await.map(drop)
        }
    })
    .await
}

pub async fn report_activity(
    channels: Arc<Vec<Channel>>,
    sessions: Arc<Vec<String>>,
    concurrency: usize,
    window: Window,
) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let mut client = SessionsClient::new(pick(&channels, worker));
        let session_id = sessions[worker % sessions.len()].clone();
        let state = if n.is_multiple_of(2) {
            pb::ActivityState::Active
        } else {
            pb::ActivityState::Ready
        };
        async move {
            let request = pb::ReportActivityRequest {
                request_id: String::new(),
                session_id,
                state: state as i32,
                source: pb::ActivitySource::Hook as i32,
            };
            client.report_activity(request).await.map(drop)
        }
    })
    .await
}

pub async fn get_session(
    channels: Arc<Vec<Channel>>,
    sessions: Arc<Vec<String>>,
    concurrency: usize,
    window: Window,
) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let mut client = SessionsClient::new(pick(&channels, worker));
        let session_id = sessions[(worker + n as usize) % sessions.len()].clone();
        async move {
            client
                .get_session(pb::GetSessionRequest { session_id })
                .await
                .map(drop)
        }
    })
    .await
}

pub async fn list_lessons(channels: Arc<Vec<Channel>>, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, _| {
        let mut client = LessonsClient::new(pick(&channels, worker));
        async move {
            let page = client
                .list_lessons(pb::ListLessonsRequest {
                    page_size: 100,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if page.lessons.len() == 100 {
                Ok(())
            } else {
                Err(tonic::Status::data_loss(format!(
                    "a page of {} lessons, not 100",
                    page.lessons.len()
                )))
            }
        }
    })
    .await
}

/// Registers a project and starts `SESSIONS` sessions in it (spawned and
/// completed, so they take activity reports); returns their ids.
pub async fn sessions(channel: Channel) -> anyhow::Result<Vec<String>> {
    let mut client = SessionsClient::new(channel);
    client
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(pb::Project {
                id: "bench".into(),
                origin_url: "https://github.com/acme/payments.git".into(),
                ..Default::default()
            }),
        })
        .await?;
    let mut ids = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let session = client
            .spawn_session(pb::SpawnSessionRequest {
                project_id: "bench".into(),
                role: pb::Role::Developer as i32,
                harness: pb::Harness::ClaudeCode as i32,
                issue_id: format!("BENCH-{n}"),
                branch: format!("bench/{n}"),
                prompt: "fix the flaky payment test".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        client
            .complete_spawn(pb::CompleteSpawnRequest {
                session_id: session.id.clone(),
                runtime_handle_id: format!("tmux-{n}"),
                runtime_name: "tmux".into(),
                workspace_path: format!("/work/bench-{n}"),
                ..Default::default()
            })
            .await?;
        ids.push(session.id);
    }
    Ok(ids)
}
