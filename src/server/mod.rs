//! The server: [`Server::open`] builds every service over one database;
//! [`Server::serve`] answers on a listener until `shutdown` resolves, then
//! shuts down in order: health NOT_SERVING -> new calls refused and no new
//! connections -> streams end -> in-flight calls drain (bounded by
//! `drain_timeout`) -> background loops stop -> the database closes.

mod front_door;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::auth::Authenticator;
use crate::config::{Config, ConfigError};
use crate::events::{Compactor, EventsApi, Watchers};
use crate::lessons::{Journal, LessonsApi};
use crate::processors::{self, ProcessorsApi, ProcessorsService, Registration, Scheduler};
use crate::reconciler::{Reconciler, ReconcilerApi};
use crate::sessions::{SessionsApi, SessionsService};
use crate::storage::{Db, StoreError};
use crate::tasks::{TasksApi, TasksService};
use crate::{idempotency, pb};
use front_door::{FrontDoorLayer, FrontDoorState};

/// The bosun services that answer today.
pub const SERVING_SERVICES: &[&str] = &[
    "bosun.v1.Lessons",
    "bosun.v1.Events",
    "bosun.v1.Sessions",
    "bosun.v1.Tasks",
    "bosun.v1.Reconciler",
    "bosun.v1.Processors",
];

/// How often unresolved reactions are checked for escalation by time.
const REACTION_TICK: Duration = Duration::from_secs(30);

/// How often forgotten request_ids are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// A bosun server over an open database, ready to serve.
pub struct Server {
    config: Config,
    db: Db,
    journal: Journal,
    sessions: SessionsService,
    tasks: TasksService,
    reconciler: Reconciler,
    processors: ProcessorsService,
    scheduler: Scheduler,
    watchers: Watchers,
    compactor: Compactor,
    /// Ends every open stream at shutdown.
    streams: CancellationToken,
    front_door: std::sync::Arc<FrontDoorState>,
}

/// Applies a reloaded configuration's run-time settings.
#[derive(Clone)]
pub struct Reloader {
    journal: Journal,
    reconciler: Reconciler,
}

impl Reloader {
    pub fn apply(&self, config: &Config) {
        let settings = config.lessons.journal_settings();
        self.journal.update_settings(|current| *current = settings);
        self.reconciler.apply_config(&config.reconciler);
    }
}

