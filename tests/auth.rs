//! Bearer-token auth: every role against every RPC, and malformed headers.

mod common;

use bosun::pb::{ListLessonsRequest, UpdateLessonRequest};
use common::baselines::baseline;
use common::rpcs::{Descriptors, call_raw};
use common::{
    ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, assert_error, auth_tokens,
    with_token,
};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Past the front door (the call itself may still fail, e.g. NOT_FOUND).
    Y,
    /// PERMISSION_DENIED.
    D,
    /// UNAUTHENTICATED.
    U,
}
use Outcome::{D, U, Y};

/// Who may call what. Columns: admin, agent, webhook, read, no token, an
/// unknown token. Written out by hand from SPEC §3 (admin everything; agent
/// session reports, lessons, reads; webhook what the shim calls, reads;
/// read get/list/watch), so it checks `src/auth.rs` rather than repeating it.
const ROLE_TABLE: &[(&str, [Outcome; 6])] = &[
    ("Lessons/RecordLesson", [Y, Y, D, D, U, U]),
    ("Lessons/GetLesson", [Y, Y, Y, Y, U, U]),
    ("Lessons/ListLessons", [Y, Y, Y, Y, U, U]),
    ("Lessons/UpdateLesson", [Y, D, D, D, U, U]),
    ("Lessons/GetLessonStats", [Y, Y, Y, Y, U, U]),
    ("Lessons/GetLessonSettings", [Y, Y, Y, Y, U, U]),
    ("Lessons/UpdateLessonSettings", [Y, D, D, D, U, U]),
    ("Processors/ListProcessors", [Y, Y, Y, Y, U, U]),
    ("Processors/RunProcessor", [Y, D, D, D, U, U]),
    ("Processors/ListProcessorState", [Y, Y, Y, Y, U, U]),
    ("Processors/ResetProcessorState", [Y, D, D, D, U, U]),
    ("Processors/GetUsage", [Y, Y, Y, Y, U, U]),
    ("Processors/GetToolErrors", [Y, Y, Y, Y, U, U]),
    ("Reconciler/RunOnce", [Y, D, D, D, U, U]),
    ("Reconciler/GetStatus", [Y, Y, Y, Y, U, U]),
    ("Reconciler/ListReconcilerRuns", [Y, Y, Y, Y, U, U]),
    ("Reconciler/GetReconcilerSettings", [Y, Y, Y, Y, U, U]),
    ("Reconciler/UpdateReconcilerSettings", [Y, D, D, D, U, U]),
    ("Sessions/RegisterProject", [Y, D, D, D, U, U]),
    ("Sessions/GetProject", [Y, Y, Y, Y, U, U]),
    ("Sessions/ListProjects", [Y, Y, Y, Y, U, U]),
    ("Sessions/UpdateProject", [Y, D, D, D, U, U]),
    ("Sessions/ArchiveProject", [Y, D, D, D, U, U]),
    ("Sessions/SpawnSession", [Y, D, D, D, U, U]),
    ("Sessions/CompleteSpawn", [Y, Y, D, D, U, U]),
    ("Sessions/FailSpawn", [Y, Y, D, D, U, U]),
    ("Sessions/FinishSession", [Y, Y, D, D, U, U]),
    ("Sessions/KillSession", [Y, Y, D, D, U, U]),
    ("Sessions/RestoreSession", [Y, D, D, D, U, U]),
    ("Sessions/ReportActivity", [Y, Y, D, D, U, U]),
    ("Sessions/ReportRuntimeProbe", [Y, Y, D, D, U, U]),
    ("Sessions/ReportPullRequest", [Y, Y, Y, D, U, U]),
    ("Sessions/GetSession", [Y, Y, Y, Y, U, U]),
    ("Sessions/ListSessions", [Y, Y, Y, Y, U, U]),
    ("Sessions/ListReactions", [Y, Y, Y, Y, U, U]),
    ("Sessions/ListAttention", [Y, Y, Y, Y, U, U]),
    ("Tasks/StartTask", [Y, D, Y, D, U, U]),
    ("Tasks/GetTask", [Y, Y, Y, Y, U, U]),
    ("Tasks/ListTasks", [Y, Y, Y, Y, U, U]),
    ("Tasks/GetTaskFacts", [Y, Y, Y, Y, U, U]),
    ("Tasks/RecordCiStatus", [Y, D, Y, D, U, U]),
    ("Tasks/RecordVerdict", [Y, D, Y, D, U, U]),
    ("Tasks/RecordTestReport", [Y, Y, Y, D, U, U]),
    ("Tasks/RecordDeployStatus", [Y, Y, Y, D, U, U]),
    ("Tasks/AdvanceTask", [Y, Y, D, D, U, U]),
    ("Tasks/ReleaseTask", [Y, D, D, D, U, U]),
    ("Events/Watch", [Y, Y, Y, Y, U, U]),
    ("Events/GetHead", [Y, Y, Y, Y, U, U]),
    ("Events/ListEvents", [Y, Y, Y, Y, U, U]),
];

