//! The shim apart from serve, as `bosun shim` runs it: an upstream that is
//! down, a redelivery past the dedup memory, the deadline, the webhook
//! token, and the binary forwarding to a separately started serve.

use super::*;

/// A standalone shim served in-process (as `bosun shim` runs it).
struct Standalone {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Standalone {
    async fn start(
        upstream: &str,
        data_dir: &std::path::Path,
        tweak: impl FnOnce(&mut bosun::config::Config),
    ) -> Self {
        let mut config = bosun::config::Config {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        };
        with_secrets(&mut config);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            bosun::webhooks::serve_standalone(config, &upstream, listener, shutdown).await
        });
        Self { addr, stop, task }
    }

    async fn deliver(&self, delivery: &Delivery) -> common::webhooks::Answer {
        common::webhooks::deliver(self.addr, delivery).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("the shim stopped cleanly");
    }
}

/// An address where nothing listens.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn upstream_down_answers_503_and_the_retry_is_processed_later() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let dir = tempfile::tempdir().unwrap();
    let failure = check_run_failure("u-1");

    let down = Standalone::start(&closed_port().await, dir.path(), |_| {}).await;
    let answer = down.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (503, "unavailable"),
        "{answer:?}"
    );
    let (status, body) = get(down.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    down.stop().await;

    let up = Standalone::start(&format!("http://{}", server.addr), dir.path(), |_| {}).await;
    let answer = up.deliver(&failure).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "a 503'd delivery was not remembered"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );
    up.stop().await;
}

#[tokio::test]
async fn a_redelivery_past_the_dedup_memory_is_idempotent_end_to_end() {
    let server = server().await;
    server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let failure = check_run_failure("i-1");
    assert_eq!(server.deliver(&failure).await.outcome, "processed");
    let head = server.head().await;
    // Another shim with an empty memory: every call repeats a request_id.
    let dir = tempfile::tempdir().unwrap();
    let fresh = Standalone::start(&format!("http://{}", server.addr), dir.path(), |_| {}).await;
    let answer = fresh.deliver(&failure).await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    assert_eq!(
        server.head().await,
        head,
        "the request_ids made the calls no-ops"
    );
    fresh.stop().await;
}

#[tokio::test]
async fn a_delivery_past_the_deadline_answers_503() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let shim = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.deadline = std::time::Duration::from_millis(300);
    })
    .await;
    let answer = shim.deliver(&check_run_failure("t-1")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (503, "timeout"),
        "{answer:?}"
    );
    shim.stop().await;
    drop(silent);
}

#[tokio::test]
async fn shims_call_with_a_webhook_token_when_auth_is_on() {
    use common::{ADMIN_TOKEN, READ_TOKEN, WEBHOOK_TOKEN, with_token};
    let server = TestServer::start_with(|config| {
        common::auth_tokens(config);
        with_secrets(config);
    })
    .await;
    let mut sessions = server.sessions_client();
    sessions
        .register_project(with_token(
            pb::RegisterProjectRequest {
                project: Some(pb::Project {
                    id: "hello".into(),
                    origin_url: HELLO_WORLD.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let spawned = sessions
        .spawn_session(with_token(
            pb::SpawnSessionRequest {
                project_id: "hello".into(),
                harness: pb::Harness::ClaudeCode.into(),
                branch: HELLO_BRANCH.into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    sessions
        .complete_spawn(with_token(
            pb::CompleteSpawnRequest {
                session_id: spawned.id.clone(),
                runtime_handle_id: "tmux:%1".into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let display = || {
        let mut sessions = server.sessions_client();
        let id = spawned.id.clone();
        async move {
            let request = pb::GetSessionRequest { session_id: id };
            let session = sessions.get_session(with_token(request, READ_TOKEN)).await;
            pb::DisplayStatus::try_from(session.unwrap().into_inner().display_status).unwrap()
        }
    };

    // Inside serve: the shim's own token.
    let inside = server.deliver(&check_run_failure("a-1")).await;
    assert_eq!(inside.status, 200, "{inside:?}");
    assert_eq!(display().await, pb::DisplayStatus::CiFailed);

    // Alone: the configured token, refused (503, retried later) when wrong.
    let upstream = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let wrong = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.upstream_token = "not-a-token-0123456789".into();
    })
    .await;
    let success = Delivery::github(
        "check_run",
        "a-2",
        fixture("github/check_run.completed.success.json"),
    );
    let refused = wrong.deliver(&success).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.detail.contains("refused the shim's token"),
        "{refused:?}"
    );
    wrong.stop().await;
    let right = Standalone::start(&upstream, dir.path(), |config| {
        config.webhooks.upstream_token = WEBHOOK_TOKEN.into();
    })
    .await;
    assert_eq!(right.deliver(&success).await.status, 200);
    assert_eq!(display().await, pb::DisplayStatus::PrOpen);
    right.stop().await;
}

#[tokio::test]
async fn the_shim_binary_forwards_to_a_separately_started_serve() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bosun"));
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("BOSUN_") {
            command.env_remove(key);
        }
    }
    command
        .args(["shim", "--upstream", &format!("http://{}", server.addr)])
        .args(["--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path());
    // On PostgreSQL the shim shares bosun's database for its dedup memory.
    if let Some(url) = &server.config.database_url {
        command.args(["--database-url", url.reveal()]);
    }
    let mut child = command
        .env("BOSUN_WEBHOOKS__GITHUB__SECRET", GITHUB_SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: the log line that names the bound address.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("the shim exited").unwrap();
        if let Some(rest) = line.split("http_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let answer = common::webhooks::deliver(addr, &check_run_failure("b-1")).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("bosun_webhook_deliveries_total"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("bosun_grpc_server_calls"),
        "the shim's figures only"
    );

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
    let local = dir.path().join(bosun::webhooks::DEDUP_FILE).exists();
    if server.config.database_url.is_none() {
        assert!(
            local,
            "on SQLite the shim remembers deliveries in its data dir"
        );
    } else {
        assert!(!local, "on PostgreSQL it keeps no memory of its own");
        // The replica's own endpoint knows the delivery the shim took.
        let again = common::webhooks::deliver(server.http_addr, &check_run_failure("b-1")).await;
        assert_eq!((again.status, again.outcome.as_str()), (200, "duplicate"));
    }
}
