//! The process around a server: `bosun serve` binds its addresses, reloads
//! settings on SIGHUP, and shuts down on SIGINT or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;

use super::{Listeners, Server};
use crate::config::{Config, ConfigError};

/// Binds the configured gRPC and HTTP addresses, serves until
/// SIGINT/SIGTERM, and applies `reload()`ed settings on SIGHUP.
pub async fn run(
    config: Config,
    reload: impl Fn() -> Result<Config, ConfigError> + Send + 'static,
) -> anyhow::Result<()> {
    let grpc = TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
    let http = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let data_dir = config.data_dir.clone();
    let server = Server::open(config).await?;
    // SIGHUP is handled before "bosun serving" is logged: whoever reads that
    // line may reload at once (unhandled, SIGHUP would end the process).
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tracing::info!(grpc_addr = %grpc.local_addr()?, http_addr = %http.local_addr()?, data_dir = %data_dir.display(), "bosun serving");
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
    let listeners = Listeners {
        grpc,
        http: Some(http),
    };
    server.serve(listeners, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
