//! The process around a server: `bosun serve` binds its addresses, reloads
//! settings on SIGHUP, and shuts down on SIGINT or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

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
    // Signals are handled before "bosun serving" is logged: whoever reads
    // that line may reload or stop bosun at once (unhandled, SIGHUP or
    // SIGTERM would end the process there and then, with no drain).
    let mut hangups = signal(SignalKind::hangup())?;
    let shutdown = shutdown_signal()?;
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
    server.serve(listeners, shutdown).await
}

/// Handles SIGINT and SIGTERM from now on; the future resolves on the
/// first to arrive. (Call it before telling anyone the process is up: a
/// signal that arrives before it is installed ends the process at once.)
pub(crate) fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
