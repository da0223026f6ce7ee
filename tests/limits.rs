//! `[limits]` through the real server: message size, calls and Watch
//! streams in flight (shed at once, never queued), deadlines, the HTTP/2
//! streams each connection advertises, and keepalive PINGs (those two in
//! `limits/connection.rs`).
//!
//! Calls are held in flight deterministically by blocking processors: a
//! RunProcessor call stays open until the test releases its pass.

mod common;
#[path = "limits/connection.rs"]
mod connection;
#[path = "common/transcripts.rs"]
mod transcripts;

use std::time::Duration;

use bosun::pb::{self, GetLessonStatsRequest, RecordLessonRequest, RunProcessorRequest};
use common::{TestServer, assert_error, error_metadata};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;
use transcripts::{Blocking, BlockingHandle, Transcripts, registration, settings, user};

/// Long enough that no scheduled pass starts during a test.
const NEVER: Duration = Duration::from_secs(3600);
/// Bounds every wait, so a broken limit fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen in time"))
}

/// A server with one blocking processor per name, each with a transcript
/// to block on.
async fn with_blockers(
    names: &[&'static str],
    tweak: impl FnOnce(&mut bosun::config::Config),
) -> (TestServer, Vec<BlockingHandle>, Transcripts) {
    let transcripts = Transcripts::new();
    transcripts.write("alice/s1.jsonl", &[user("s1", "go")]);
    let mut registrations = Vec::new();
    let mut handles = Vec::new();
    for name in names {
        let (blocker, handle) = Blocking::new(name);
        registrations.push(registration(blocker, settings(NEVER)));
        handles.push(handle);
    }
    let dir = transcripts.path();
    let server = TestServer::start_with_processors(
        move |config| {
            config.processors.transcripts_dir = dir;
            config.processors.usage.enabled = false;
            config.processors.tool_errors.enabled = false;
            tweak(config);
        },
        registrations,
    )
    .await;
    (server, handles, transcripts)
}

/// Starts RunProcessor(`name`) and waits until its pass is blocked inside
/// the call.
async fn hold(
    server: &TestServer,
    name: &'static str,
    handle: &mut BlockingHandle,
) -> tokio::task::JoinHandle<Result<pb::ProcessorRun, tonic::Status>> {
    let mut client = server.processors_client();
    let call = tokio::spawn(async move {
        client
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .map(tonic::Response::into_inner)
    });
    handle.wait_entered().await;
    call
}

async fn lesson_count(server: &TestServer) -> Result<i64, tonic::Status> {
    server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .map(|stats| stats.into_inner().total)
}

async fn metrics(server: &TestServer) -> String {
    reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oversized_message_is_refused_out_of_range_and_nothing_is_stored() {
    let server = TestServer::start_with(|config| config.limits.max_message_size = 8 * 1024).await;
    let record = |detail: String| {
        let mut lessons = server.lessons();
        async move {
            lessons
                .record_lesson(RecordLessonRequest {
                    request_id: String::new(),
                    lesson: Some(pb::Lesson {
                        lesson_type: "gate_failure".into(),
                        detail,
                        ..Default::default()
                    }),
                })
                .await
        }
    };
    let refused = record("x".repeat(12 * 1024)).await.unwrap_err();
    // tonic's decoder refuses it before reading it, with OUT_OF_RANGE.
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("too large"), "{refused:?}");
    assert_eq!(lesson_count(&server).await.unwrap(), 0, "nothing stored");

    // Under the limit each request passes; an answer over it is not sent.
    record("x".repeat(5 * 1024)).await.unwrap();
    record("x".repeat(5 * 1024)).await.unwrap();
    assert_eq!(lesson_count(&server).await.unwrap(), 2);
    let too_big_answer = server
        .lessons()
        .list_lessons(pb::ListLessonsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        too_big_answer.code(),
        Code::OutOfRange,
        "{too_big_answer:?}"
    );
}

#[tokio::test]
async fn calls_beyond_max_concurrent_calls_are_refused_at_once_and_admitted_when_done() {
    let (server, mut handles, _transcripts) = with_blockers(&["blocker_a", "blocker_b"], |c| {
        c.limits.max_concurrent_calls = 2;
    })
    .await;
    let first = hold(&server, "blocker_a", &mut handles[0]).await;
    let second = hold(&server, "blocker_b", &mut handles[1]).await;

    // Both permits are held: one more call is refused without waiting for
    // them (a queued call would hang here until released).
    let refused = within("the refusal", lesson_count(&server))
        .await
        .unwrap_err();
    assert_error(&refused, Code::ResourceExhausted, "OVERLOADED");
    assert_eq!(
        error_metadata(&refused, "limit").as_deref(),
        Some("max_concurrent_calls")
    );
    assert_eq!(error_metadata(&refused, "max").as_deref(), Some("2"));
    let retry = refused.get_error_details().retry_info().cloned();
    assert_eq!(
        retry.and_then(|info| info.retry_delay),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        refused
            .metadata()
            .get("grpc-retry-pushback-ms")
            .map(|v| v.to_str().unwrap()),
        Some("250")
    );
    // Health checks are always admitted.
    let health = server
        .health()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status(), ServingStatus::Serving);
    let figures = metrics(&server).await;
    assert!(
        figures.contains("bosun_grpc_server_shed_calls_total{limit=\"max_concurrent_calls\"} 1"),
        "{figures}"
    );
    assert!(
        figures.contains("bosun_grpc_server_calls_in_flight 2"),
        "{figures}"
    );

    for handle in &handles {
        handle.release();
    }
    within("the held calls", first).await.unwrap().unwrap();
    within("the held calls", second).await.unwrap().unwrap();
    assert_eq!(lesson_count(&server).await.unwrap(), 0, "admitted again");
}

