//! `bosun shim --upstream URL`: the shim alone, in front of a bosun it
//! reaches over gRPC with `webhooks.upstream_token`. It keeps its dedup
//! memory in its own data dir and serves the same HTTP endpoints as the
//! shim inside `bosun serve`; its `/metrics` has the shim's figures only.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::{DedupStore, HttpServer, Shim, ShimMetrics, Upstream, router};
use crate::config::Config;
use crate::reconciler::plane::PlaneClient;

/// Binds `http_addr` and serves until SIGINT/SIGTERM.
pub async fn run(config: Config, upstream: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    serve(
        config,
        &upstream,
        listener,
        crate::server::shutdown_signal(),
    )
    .await
}

/// Serves the shim on `listener` until `shutdown` resolves, then drains
/// in-flight deliveries (bounded by `drain_timeout`).
pub async fn serve(
    config: Config,
    upstream: &str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut registry = Registry::with_prefix("bosun");
    let metrics = ShimMetrics::register(&mut registry);
    let webhooks = config.webhooks;
    let store = DedupStore::open(&config.data_dir, webhooks.dedup_capacity).await?;
    let token = Some(webhooks.upstream_token.as_str()).filter(|t| !t.is_empty());
    let client = Upstream::new(upstream, token, metrics.clone())?;
    let plane_api = PlaneClient::new(&config.reconciler.plane);
    let shim = Arc::new(Shim::new(
        webhooks,
        store.clone(),
        client,
        metrics,
        plane_api,
    ));
    let mut server = HttpServer::start(listener, router(shim, Arc::new(registry)))?;
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
