//! Bearer-token auth: every role against each kind of RPC.

mod common;

use bosun::pb::{
    GetHeadRequest, GetLessonSettingsRequest, Lesson, ListLessonsRequest, RecordLessonRequest,
    UpdateLessonRequest, UpdateLessonSettingsRequest,
};
use common::{
    ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, assert_error, with_token,
};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Allowed,
    Denied,
    Unauthenticated,
}

async fn call(server: &TestServer, method: &str, token: Option<&str>) -> Result<(), Status> {
    fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
        match token {
            Some(token) => with_token(message, token),
            None => tonic::Request::new(message),
        }
    }
    match method {
        "RecordLesson" => {
            let request = RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(Lesson {
                    lesson_type: "auth_probe".into(),
                    ..Lesson::default()
                }),
            };
            server
                .lessons()
                .record_lesson(authed(request, token))
                .await
                .map(drop)
        }
        "ListLessons" => server
            .lessons()
            .list_lessons(authed(ListLessonsRequest::default(), token))
            .await
            .map(drop),
        "GetLessonSettings" => server
            .lessons()
            .get_lesson_settings(authed(GetLessonSettingsRequest {}, token))
            .await
            .map(drop),
        "UpdateLesson" => {
            // Lesson 1 exists (recorded first by the admin); an allowed call succeeds.
            let request = UpdateLessonRequest {
                lesson: Some(Lesson {
                    id: 1,
                    related_task: "T-1".into(),
                    ..Lesson::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["related_task".into()],
                }),
            };
            server
                .lessons()
                .update_lesson(authed(request, token))
                .await
                .map(drop)
        }
        "UpdateLessonSettings" => {
            let request = UpdateLessonSettingsRequest {
                settings: Some(bosun::pb::LessonSettings {
                    enabled: true,
                    dedup_window: None,
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["enabled".into()],
                }),
            };
            server
                .lessons()
                .update_lesson_settings(authed(request, token))
                .await
                .map(drop)
        }
        "GetHead" => server
            .events()
            .get_head(authed(GetHeadRequest {}, token))
            .await
            .map(drop),
        "RunProcessor" => {
            let request = bosun::pb::RunProcessorRequest {
                name: "usage".into(),
            };
            server
                .processors_client()
                .run_processor(authed(request, token))
                .await
                .map(drop)
        }
        "ResetProcessorState" => {
            let request = bosun::pb::ResetProcessorStateRequest {
                processor: "usage".into(),
                ..Default::default()
            };
            server
                .processors_client()
                .reset_processor_state(authed(request, token))
                .await
                .map(drop)
        }
        "GetUsage" => server
            .processors_client()
            .get_usage(authed(bosun::pb::GetUsageRequest::default(), token))
            .await
            .map(drop),
        _ => unreachable!("{method}"),
    }
}

#[tokio::test]
async fn every_role_against_every_kind_of_rpc() {
    use Outcome::*;
    let server = TestServer::start_with_auth().await;
    call(&server, "RecordLesson", Some(ADMIN_TOKEN))
        .await
        .expect("admin records lesson 1");
    // Columns: admin, agent, webhook, read, no token, unknown token.
    let table = [
        (
            "RecordLesson",
            [
                Allowed,
                Allowed,
                Denied,
                Denied,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "ListLessons",
            [
                Allowed,
                Allowed,
                Allowed,
                Allowed,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "GetLessonSettings",
            [
                Allowed,
                Allowed,
                Allowed,
                Allowed,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "GetHead",
            [
                Allowed,
                Allowed,
                Allowed,
                Allowed,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "UpdateLesson",
            [
                Allowed,
                Denied,
                Denied,
                Denied,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "UpdateLessonSettings",
            [
                Allowed,
                Denied,
                Denied,
                Denied,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "RunProcessor",
            [
                Allowed,
                Denied,
                Denied,
                Denied,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "ResetProcessorState",
            [
                Allowed,
                Denied,
                Denied,
                Denied,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
        (
            "GetUsage",
            [
                Allowed,
                Allowed,
                Allowed,
                Allowed,
                Unauthenticated,
                Unauthenticated,
            ],
        ),
    ];
    let tokens = [
        Some(ADMIN_TOKEN),
        Some(AGENT_TOKEN),
        Some(WEBHOOK_TOKEN),
        Some(READ_TOKEN),
        None,
        Some("not-a-configured-token"),
    ];
    for (method, expected) in table {
        for (token, expected) in tokens.iter().zip(expected) {
            let result = call(&server, method, *token).await;
            match expected {
                Allowed => assert!(result.is_ok(), "{method} with {token:?}: {result:?}"),
                Denied => assert_error(
                    &result.unwrap_err(),
                    Code::PermissionDenied,
                    "PERMISSION_DENIED",
                ),
                Unauthenticated => assert_error(
                    &result.unwrap_err(),
                    Code::Unauthenticated,
                    "UNAUTHENTICATED",
                ),
            }
        }
    }
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