#[tokio::test]
async fn watch_streams_have_a_budget_of_their_own() {
    let server = TestServer::start_with(|config| {
        config.limits.max_watch_streams = 1;
        config.limits.max_concurrent_calls = 1;
    })
    .await;
    let watch = || {
        let mut events = server.events();
        async move {
            events
                .watch(pb::WatchRequest {
                    after_seq: 0,
                    filter: None,
                })
                .await
        }
    };
    let open = watch().await.unwrap();
    let refused = watch().await.unwrap_err();
    assert_error(&refused, Code::ResourceExhausted, "OVERLOADED");
    assert_eq!(
        error_metadata(&refused, "limit").as_deref(),
        Some("max_watch_streams")
    );
    // The open stream takes nothing from the call budget (of one).
    assert_eq!(lesson_count(&server).await.unwrap(), 0);
    assert_eq!(lesson_count(&server).await.unwrap(), 0);

    drop(open);
    let mut open_streams = server.watchers.open_streams();
    within("the stream's end", open_streams.wait_for(|open| *open == 0))
        .await
        .unwrap();
    watch()
        .await
        .expect("the ended stream's permit is free again");
}

#[tokio::test]
async fn deadlines_give_deadline_exceeded_and_free_the_call() {
    let (server, mut handles, _transcripts) = with_blockers(&["blocker_a", "blocker_b"], |c| {
        c.limits.max_concurrent_calls = 1;
        c.limits.request_timeout = Duration::from_millis(500);
    })
    .await;
    // The client's deadline is shorter than the server's bound: it wins.
    // (tonic's client would race the server with its own timer and answer
    // CANCELLED locally, so this call is made on a raw HTTP/2 connection.)
    let answer = within(
        "the deadline",
        raw_run_processor(&server, "blocker_a", "100m"),
    )
    .await;
    assert_eq!(
        answer.get("grpc-status").unwrap(),
        "4",
        "DEADLINE_EXCEEDED: {answer:?}"
    );
    let message = answer.get("grpc-message").unwrap().to_str().unwrap();
    assert!(message.contains("100ms"), "{message}");
    handles[0].wait_entered().await;
    // The call was dropped: its permit (the only one) is free, though the
    // pass it started still runs (a pass always runs to its end).
    assert_eq!(lesson_count(&server).await.unwrap(), 0);

    // Without a client deadline, request_timeout bounds the call.
    let expired = within(
        "the server's bound",
        server
            .processors_client()
            .run_processor(RunProcessorRequest {
                name: "blocker_b".into(),
            }),
    )
    .await
    .unwrap_err();
    assert_error(&expired, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(expired.message().contains("500ms"), "{expired:?}");
    assert_eq!(lesson_count(&server).await.unwrap(), 0);
    for handle in &handles {
        handle.release();
    }
}

/// RunProcessor(`name`) with `grpc-timeout: timeout` on a raw HTTP/2
/// connection; returns the answer's headers (an error is trailers-only).
async fn raw_run_processor(server: &TestServer, name: &str, timeout: &str) -> http::HeaderMap {
    use prost::Message;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/bosun.v1.Processors/RunProcessor",
        server.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-timeout", timeout)
    .body(())
    .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    let message = RunProcessorRequest { name: name.into() }.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    body.send_data(frame.into(), true).unwrap();
    response.await.unwrap().headers().clone()
}