/// Every RPC (read from the descriptor set: a new RPC without a row fails)
/// with every role, each sending that RPC's well-formed baseline request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_rpc() {
    let server = TestServer::start_with(|config| {
        auth_tokens(config);
        // An admitted Watch answers with a bookmark at once.
        config.events.progress_interval = std::time::Duration::from_millis(50);
    })
    .await;
    // An unknown token of the same length as a real one, and one that is
    // a real token's prefix.
    let unknown = format!("{}x", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let tokens = [
        Some(ADMIN_TOKEN),
        Some(AGENT_TOKEN),
        Some(WEBHOOK_TOKEN),
        Some(READ_TOKEN),
        None,
        Some(unknown.as_str()),
    ];
    let descriptors = Descriptors::load();
    let mut failures = Vec::new();
    for rpc in &descriptors.rpcs {
        let Some((_, expected)) = ROLE_TABLE.iter().find(|(name, _)| *name == rpc.name) else {
            failures.push(format!("{}: no row in ROLE_TABLE", rpc.name));
            continue;
        };
        let body = baseline(&rpc.name).expect("baseline");
        for (token, expected) in tokens.iter().zip(expected) {
            let got = match call_raw(&server.channel, rpc, body.clone(), *token).await {
                Err(status) if status.code() == Code::PermissionDenied => D,
                Err(status) if status.code() == Code::Unauthenticated => U,
                _ => Y,
            };
            if got != *expected {
                failures.push(format!(
                    "{} with {token:?}: {got:?}, expected {expected:?}",
                    rpc.name
                ));
            }
        }
    }
    assert_eq!(
        ROLE_TABLE.len(),
        descriptors.rpcs.len(),
        "a row for an RPC that is gone"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let prefix = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 4];
    let status = server
        .lessons()
        .list_lessons(with_token(ListLessonsRequest::default(), prefix))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    let denied = server
        .lessons()
        .update_lesson(with_token(UpdateLessonRequest::default(), READ_TOKEN))
        .await
        .unwrap_err();
    assert_error(&denied, Code::PermissionDenied, "PERMISSION_DENIED");
}

#[tokio::test]
async fn malformed_headers_are_unauthenticated_and_health_is_open() {
    let server = TestServer::start_with_auth().await;
    for header in [
        ADMIN_TOKEN.to_string(),
        format!("bearer {ADMIN_TOKEN}"),
        format!("Basic {ADMIN_TOKEN}"),
        "Bearer ".into(),
    ] {
        let mut request = tonic::Request::new(ListLessonsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
        let status = server.lessons().list_lessons(request).await.unwrap_err();
        assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
        assert!(
            !status.message().contains(ADMIN_TOKEN),
            "the token is never echoed"
        );
    }
    let health = server
        .health()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "health needs no token");
}
