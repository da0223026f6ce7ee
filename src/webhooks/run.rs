//! The two ways the shim runs. [`embedded`]: inside `bosun serve`, calling
//! the server's own service stack in-process, through the same front door
//! and limits as any client (the server owns the HTTP listener and the
//! shutdown order). [`run`]: `bosun shim --upstream URL`, alone in front
//! of a bosun it reaches with `webhooks.upstream_token`; it keeps its dedup
//! memory in its own data dir and its `/metrics` has the shim's figures
//! only.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::upstream::Transport;
use super::{DedupStore, HttpServer, Shim, ShimMetrics, Upstream, router};
use crate::config::Config;
use crate::reconciler::plane::PlaneClient;

/// The shim inside `bosun serve`, calling the server's stack `transport`
/// with `token` (none when auth is off); its figures join `registry`.
pub fn embedded(
    config: &Config,
    transport: Transport,
    token: Option<&str>,
    store: DedupStore,
    registry: &mut Registry,
) -> anyhow::Result<Shim> {
    let metrics = ShimMetrics::register(registry);
    let upstream = Upstream::over(transport, token, metrics.clone())?;
    let plane_api = PlaneClient::new(&config.reconciler.plane);
    Ok(Shim::new(
        config.webhooks.clone(),
        store,
        upstream,
        metrics,
        plane_api,
    ))
}

/// Binds `http_addr` and serves until SIGINT/SIGTERM.
pub async fn run(config: Config, upstream: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let shutdown = crate::server::shutdown_signal()?;
    serve(config, &upstream, listener, shutdown).await
}

/// Serves the shim on `listener` (HTTPS with `[tls]`) until `shutdown`
/// resolves, then drains in-flight deliveries (bounded by `drain_timeout`).
pub async fn serve(
    config: Config,
    upstream: &str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = config.tls.load()?.map(|tls| tls.http);
    let mut registry = Registry::with_prefix("bosun");
    let metrics = ShimMetrics::register(&mut registry);
    let webhooks = config.webhooks;
    let store = DedupStore::open_configured(
        &config.data_dir,
        config.database_url.as_ref(),
        webhooks.dedup_capacity,
    )
    .await?;
    let token = Some(webhooks.upstream_token.as_str()).filter(|t| !t.is_empty());
    let ca_file = Some(webhooks.upstream_ca_file.as_path()).filter(|f| !f.as_os_str().is_empty());
    let client = Upstream::new(upstream, ca_file, token, metrics.clone())?;
    let plane_api = PlaneClient::new(&config.reconciler.plane);
    let shim = Arc::new(Shim::new(
        webhooks,
        store.clone(),
        client,
        metrics,
        plane_api,
    ));
    let mut server = HttpServer::start(listener, router(shim, Arc::new(registry)), tls)?;
    tracing::info!(http_addr = %server.local_addr(), upstream, data_dir = %config.data_dir.display(), "bosun shim serving");
    tokio::pin!(shutdown);
    let failed = tokio::select! {
        result = server.failed() => Some(result),
        () = &mut shutdown => None,
    };
    let result = match failed {
        Some(result) => result,
        None => {
            tracing::info!("shutting down");
            let deadline = tokio::time::Instant::now() + config.drain_timeout;
            server.stop(deadline).await
        }
    };
    store.close().await;
    tracing::info!("stopped");
    result
}
