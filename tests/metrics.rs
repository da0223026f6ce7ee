//! `GET /metrics` through the real server: content negotiation (OpenMetrics
//! by default and for Prometheus' own scrapes, the Prometheus text format
//! 0.0.4 for a client asking for `text/plain;version=0.0.4`), and the
//! figures SPEC §10 names: events delivered to Watch streams, processor and
//! reconciler passes (counts by outcome, durations).

mod common;

use std::time::Duration;

use bosun::pb::{self, RunProcessorRequest, WatchRequest};
use common::TestServer;
use tokio_stream::StreamExt;

const PROMETHEUS_SCRAPE: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
    application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The content type and body of `/metrics` for `accept`.
async fn scrape(server: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("http://{}/metrics", server.http_addr));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.unwrap())
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn metrics_are_negotiated_like_the_prometheus_client_libraries() {
    let server = TestServer::start().await;
    for accept in [
        None,
        Some(PROMETHEUS_SCRAPE),
        Some("application/openmetrics-text"),
    ] {
        let (content_type, text) = scrape(&server, accept).await;
        assert!(
            content_type.starts_with("application/openmetrics-text; version=1.0.0"),
            "{accept:?}: {content_type}"
        );
        assert!(text.ends_with("# EOF\n"), "{accept:?}");
        assert!(has_line(&text, "# TYPE bosun_grpc_server_calls counter"));
    }
    for accept in [
        "text/plain;version=0.0.4",
        "text/plain;version=0.0.4;q=1,*/*;q=0.1",
    ] {
        let (content_type, text) = scrape(&server, Some(accept)).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            has_line(&text, "# TYPE bosun_grpc_server_calls_total counter"),
            "{text}"
        );
        assert!(
            has_line(
                &text,
                "# TYPE bosun_grpc_server_call_duration_seconds histogram"
            ),
            "{text}"
        );
        assert!(
            has_line(&text, "# TYPE bosun_watch_streams_open gauge"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn watch_deliveries_and_passes_are_counted() {
    let transcripts = tempfile::tempdir().unwrap();
    let dir = transcripts.path().to_path_buf();
    let server = TestServer::start_with(move |config| {
        config.processors.transcripts_dir = dir;
    })
    .await;
    let (_, before) = scrape(&server, None).await;
    assert!(
        has_line(&before, "bosun_watch_events_delivered_total 0"),
        "{before}"
    );

    let mut stream = server
        .events()
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "usage".into(),
        })
        .await
        .unwrap();
    pb::reconciler_client::ReconcilerClient::new(server.channel.clone())
        .run_once(pb::RunOnceRequest::default())
        .await
        .unwrap();
    // processor_run.started, processor_run.succeeded, reconciler_run.started
    // and reconciler_run.succeeded at least.
    let mut seen = 0;
    while seen < 4 {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("events in time")
            .expect("the stream is open")
            .unwrap();
        seen += message.events.len();
    }

    let (_, text) = scrape(&server, None).await;
    let delivered: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("bosun_watch_events_delivered_total "))
        .expect("the delivered counter")
        .parse()
        .unwrap();
    assert!(delivered >= seen as u64, "{delivered} < {seen}");
    for line in [
        r#"bosun_processor_passes_total{processor="usage",trigger="manual",state="succeeded"} 1"#,
        r#"bosun_processor_pass_duration_seconds_count{processor="usage",trigger="manual"} 1"#,
        r#"bosun_reconciler_passes_total{trigger="manual",state="succeeded"} 1"#,
        r#"bosun_reconciler_pass_duration_seconds_count{trigger="manual"} 1"#,
    ] {
        assert!(has_line(&text, line), "missing {line:?} in:\n{text}");
    }
}
