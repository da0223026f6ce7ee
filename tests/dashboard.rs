//! The web dashboard on `http_addr`: the embedded pages with their content
//! types and caching headers, and bosun's API as gRPC-Web (the framing a
//! browser sends, built here by hand) through the same front door as gRPC:
//! refused without a token, answered with one, Watch streamed. The browser
//! itself is driven by dashboard/test (scripts/test-dashboard).

mod common;

use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use tokio_util::bytes::{Buf, BufMut, Bytes, BytesMut};

use bosun::pb::{self, GetHeadResponse, Lesson, RecordLessonRequest, WatchRequest, WatchResponse};
use common::{ADMIN_TOKEN, READ_TOKEN, TestServer, with_token};

const GRPC_WEB: &str = "application/grpc-web+proto";

/// One gRPC-Web frame: flag 0 (a message) or 0x80 (trailers), length, bytes.
fn frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.put_u8(flag);
    out.put_u32(u32::try_from(payload.len()).expect("small message"));
    out.put_slice(payload);
    out.freeze()
}

/// Splits a gRPC-Web response body into its messages and its trailers text.
fn frames(mut body: Bytes) -> (Vec<Bytes>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(&payload));
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

async fn grpc_web(
    server: &TestServer,
    method: &str,
    message: impl Message,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/{method}", server.http_addr))
        .header(CONTENT_TYPE, GRPC_WEB)
        .header("x-grpc-web", "1")
        .body(frame(0, &message.encode_to_vec()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn pages_are_served_with_their_content_types_and_revalidate() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "<div id=\"app\">"),
        (
            "/assets/app.js",
            "text/javascript; charset=utf-8",
            "bosun.token",
        ),
        ("/assets/app.css", "text/css; charset=utf-8", ".card"),
    ] {
        let url = format!("http://{}{path}", server.http_addr);
        let response = client.get(&url).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let etag = response.headers()[ETAG].clone();
        let body = response.text().await.expect("body");
        assert!(body.contains(marker), "{path} has {marker}");

        let again = client
            .get(&url)
            .header(IF_NONE_MATCH, etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let missing = reqwest::get(format!("http://{}/assets/nope.js", server.http_addr))
        .await
        .expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn grpc_web_calls_pass_the_same_front_door_as_grpc() {
    let server = TestServer::start_with_auth().await;
    let head = "bosun.v1.Events/GetHead";

    let refused = grpc_web(&server, head, pb::GetHeadRequest {}, None).await;
    assert_eq!(refused.status(), StatusCode::OK);
    assert_eq!(refused.headers()["grpc-status"], "16", "UNAUTHENTICATED");

    let wrong = grpc_web(
        &server,
        head,
        pb::GetHeadRequest {},
        Some("wrong-token-0123456789"),
    )
    .await;
    assert_eq!(wrong.headers()["grpc-status"], "16", "UNAUTHENTICATED");

    server
        .lessons()
        .record_lesson(with_token(
            RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(Lesson {
                    lesson_type: "flaky_test".into(),
                    root_cause: "a clock in the test".into(),
                    ..Lesson::default()
                }),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("record a lesson");

    let answered = grpc_web(&server, head, pb::GetHeadRequest {}, Some(READ_TOKEN)).await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.headers()[CONTENT_TYPE], GRPC_WEB);
    let (messages, trailers) = frames(answered.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let head = GetHeadResponse::decode(messages[0].clone()).expect("GetHeadResponse");
    assert!(head.head_seq >= 1, "the lesson's event is in the log");

    // A read token may read, and only read.
    let record = grpc_web(
        &server,
        "bosun.v1.Lessons/RecordLesson",
        RecordLessonRequest::default(),
        Some(READ_TOKEN),
    )
    .await;
    assert_eq!(record.headers()["grpc-status"], "7", "PERMISSION_DENIED");
}

#[tokio::test]
async fn watch_streams_over_grpc_web() {
    let server = TestServer::start().await;
    server
        .record(Lesson {
            lesson_type: "flaky_test".into(),
            root_cause: "a clock in the test".into(),
            ..Lesson::default()
        })
        .await;
    let mut response = grpc_web(
        &server,
        "bosun.v1.Events/Watch",
        WatchRequest::default(),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The stream stays open: read until the first whole message arrives.
    let mut body = BytesMut::new();
    let message = loop {
        let chunk = response.chunk().await.expect("chunk").expect("stream open");
        body.extend_from_slice(&chunk);
        if body.len() >= 5 {
            let len = u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")) as usize;
            if body.len() >= 5 + len {
                assert_eq!(body[0], 0, "a message frame");
                break WatchResponse::decode(&body[5..5 + len]).expect("WatchResponse");
            }
        }
    };
    let types: Vec<_> = message
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["lesson.created"]);
}

#[tokio::test]
async fn plain_grpc_on_the_http_listener_is_turned_away() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/bosun.v1.Events/GetHead",
            server.http_addr
        ))
        .header(CONTENT_TYPE, "application/grpc")
        .body(frame(0, &[]))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(response.text().await.unwrap().contains("grpc_addr"));
}

#[tokio::test]
async fn shutdown_ends_a_dashboard_watch_instead_of_waiting_for_it() {
    let mut server = TestServer::start().await;
    let mut response = grpc_web(
        &server,
        "bosun.v1.Events/Watch",
        WatchRequest::default(),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    server.stop().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < server.config.drain_timeout / 2,
        "stopped after {elapsed:?}, the drain timeout is {:?}",
        server.config.drain_timeout
    );
    // The stream ended with bosun's SHUTTING_DOWN in its trailers.
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        body.extend_from_slice(&chunk);
    }
    let (_, trailers) = frames(body.freeze());
    assert!(
        trailers.contains("grpc-status:14"),
        "UNAVAILABLE: {trailers}"
    );
}
