//! The server: [`Server::open`] builds every service over one database;
//! [`Server::serve`] answers gRPC (and, given an HTTP listener, the webhook
//! shim, metrics and the dashboard) until `shutdown` resolves, then shuts
//! down in order: health NOT_SERVING -> streams end -> the HTTP listener
//! stops and its in-flight deliveries finish (their calls still reach
//! gRPC) -> new gRPC calls refused and no new connections -> in-flight calls drain
//! (all bounded by `drain_timeout`) -> background loops stop -> the
//! databases close.
//!
//! Every call, from the network, from the embedded webhook shim or from the
//! dashboard's gRPC-Web, goes through one stack: metrics -> front door (drain, auth) -> admission
//! (`[limits]`: load shedding, deadlines) -> the services. With `[tls]`
//! both listeners serve TLS.

mod admission;
mod background;
pub mod exposition;
mod front_door;
mod limits;
mod metrics;
mod open;
mod process;
mod reflection;
mod tls;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use crate::config::Config;
use crate::events::{Compactor, EventsApi, EventsServer, Watchers};
use crate::lessons::{Journal, LessonsApi};
use crate::processors::{ProcessorsApi, ProcessorsService, Scheduler};
use crate::reconciler::{Reconciler, ReconcilerApi};
use crate::sessions::{SessionsApi, SessionsService};
use crate::storage::{Db, Leases};
use crate::tasks::{TasksApi, TasksService};
use crate::webhooks::{self, DedupStore, HttpServer};
use crate::{dashboard, pb};
use admission::AdmissionLayer;
use background::Loops;
use front_door::{FrontDoorLayer, FrontDoorState};
pub use limits::LimitsConfig;
pub use open::Reloader;
pub use process::run;
pub(crate) use process::shutdown_signal;
use reflection::reflection;
pub use tls::{ServerTls, TlsConfig, install_ring_provider};

/// The bosun services that answer today.
pub const SERVING_SERVICES: &[&str] = &[
    "bosun.v1.Lessons",
    "bosun.v1.Events",
    "bosun.v1.Sessions",
    "bosun.v1.Tasks",
    "bosun.v1.Reconciler",
    "bosun.v1.Processors",
];

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
    front_door: Arc<FrontDoorState>,
    /// The webhook shim's dedup memory.
    deliveries: DedupStore,
    /// Who runs each background pass (one replica at a time).
    leases: Leases,
    /// The token the shim inside the server calls with (role webhook);
    /// `None` when auth is off.
    shim_token: Option<String>,
    /// Both listeners' certificates, when `[tls]` is set.
    tls: Option<ServerTls>,
}

/// Where a server listens: gRPC always, HTTP (webhooks, metrics) if given.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    /// gRPC only.
    fn from(grpc: TcpListener) -> Self {
        Self { grpc, http: None }
    }
}

/// How serving ended, before the shutdown sequence.
enum Stopped {
    Grpc(anyhow::Result<()>),
    Http(anyhow::Result<()>),
    Signal,
}

