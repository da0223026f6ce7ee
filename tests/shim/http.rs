//! The shim's HTTP edge: signatures (GitHub's published vector, wrong and
//! missing ones), sources without a secret, oversize and malformed bodies,
//! event kinds it does not use, dedup across a restart, health and metrics.

use super::*;

#[tokio::test]
async fn done_when_a_signed_check_run_failure_makes_the_session_ci_failed_once_and_a_tampered_copy_gets_401()
 {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let answer = server.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let now = server.session(&session.id).await;
    assert_eq!(now.display_status, pb::DisplayStatus::CiFailed as i32);
    let pr = now.pull_request.expect("a pull request");
    assert_eq!(pr.number, 2);
    assert_eq!(pr.url, "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(pr.head_sha, HELLO_HEAD);
    assert_eq!(pr.ci_state, pb::PullRequestCiState::Failing as i32);
    assert_eq!(pr.checks.len(), 1);
    assert_eq!(pr.checks[0].name, "Octocoders-linter");
    assert_eq!(pr.checks[0].status, pb::CheckStatus::Failed as i32);
    let reactions = server.reactions(&session.id, "ci-failed").await;
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    let nudge = &reactions[0];
    assert_eq!(nudge.status, pb::ReactionStatus::Pending as i32);
    assert_eq!(nudge.target, pb::ReactionTarget::Agent as i32);
    assert_eq!(
        (nudge.nudge_count, nudge.dedup_key.as_str()),
        (1, HELLO_HEAD)
    );
    assert!(
        nudge.message.contains("Octocoders-linter failed"),
        "{}",
        nudge.message
    );
    let head = server.head().await;

    let again = server.deliver(&failure).await;
    assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    assert_eq!(
        server.head().await,
        head,
        "the same delivery again changes nothing"
    );
    assert_eq!(server.reactions(&session.id, "ci-failed").await, reactions);

    let tampered = failure.with_id("a-tampered-copy").tampered();
    let refused = server.deliver(&tampered).await;
    assert_eq!(
        (refused.status, refused.outcome.as_str()),
        (401, "bad_signature")
    );
    assert!(refused.detail.contains("does not match"), "{refused:?}");
    assert_eq!(server.head().await, head, "a tampered copy changes nothing");
}

#[tokio::test]
async fn githubs_published_signature_vector_passes_over_http() {
    let server = TestServer::start_with(|config| {
        config.webhooks.github.secret = "It's a Secret to Everybody".into();
    })
    .await;
    let mut vector = Delivery::github("check_run", "vector", b"Hello, World!".to_vec());
    vector.signature =
        Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into());
    let answer = server.deliver(&vector).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (400, "bad_request"),
        "the signature is accepted; the body is not JSON: {answer:?}"
    );
    let wrong = server.deliver(&vector.signed_with(GITHUB_SECRET)).await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn wrong_or_missing_signatures_get_401_and_change_nothing() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let head = server.head().await;
    let good = check_run_failure("d-1");
    let mut missing = good.clone();
    missing.signature = None;
    let mut unprefixed = good.clone();
    unprefixed.signature = good
        .signature
        .as_ref()
        .map(|s| s.trim_start_matches("sha256=").to_string());
    let gitea_signed_for_github =
        Delivery::gitea("status", "d-2", fixture("gitea/status.failure.json"))
            .signed_with(GITHUB_SECRET);
    let cases = [
        (
            "wrong secret",
            good.clone().signed_with("not-the-secret"),
            "does not match",
        ),
        ("no signature", missing, "missing"),
        ("no sha256= prefix", unprefixed, "not a hex"),
        (
            "another source's secret",
            gitea_signed_for_github,
            "does not match",
        ),
    ];
    for (name, delivery, says) in cases {
        let answer = server.deliver(&delivery).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        assert!(answer.detail.contains(says), "{name}: {answer:?}");
    }
    assert_eq!(server.head().await, head, "nothing was written");
    let accepted = server.deliver(&good).await;
    assert_eq!(
        accepted.status, 200,
        "refusals are not remembered: {accepted:?}"
    );
}

