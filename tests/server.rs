//! The server as a whole: health, reflection,
//! shutdown, migrations, and the `bosun` binary itself.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bosun::pb;
use common::TestServer;
use common::process::bosun_command;
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

#[test]
fn bad_configuration_exits_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // (arguments, environment, what stderr must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["serve", "--grpc-addr", "nowhere"],
            vec![],
            "invalid value 'nowhere'",
        ),
        (
            vec!["serve", "--config", "/no/such/bosun.toml"],
            vec![],
            "does not exist",
        ),
        (
            vec!["serve"],
            vec![("BOSUN_LESSONS__DEDUP_WINDOW", "soon")],
            "dedup_window",
        ),
        (
            vec!["serve"],
            vec![("BOSUN_NO_SUCH_SETTING", "1")],
            "no_such_setting",
        ),
        (
            vec!["serve", "--grpc-addr", "0.0.0.0:0"],
            vec![],
            "refusing to start",
        ),
    ];
    for (args, env, expected) in cases {
        let output = bosun_command()
            .args(&args)
            .envs(env.clone())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(expected),
            "{args:?}: {stderr}"
        );
        if !args.contains(&"nowhere") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        }
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn migrate_command_applies_then_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        let output = bosun_command()
            .args(["migrate", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run().contains(&format!(
        "{} migration(s) applied",
        bosun::storage::MIGRATOR.iter().count()
    )));
    assert!(run().contains("0 migration(s) applied"));
}

#[tokio::test]
async fn the_binary_serves_until_sigterm_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bosun_command()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: the log line that names the bound address.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("bosun exited before serving").unwrap();
        if let Some(rest) = line.split("grpc_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut lessons = pb::lessons_client::LessonsClient::new(channel);
    let recorded = lessons
        .record_lesson(pb::RecordLessonRequest {
            request_id: String::new(),
            lesson: Some(pb::Lesson {
                lesson_type: "gate_failure".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(recorded.into_inner().outcome(), pb::RecordOutcome::Recorded);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[tokio::test]
async fn sighup_reloads_run_time_settings_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bosun.toml");
    std::fs::write(
        &config,
        "grpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[lessons]\nenabled = true\n",
    )
    .unwrap();
    let mut child = bosun_command()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |needle: &str| loop {
        let line = lines.next().expect("bosun exited").unwrap();
        if line.contains(needle) {
            return line;
        }
    };
    let serving = wait_for("grpc_addr=");
    let addr = serving
        .split("grpc_addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut lessons = pb::lessons_client::LessonsClient::new(channel);
    let hangup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };

    std::fs::write(
        &config,
        "[lessons]\nenabled = false\ndedup_window = \"5m\"\n",
    )
    .unwrap();
    assert!(hangup(child.id()).success());
    wait_for("lessons settings changed");
    let settings = lessons
        .get_lesson_settings(pb::GetLessonSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!settings.enabled, "the kill-switch was reloaded");
    assert_eq!(settings.dedup_window.unwrap().seconds, 300);

    std::fs::write(&config, "[lessons]\nenabled = maybe\n").unwrap();
    assert!(hangup(child.id()).success());
    wait_for("configuration reload refused");
    let settings = lessons
        .get_lesson_settings(pb::GetLessonSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!settings.enabled, "a bad file changes nothing");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