impl Server {
    /// Serves gRPC (and HTTP, when given a listener for it) until
    /// `shutdown` resolves or serving fails. A bare `TcpListener` is gRPC
    /// only.
    pub async fn serve(
        self,
        listeners: impl Into<Listeners>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Listeners {
            grpc: listener,
            http,
        } = listeners.into();
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
            deliveries,
            leases,
            shim_token,
            tls,
        } = self;
        let mut registry = Registry::with_prefix("bosun");
        let grpc_metrics = metrics::register(&mut registry, db.head(), watchers.open_streams());
        registry.register(
            "watch_events_delivered",
            "Events sent to Events.Watch streams",
            watchers.delivered_events(),
        );
        processors
            .pass_figures()
            .register(&mut registry, "processor", "Processor");
        reconciler
            .pass_figures()
            .register(&mut registry, "reconciler", "Reconciler");
        leases.register(&mut registry);
        let admission = AdmissionLayer::new(&config.limits, &mut registry);
        let (health, health_service) = tonic_health::server::health_reporter();
        for service in SERVING_SERVICES {
            health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        let (reflection_v1, reflection_v1alpha) = reflection()?;
        let size = config.limits.max_message_size;
        // Every bosun service decodes and encodes at most `size` bytes.
        macro_rules! limited {
            ($server:expr) => {
                $server
                    .max_decoding_message_size(size)
                    .max_encoding_message_size(size)
            };
        }
        let mut routes = Routes::builder();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(limited!(pb::lessons_server::LessonsServer::new(
                LessonsApi::new(journal)
            )))
            .add_service(limited!(pb::sessions_server::SessionsServer::new(
                SessionsApi::new(sessions.clone())
            )))
            .add_service(limited!(pb::tasks_server::TasksServer::new(TasksApi::new(
                tasks
            ))))
            .add_service(limited!(pb::reconciler_server::ReconcilerServer::new(
                ReconcilerApi::new(reconciler.clone())
            )))
            .add_service(limited!(pb::processors_server::ProcessorsServer::new(
                ProcessorsApi::new(processors)
            )))
            .add_service(limited!(EventsServer::new(EventsApi::new(
                db.clone(),
                watchers
            ))));
        let stack = ServiceBuilder::new()
            .layer(grpc_metrics)
            .layer(FrontDoorLayer::new(front_door.clone()))
            .layer(admission)
            .service(routes.routes().prepare());

        let mut http = match http {
            Some(listener) => {
                let in_process: webhooks::Transport = BoxCloneSyncService::new(ServiceExt::<
                    http::Request<tonic::body::Body>,
                >::map_err(
                    stack.clone(),
                    |never| -> tonic::Status { match never {} },
                ));
                let shim = webhooks::embedded(
                    &config,
                    in_process,
                    shim_token.as_deref(),
                    deliveries.clone(),
                    &mut registry,
                )?;
                let dashboard =
                    dashboard::router(BoxCloneSyncService::new(stack.clone()), SERVING_SERVICES);
                let router = webhooks::router(Arc::new(shim), Arc::new(registry)).merge(dashboard);
                let http_tls = tls.as_ref().map(|tls| tls.http.clone());
                Some(HttpServer::start(listener, router, http_tls)?)
            }
            None => None,
        };

        let background = CancellationToken::new();
        let mut loops = background::spawn(
            Loops {
                db: db.clone(),
                leases,
                compactor,
                sessions,
                reconciler,
                scheduler,
                compaction_interval: config.events.compaction_interval,
            },
            &background,
        );

        let stop_accepting = CancellationToken::new();
        let limits = &config.limits;
        let mut builder = tonic::transport::Server::builder()
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_keepalive_interval(limits.keepalive())
            .http2_keepalive_timeout(Some(limits.keepalive_timeout));
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls.grpc)
                .context("cannot set up TLS for gRPC")?;
        }
        let serving = builder.serve_with_incoming_shutdown(
            stack,
            // No Nagle: a reply larger than a segment must not wait for the
            // client's delayed ACK (40 ms per page otherwise).
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop_accepting.clone().cancelled_owned(),
        );
        tokio::pin!(serving);
        tokio::pin!(shutdown);

        let stopped = {
            let http_failed = async {
                match http.as_mut() {
                    Some(server) => server.failed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = &mut serving => Stopped::Grpc(result.context("the gRPC server failed")),
                result = http_failed => Stopped::Http(result),
                () = &mut shutdown => Stopped::Signal,
            }
        };
        let deadline = tokio::time::Instant::now() + config.drain_timeout;
        let result = match stopped {
            Stopped::Grpc(result) => {
                streams.cancel();
                if let Some(http) = http {
                    http.stop(deadline).await.ok();
                }
                result
            }
            stopped => {
                tracing::info!("shutting down");
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                for service in SERVING_SERVICES {
                    health
                        .set_service_status(service, ServingStatus::NotServing)
                        .await;
                }
                // Streams end first: the dashboard's Watch over gRPC-Web
                // would otherwise hold the HTTP listener open. Then webhook
                // deliveries finish: their calls need gRPC still open.
                streams.cancel();
                let http_result = match (stopped, http) {
                    (Stopped::Http(failed), _) => failed,
                    (_, Some(http)) => http.stop(deadline).await,
                    (_, None) => Ok(()),
                };
                front_door.start_draining();
                stop_accepting.cancel();
                background.cancel();
                let grpc_result = match tokio::time::timeout_at(deadline, &mut serving).await {
                    Ok(result) => result.context("the gRPC server failed while draining"),
                    Err(_) => {
                        tracing::warn!(timeout = ?config.drain_timeout, "drain timeout: abandoning the calls still open");
                        Ok(())
                    }
                };
                http_result.and(grpc_result)
            }
        };
        background.cancel();
        while loops.join_next().await.is_some() {}
        deliveries.close().await;
        db.close().await;
        tracing::info!("stopped");
        result
    }
}