#[tokio::test]
async fn a_source_without_a_secret_is_refused_unless_explicitly_insecure() {
    let server = TestServer::start_with(|config| {
        config.webhooks.github.secret = GITHUB_SECRET.into();
        config.webhooks.plane.insecure = true;
    })
    .await;
    let gitea = Delivery::gitea("status", "g-1", fixture("gitea/status.failure.json"));
    let refused = server.deliver(&gitea).await;
    assert_eq!(
        (refused.status, refused.outcome.as_str()),
        (403, "not_configured")
    );
    assert!(
        refused.detail.contains("webhooks.gitea.secret"),
        "{refused:?}"
    );

    let mut unsigned = Delivery::plane("p-1", fixture("plane/issue.updated.in_progress.json"));
    unsigned.signature = None;
    let accepted = server.deliver(&unsigned).await;
    assert_eq!(
        (accepted.status, accepted.outcome.as_str()),
        (202, "ignored")
    );
    assert!(accepted.detail.contains("no project binds"), "{accepted:?}");
}

#[tokio::test]
async fn oversize_bodies_get_413_malformed_json_400_and_neither_is_remembered() {
    let server = server().await;
    let mut huge = b"{\"pad\": \"".to_vec();
    huge.resize(5 * 1024 * 1024 + 1, b'x');
    let answer = server
        .deliver(&Delivery::github("check_run", "big", huge))
        .await;
    assert_eq!((answer.status, answer.outcome.as_str()), (413, "too_large"));

    let answer = server
        .deliver(&Delivery::github(
            "check_run",
            "d-bad",
            b"{\"check_run\": ".to_vec(),
        ))
        .await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (400, "bad_request")
    );
    assert!(answer.detail.contains("not valid JSON"), "{answer:?}");
    let mut shapeless = fixture_json("github/check_run.completed.failure.json");
    shapeless["check_run"]["head_sha"] = json!("not-a-sha");
    let answer = server
        .deliver(&Delivery::github(
            "check_run",
            "d-bad",
            shapeless.to_string().into_bytes(),
        ))
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.detail.contains("check_run.head_sha"), "{answer:?}");

    let answer = server.deliver(&check_run_failure("d-bad")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "the sender's retry with a good body is read, not a duplicate (no project has its repo)"
    );
}

#[tokio::test]
async fn unused_event_kinds_and_unknown_targets_get_202_and_do_nothing() {
    let server = server().await;
    let head = server.head().await;
    let ping = server
        .deliver(&Delivery::github(
            "ping",
            "p-1",
            fixture("github/ping.json"),
        ))
        .await;
    assert_eq!((ping.status, ping.outcome.as_str()), (202, "unused"));
    let push = server
        .deliver(&Delivery::gitea(
            "push",
            "p-2",
            b"{\"ref\": \"refs/heads/main\"}".to_vec(),
        ))
        .await;
    assert_eq!((push.status, push.outcome.as_str()), (202, "unused"));
    let opened = server
        .deliver(&Delivery::github(
            "pull_request",
            "p-3",
            fixture("github/pull_request.opened.json"),
        ))
        .await;
    assert_eq!((opened.status, opened.outcome.as_str()), (202, "ignored"));
    assert!(
        opened.detail.contains("no project has repository"),
        "{opened:?}"
    );
    assert_eq!(server.head().await, head);

    let mut anonymous = check_run_failure("x");
    anonymous.id = None;
    let answer = server.deliver(&anonymous).await;
    assert_eq!(answer.status, 400);
    assert!(answer.detail.contains("x-github-delivery"), "{answer:?}");
}

#[tokio::test]
async fn a_delivery_is_remembered_across_a_restart() {
    let mut server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("r-1");
    assert_eq!(server.deliver(&failure).await.status, 200);
    server.restart().await;
    let head = server.head().await;
    let again = server.deliver(&failure).await;
    assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    server.deliver(&check_run_failure("m-1")).await;
    server.deliver(&check_run_failure("m-1")).await;
    assert_eq!(
        get(server.http_addr, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(server.http_addr, "/readyz").await,
        (200, "ready\n".into())
    );

    let response = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let head = server.head().await;
    for line in [
        r#"bosun_webhook_deliveries_total{source="github",event="check_run",outcome="processed"} 1"#,
        r#"bosun_webhook_deliveries_total{source="github",event="check_run",outcome="duplicate"} 1"#,
        r#"bosun_webhook_upstream_calls_total{method="RecordCiStatus",code="Ok"} 1"#,
        r#"bosun_webhook_upstream_call_duration_seconds_count{method="ReportPullRequest"} 2"#,
        r#"bosun_grpc_server_calls_total{service="bosun.v1.Sessions",method="RegisterProject",code="Ok"} 1"#,
        r#"bosun_grpc_server_call_duration_seconds_count{service="bosun.v1.Tasks",method="RecordCiStatus"} 1"#,
        &format!("bosun_change_log_head_seq {head}"),
        "bosun_watch_streams_open 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}
