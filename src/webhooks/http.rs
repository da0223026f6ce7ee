//! The HTTP adapter (axum): `POST /webhooks/{github,gitea,plane}`,
//! `GET /healthz` (the process answers), `GET /readyz` (bosun upstream
//! answers SERVING) and `GET /metrics` (Prometheus/OpenMetrics text). Each
//! delivery is answered within `webhooks.deadline` and logged once with its
//! source, id, event and outcome, never its body or a secret. With
//! `[tls]` the listener serves HTTPS (axum-server over rustls).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::service::{Answer, Delivery};
use super::translate::clip;
use super::{Shim, Source, WebhookError};
use crate::server::exposition;

struct App {
    shim: Arc<Shim>,
    registry: Arc<Registry>,
}

/// The shim's routes; `registry` is what `/metrics` serves (the shim's
/// families and, inside `bosun serve`, the server's).
pub fn router(shim: Arc<Shim>, registry: Arc<Registry>) -> Router {
    let app = Arc::new(App { shim, registry });
    Router::new()
        .route("/webhooks/github", post(github))
        .route("/webhooks/gitea", post(gitea))
        .route("/webhooks/plane", post(plane))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn github(State(app): State<Arc<App>>, request: Request) -> Response {
    deliver(&app, Source::GitHub, request).await
}

async fn gitea(State(app): State<Arc<App>>, request: Request) -> Response {
    deliver(&app, Source::Gitea, request).await
}

async fn plane(State(app): State<Arc<App>>, request: Request) -> Response {
    deliver(&app, Source::Plane, request).await
}

async fn deliver(app: &App, source: Source, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let delivery = Shim::delivery(source, &parts.headers);
    let shim = &app.shim;
    let deadline = shim.config.deadline;
    let work = async {
        let body = read_body(body, shim.config.body_limit).await?;
        shim.handle(&delivery, &parts.headers, &body).await
    };
    let result = tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(WebhookError::Timeout(deadline)));
    let (status, outcome, detail) = match &result {
        Ok(answer) => (
            answer_status(answer),
            answer.outcome(),
            describe(answer, &delivery),
        ),
        Err(err) => (err.status(), err.outcome(), err.to_string()),
    };
    let event = if source.events().contains(&delivery.event.as_str()) {
        delivery.event.as_str()
    } else {
        "other"
    };
    shim.metrics.delivery(source.as_str(), event, outcome);
    log(&delivery, status, outcome, &detail, &result, started);
    let body = serde_json::json!({ "outcome": outcome, "detail": detail });
    (status, axum::Json(body)).into_response()
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, WebhookError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            WebhookError::TooLarge(limit)
        } else {
            WebhookError::Unreadable
        }
    })
}

fn answer_status(answer: &Answer) -> StatusCode {
    match answer {
        Answer::Processed(_) | Answer::Duplicate | Answer::Stale(_) => StatusCode::OK,
        Answer::Ignored(_) | Answer::Unused => StatusCode::ACCEPTED,
    }
}

fn describe(answer: &Answer, delivery: &Delivery) -> String {
    match answer {
        Answer::Processed(detail) | Answer::Ignored(detail) | Answer::Stale(detail) => {
            detail.clone()
        }
        Answer::Duplicate => "already processed; nothing done".into(),
        Answer::Unused => format!(
            "{} events are not used; nothing done",
            clip(&delivery.event, 64)
        ),
    }
}

fn log(
    delivery: &Delivery,
    status: StatusCode,
    outcome: &str,
    detail: &str,
    result: &Result<Answer, WebhookError>,
    started: Instant,
) {
    let source = delivery.source.as_str();
    let id = clip(delivery.id.as_deref().unwrap_or("-"), 64);
    let event = clip(&delivery.event, 64);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let status = status.as_u16();
    let cause = result
        .as_ref()
        .err()
        .and_then(|err| std::error::Error::source(err))
        .map(|cause| cause.to_string());
    match status {
        200..=299 => {
            tracing::info!(source, delivery = %id, event = %event, outcome, status, elapsed_ms, detail, "webhook delivery")
        }
        400..=499 => {
            tracing::warn!(source, delivery = %id, event = %event, outcome, status, elapsed_ms, detail, "webhook delivery refused")
        }
        _ => {
            tracing::error!(source, delivery = %id, event = %event, outcome, status, elapsed_ms, detail, cause, "webhook delivery failed")
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.shim.upstream().ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = exposition::negotiate(accept);
    match exposition::encode(&app.registry, format) {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "encoding metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The shim's HTTP server, running on its own task until stopped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Serves `router` on `listener`: HTTPS when given `tls`, else HTTP.
    pub fn start(
        listener: TcpListener,
        router: Router,
        tls: Option<RustlsConfig>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = match tls {
            None => tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .into_future(),
            ),
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let serving = axum_server::from_tcp_rustls(listener.into_std()?, tls)?
                    .handle(handle.clone())
                    .serve(router.into_make_service());
                let stopping = stop.clone();
                tokio::spawn(async move {
                    tokio::pin!(serving);
                    tokio::select! {
                        result = &mut serving => return result,
                        () = stopping.cancelled() => handle.graceful_shutdown(None),
                    }
                    serving.await
                })
            }
        };
        Ok(Self { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves if the server stops by itself (it failed).
    pub async fn failed(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("the HTTP server task panicked")?
            .context("the HTTP server failed")
    }

    /// Stops accepting connections and lets in-flight deliveries finish
    /// until `deadline`; what is still open then is abandoned (its sender
    /// sees no answer and retries).
    pub async fn stop(mut self, deadline: tokio::time::Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        match tokio::time::timeout_at(deadline, self.failed()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("drain timeout: abandoning the webhook deliveries still open");
                self.task.abort();
                Ok(())
            }
        }
    }
}