impl Server {
    /// Opens the database (applying migrations) and builds the services.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        Self::open_with_processors(config, Vec::new()).await
    }

    /// Like [`Server::open`], with `extra` processors beside the built-in
    /// ones (an embedder's own passes over the transcripts).
    pub async fn open_with_processors(
        config: Config,
        extra: Vec<Registration>,
    ) -> anyhow::Result<Self> {
        let db = Db::open(&config.data_dir).await?;
        let journal = Journal::new(db.clone(), config.lessons.journal_settings());
        let auth = Authenticator::new(
            config
                .auth
                .tokens
                .iter()
                .map(|token| (token.name.as_str(), token.role, token.token.as_str())),
        );
        let streams = CancellationToken::new();
        let watchers = Watchers::new(db.clone(), config.events.progress_interval, streams.clone());
        let compactor = Compactor::new(db.clone(), config.events.retention);
        let sessions = SessionsService::new(db.clone(), config.sessions.quarantine_limits());
        let tasks = TasksService::new(db.clone(), journal.clone(), config.tasks.settings());
        let reconciler =
            Reconciler::open(db.clone(), tasks.clone(), config.reconciler.clone()).await?;
        let mut registrations = processors::builtin(
            config.processors.usage.settings(),
            config.processors.tool_errors.settings(),
            config.processors.tool_error_burst_threshold,
            journal.clone(),
        );
        registrations.extend(extra);
        let (processors, scheduler) = ProcessorsService::new(
            db.clone(),
            config.processors.transcripts_dir.clone(),
            registrations,
        )?;
        scheduler.end_interrupted_passes().await?;
        Ok(Self {
            config,
            db,
            journal,
            sessions,
            tasks,
            reconciler,
            processors,
            scheduler,
            watchers,
            compactor,
            streams,
            front_door: FrontDoorState::new(auth),
        })
    }

    /// The Sessions service (its timers also run on their own schedule).
    pub fn sessions(&self) -> SessionsService {
        self.sessions.clone()
    }

    /// The Watch streams (to count the open ones).
    pub fn watchers(&self) -> Watchers {
        self.watchers.clone()
    }

    /// The change-log retention job (it also runs on its own schedule).
    pub fn compactor(&self) -> Compactor {
        self.compactor.clone()
    }

    /// The Tasks service.
    pub fn tasks(&self) -> TasksService {
        self.tasks.clone()
    }

    /// The Reconciler (its loop also runs on its own schedule).
    pub fn reconciler(&self) -> Reconciler {
        self.reconciler.clone()
    }

    pub fn reloader(&self) -> Reloader {
        Reloader {
            journal: self.journal.clone(),
            reconciler: self.reconciler.clone(),
        }
    }

    /// Serves gRPC on `listener` until `shutdown` resolves or serving fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Server {
            config,
            db,
            journal,
            sessions,
            tasks,
            reconciler,
            processors,
            scheduler,
            watchers,
            compactor,
            streams,
            front_door,
        } = self;
        let (health, health_service) = tonic_health::server::health_reporter();
        for service in SERVING_SERVICES {
            health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        let (reflection_v1, reflection_v1alpha) = reflection()?;

        let background = CancellationToken::new();
        let mut loops = JoinSet::new();
        loops.spawn(prune_request_ids(db.clone(), background.clone()));
        loops.spawn(compactor.run_every(config.events.compaction_interval, background.clone()));
        loops.spawn(
            sessions
                .clone()
                .run_timers(REACTION_TICK, background.clone()),
        );
        loops.spawn(reconciler.clone().run_every(background.clone()));
        loops.spawn(scheduler.run(background.clone()));

        let stop_accepting = CancellationToken::new();
        let serving = tonic::transport::Server::builder()
            .layer(FrontDoorLayer::new(front_door.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(pb::lessons_server::LessonsServer::new(LessonsApi::new(
                journal,
            )))
            .add_service(pb::sessions_server::SessionsServer::new(SessionsApi::new(
                sessions.clone(),
            )))
            .add_service(pb::tasks_server::TasksServer::new(TasksApi::new(tasks)))
            .add_service(pb::reconciler_server::ReconcilerServer::new(
                ReconcilerApi::new(reconciler),
            ))
            .add_service(pb::processors_server::ProcessorsServer::new(
                ProcessorsApi::new(processors),
            ))
            .add_service(pb::events_server::EventsServer::new(EventsApi::new(
                db.clone(),
                watchers,
            )))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                stop_accepting.clone().cancelled_owned(),
            );
        tokio::pin!(serving);
        tokio::pin!(shutdown);

        let result = tokio::select! {
            result = &mut serving => result.context("the gRPC server failed"),
            () = &mut shutdown => {
                tracing::info!("shutting down");
                health.set_service_status("", ServingStatus::NotServing).await;
                for service in SERVING_SERVICES {
                    health.set_service_status(service, ServingStatus::NotServing).await;
                }
                front_door.start_draining();
                stop_accepting.cancel();
                streams.cancel();
                background.cancel();
                match tokio::time::timeout(config.drain_timeout, &mut serving).await {
                    Ok(result) => result.context("the gRPC server failed while draining"),
                    Err(_) => {
                        tracing::warn!(timeout = ?config.drain_timeout, "drain timeout: abandoning the calls still open");
                        Ok(())
                    }
                }
            }
        };
        background.cancel();
        while loops.join_next().await.is_some() {}
        db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Reflection v1 and v1alpha over every bosun and health descriptor, plus
/// google.rpc's error details so grpcurl can print ErrorInfo and BadRequest.
fn reflection() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let descriptor_sets = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure();
    let mut v1alpha = tonic_reflection::server::Builder::configure();
    for set in descriptor_sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    Ok((
        v1.build_v1().context("cannot build reflection v1")?,
        v1alpha
            .build_v1alpha()
            .context("cannot build reflection v1alpha")?,
    ))
}

/// Binds the configured gRPC address, serves until SIGINT/SIGTERM, and
/// applies `reload()`ed settings on SIGHUP.
pub async fn run(
    config: Config,
    reload: impl Fn() -> Result<Config, ConfigError> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
    let data_dir = config.data_dir.clone();
    let server = Server::open(config).await?;
    // SIGHUP is handled before "bosun serving" is logged: whoever reads that
    // line may reload at once (unhandled, SIGHUP would end the process).
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tracing::info!(grpc_addr = %listener.local_addr()?, data_dir = %data_dir.display(), "bosun serving");
    let reloader = server.reloader();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reload() {
                Ok(config) => reloader.apply(&config),
                Err(err) => {
                    tracing::error!(error = %err, "configuration reload refused; keeping the old settings")
                }
            }
        }
    });
    server.serve(listener, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn prune_request_ids(db: Db, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                match db.write(|conn| idempotency::prune(conn).boxed()).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old request ids"),
                    Err(err @ StoreError::Closed) => {
                        tracing::debug!(error = %err, "request id pruning stopped");
                        return;
                    }
                    Err(err) => tracing::warn!(error = ?err, "pruning request ids failed"),
                }
            }
        }
    }
}
