//! The server as a whole: health, reflection,
//! shutdown, migrations, and the `bosun` binary itself (in `server/binary.rs`).

mod common;

#[path = "server/binary.rs"]
mod binary;

use std::time::Duration;

use common::TestServer;
use futures::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn health_reports_overall_and_per_service() {
    let server = TestServer::start().await;
    let mut health = server.health();
    let status = |service: &str| {
        let mut health = health.clone();
        let service = service.to_string();
        async move {
            health
                .check(HealthCheckRequest { service })
                .await
                .map(|r| r.into_inner().status())
        }
    };
    assert_eq!(status("").await.unwrap(), ServingStatus::Serving);
    for service in bosun::server::SERVING_SERVICES {
        assert_eq!(
            status(service).await.unwrap(),
            ServingStatus::Serving,
            "{service}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "bosun.v1.Nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service_and_describe_them() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = TestServer::start().await;
    let expected = [
        "bosun.v1.Events",
        "bosun.v1.Lessons",
        "bosun.v1.Processors",
        "bosun.v1.Reconciler",
        "bosun.v1.Sessions",
        "bosun.v1.Tasks",
        "grpc.health.v1.Health",
    ];

    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let requests = [
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "bosun.v1.Sessions".into(),
                ),
            ),
        },
    ];
    let mut responses = client
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1 lists {name}: {names:?}"
        );
    }
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    assert!(
        !files.file_descriptor_proto.is_empty(),
        "describe works without .proto files at hand"
    );

    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = alpha
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1alpha lists {name}: {names:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_ends_within_the_drain_timeout() {
    let mut server =
        TestServer::start_with(|config| config.drain_timeout = Duration::from_millis(300)).await;
    let mut watch = server
        .health()
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let stopping = server.stop();
    let (_, next) = tokio::join!(stopping, watch.next());
    assert_eq!(
        next.unwrap().unwrap().status(),
        ServingStatus::NotServing,
        "health goes NOT_SERVING first"
    );
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let first = bosun::storage::migrate(dir.path()).await.unwrap();
    assert_eq!(first, bosun::storage::MIGRATOR.iter().count());
    let schema = |dir: std::path::PathBuf| async move {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            dir.join("bosun.db").display()
        ))
        .await
        .unwrap();
        sqlx::query_as::<_, (String, String)>(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    };
    let before = schema(dir.path().to_path_buf()).await;
    assert_eq!(
        bosun::storage::migrate(dir.path()).await.unwrap(),
        0,
        "a second run applies nothing"
    );
    // Starting the server on it changes nothing either.
    let db = bosun::storage::Db::open(dir.path()).await.unwrap();
    db.close().await;
    assert_eq!(schema(dir.path().to_path_buf()).await, before);
}
