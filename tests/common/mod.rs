//! The shared test harness: starts the real `bosun` server in-process on
//! 127.0.0.1:0 (gRPC, and HTTP for the webhook shim and metrics) over a
//! fresh SQLite file in a temp dir, waits until health says SERVING, and
//! hands out connected generated clients.
//!
//! The same tests are the conformance suite of the PostgreSQL engine: with
//! `TEST_BOSUN_ENGINE=postgres` (scripts/test runs every server test binary
//! a second time so), each server gets a fresh database of a real
//! PostgreSQL cluster started for the test binary ([`postgres`]) instead of
//! its SQLite file, and [`TestServer::direct`] opens that database.

#![allow(dead_code)]

pub mod bad_values;
pub mod baselines;
mod errors;
pub mod fake_plane;
pub mod forge_payloads;
pub mod pipeline;
pub mod postgres;
pub mod process;
pub mod reconciler;
pub mod rpcs;
mod tokens;
pub mod webhooks;

// The harness's own names for them; not every test binary uses each.
#[allow(unused_imports)]
pub use errors::{assert_error, bad_fields, error_metadata};
#[allow(unused_imports)]
pub use tokens::{ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, WEBHOOK_TOKEN, auth_tokens, with_token};

use std::net::SocketAddr;
use std::path::PathBuf;

use bosun::config::Config;
use bosun::events::{Compactor, Watchers};
use bosun::pb::events_client::EventsClient;
use bosun::pb::lessons_client::LessonsClient;
use bosun::pb::processors_client::ProcessorsClient;
use bosun::pb::{Lesson, RecordLessonRequest, RecordLessonResponse};
use bosun::processors::Registration;
use bosun::server::{Listeners, Server};
use bosun::sessions::SessionsService;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTP listener: webhooks, /healthz, /readyz, /metrics.
    pub http_addr: SocketAddr,
    pub config: Config,
    pub channel: Channel,
    /// The running server's Watch streams (to count the open ones).
    pub watchers: Watchers,
    /// The running server's retention job.
    pub compactor: Compactor,
    /// The running server's Sessions service (to run its timers now).
    pub sessions: SessionsService,
    /// Processors added beside the built-in ones (kept for restarts).
    extra_processors: Vec<Registration>,
    /// How `channel` speaks TLS to a server with `[tls]` (kept for restarts).
    client_tls: Option<ClientTlsConfig>,
    _dir: TempDir,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose config `tweak` may change (data_dir is set).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_processors(tweak, Vec::new()).await
    }

    /// Like [`TestServer::start_with`], running `extra` processors beside
    /// the built-in ones.
    pub async fn start_with_processors(
        tweak: impl FnOnce(&mut Config),
        extra_processors: Vec<Registration>,
    ) -> Self {
        Self::start_full(tweak, extra_processors, None).await
    }

    /// Like [`TestServer::start_with`] for a `tweak` that sets `[tls]`:
    /// `channel` connects over TLS with `client_tls`.
    pub async fn start_with_tls(
        tweak: impl FnOnce(&mut Config),
        client_tls: ClientTlsConfig,
    ) -> Self {
        Self::start_full(tweak, Vec::new(), Some(client_tls)).await
    }

    async fn start_full(
        tweak: impl FnOnce(&mut Config),
        extra_processors: Vec<Registration>,
        client_tls: Option<ClientTlsConfig>,
    ) -> Self {
        log_if_asked();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            database_url: conformance_database().await,
            ..Config::default()
        };
        tweak(&mut config);
        let Launched {
            addr,
            http_addr,
            channel,
            watchers,
            compactor,
            sessions,
            running,
        } = launch(&config, &extra_processors, client_tls.as_ref()).await;
        Self {
            addr,
            http_addr,
            config,
            channel,
            watchers,
            compactor,
            sessions,
            extra_processors,
            client_tls,
            _dir: dir,
            running: Some(running),
        }
    }

    /// A server with one token per role (see the *_TOKEN constants).
    pub async fn start_with_auth() -> Self {
        Self::start_with(auth_tokens).await
    }

    pub fn lessons(&self) -> LessonsClient<Channel> {
        LessonsClient::new(self.channel.clone())
    }

    pub fn events(&self) -> EventsClient<Channel> {
        EventsClient::new(self.channel.clone())
    }

    /// Every event after `after_seq` that `filter` keeps, oldest first,
    /// through ListEvents page by page.
    pub async fn list_events(
        &self,
        after_seq: i64,
        filter: bosun::pb::EventFilter,
    ) -> Vec<bosun::pb::Event> {
        let mut client = self.events();
        let mut events = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_events(bosun::pb::ListEventsRequest {
                    after_seq,
                    filter: Some(filter.clone()),
                    page_size: 1000,
                    page_token,
                })
                .await
                .expect("list events")
                .into_inner();
            events.extend(page.events);
            if page.next_page_token.is_empty() {
                return events;
            }
            page_token = page.next_page_token;
        }
    }

    pub fn sessions_client(&self) -> bosun::pb::sessions_client::SessionsClient<Channel> {
        bosun::pb::sessions_client::SessionsClient::new(self.channel.clone())
    }

    pub fn processors_client(&self) -> ProcessorsClient<Channel> {
        ProcessorsClient::new(self.channel.clone())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Records `lesson` (no request_id), which must succeed.
    pub async fn record(&self, lesson: Lesson) -> RecordLessonResponse {
        self.lessons()
            .record_lesson(RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(lesson),
            })
            .await
            .expect("record lesson")
            .into_inner()
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.data_dir.join(bosun::storage::DB_FILE)
    }

    /// Shuts the server down the way SIGTERM does and waits until it stopped.
    pub async fn stop(&mut self) {
        if let Some((shutdown_tx, task)) = self.running.take() {
            let _ = shutdown_tx.send(());
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Stops, then starts again on the same data dir (a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let Launched {
            addr,
            http_addr,
            channel,
            watchers,
            compactor,
            sessions,
            running,
        } = launch(
            &self.config,
            &self.extra_processors,
            self.client_tls.as_ref(),
        )
        .await;
        self.addr = addr;
        self.http_addr = http_addr;
        self.channel = channel;
        self.watchers = watchers;
        self.compactor = compactor;
        self.sessions = sessions;
        self.running = Some(running);
    }

    /// A direct connection to the server's database (its SQLite file, or
    /// its PostgreSQL database), as an operator's sqlite3 or psql would
    /// have: for checking what is stored. Statements go through
    /// `bosun::storage::sql`, so one text serves both engines.
    pub async fn direct(&self) -> Direct {
        use sqlx::Connection;
        match &self.config.database_url {
            None => Direct::Sqlite(self.sqlite().await),
            Some(url) => Direct::Postgres(
                sqlx::PgConnection::connect_with(&url.connect_options().expect("test URL"))
                    .await
                    .expect("open the database directly"),
            ),
        }
    }

    /// A direct connection to the database file, as an operator's sqlite3
    /// would have: for fault injection and checking what is stored. SQLite
    /// only (see [`TestServer::direct`]).
    pub async fn sqlite(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        assert!(
            self.config.database_url.is_none(),
            "this test reads the SQLite file; run it with TEST_BOSUN_ENGINE unset"
        );
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.db_path().display()))
            .await
            .expect("open the database directly")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((shutdown_tx, _)) = self.running.take() {
            let _ = shutdown_tx.send(());
        }
    }
}

