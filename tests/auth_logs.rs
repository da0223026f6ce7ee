//! Tokens never appear in logs: every log line of a server at TRACE level
//! (bosun's, tonic's, hyper's, h2's) is captured while each role calls, a
//! wrong token and malformed headers are refused, and a bad token
//! configuration is rejected; no token's text may appear in any of it.
//!
//! The subscriber is process-wide, so this file holds one test.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bosun::config::{Config, TokenConfig};
use bosun::pb::{ListLessonsRequest, RecordLessonRequest};
use common::{ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, with_token};

/// Every log line, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start_with_auth().await;
    for token in [ADMIN_TOKEN, AGENT_TOKEN, WEBHOOK_TOKEN, READ_TOKEN] {
        let listed = server
            .lessons()
            .list_lessons(with_token(ListLessonsRequest::default(), token))
            .await;
        assert!(listed.is_ok(), "{listed:?}");
        // Denied for all but agent and admin.
        let _ = server
            .lessons()
            .record_lesson(with_token(RecordLessonRequest::default(), token))
            .await;
    }
    let wrong = "wrong-token-0123456789";
    let mut malformed = tonic::Request::new(ListLessonsRequest::default());
    malformed.metadata_mut().insert(
        "authorization",
        format!("Basic {ADMIN_TOKEN}").parse().unwrap(),
    );
    for request in [with_token(ListLessonsRequest::default(), wrong), malformed] {
        let refused = server.lessons().list_lessons(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    let short = "short-secret";
    let mut config = Config::default();
    config.auth.tokens = vec![TokenConfig {
        name: "ops".into(),
        role: bosun::auth::Role::Admin,
        token: short.into(),
    }];
    let error = config.validate().expect_err("a short token is refused");
    tracing::error!(%error, config = ?config, "refusing to start");

    let logs = logs.text();
    assert!(
        logs.contains("refusing to start") && logs.contains("lessons.list"),
        "the capture works: {} bytes",
        logs.len()
    );
    for token in [
        ADMIN_TOKEN,
        AGENT_TOKEN,
        WEBHOOK_TOKEN,
        READ_TOKEN,
        wrong,
        short,
    ] {
        assert!(!logs.contains(token), "{token} is in the logs");
    }
}