/// A connection of its own to a test server's database.
pub enum Direct {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Direct {
    /// Closes the connection cleanly (a SQLite file is then free to reopen).
    pub async fn close(self) {
        use sqlx::Connection;
        let closed = match self {
            Self::Sqlite(conn) => conn.close().await,
            Self::Postgres(conn) => conn.close().await,
        };
        closed.expect("close the direct connection");
    }

    pub fn conn(&mut self) -> bosun::storage::Conn<'_> {
        match self {
            Self::Sqlite(conn) => bosun::storage::Conn::Sqlite(conn),
            Self::Postgres(conn) => bosun::storage::Conn::Postgres(conn),
        }
    }
}

/// With `TEST_BOSUN_LOG` set (an env-filter such as `bosun=debug`), the
/// servers' logs go to the test's output: to see why a call failed.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("TEST_BOSUN_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Which engine the servers of this run use: `TEST_BOSUN_ENGINE=postgres`
/// or SQLite (unset, or `sqlite`).
pub fn on_postgres() -> bool {
    match std::env::var("TEST_BOSUN_ENGINE").as_deref() {
        Err(_) | Ok("" | "sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("TEST_BOSUN_ENGINE must be sqlite or postgres, not {other:?}"),
    }
}

/// A fresh database for a server when the run is on PostgreSQL.
async fn conformance_database() -> Option<bosun::storage::postgres::DatabaseUrl> {
    if !on_postgres() {
        return None;
    }
    let server = postgres::server()
        .expect("TEST_BOSUN_ENGINE=postgres needs PostgreSQL (scripts/test-postgres installs it)");
    Some(server.database().await.parse().expect("test URL"))
}

struct Launched {
    addr: SocketAddr,
    http_addr: SocketAddr,
    channel: Channel,
    watchers: Watchers,
    compactor: Compactor,
    sessions: SessionsService,
    running: (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>),
}

async fn launch(
    config: &Config,
    extra_processors: &[Registration],
    client_tls: Option<&ClientTlsConfig>,
) -> Launched {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let http_addr = http.local_addr().expect("local http addr");
    let server = Server::open_with_processors(config.clone(), extra_processors.to_vec())
        .await
        .expect("open server");
    let (watchers, compactor, sessions) =
        (server.watchers(), server.compactor(), server.sessions());
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let listeners = Listeners {
        grpc: listener,
        http: Some(http),
    };
    let task = tokio::spawn(server.serve(listeners, async {
        let _ = shutdown_rx.await;
    }));
    let endpoint = match client_tls {
        None => Channel::from_shared(format!("http://{addr}")).expect("uri"),
        Some(tls) => Channel::from_shared(format!("https://{addr}"))
            .expect("uri")
            .tls_config(tls.clone())
            .expect("client TLS"),
    };
    let channel = endpoint.connect().await.expect("connect");
    // The listener is bound, so the call waits for the server rather than
    // failing: one health check is the readiness wait.
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    Launched {
        addr,
        http_addr,
        channel,
        watchers,
        compactor,
        sessions,
        running: (shutdown_tx, task),
    }
}
