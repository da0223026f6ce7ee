//! A real bosun, the release binary, started as a child process on a temp
//! data dir and loopback ports, so its memory and start-up are its own and
//! the load generator shares only the machine with it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A server under test: a child process answering gRPC on a loopback
/// address. Killed when stopped or dropped.
pub struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    pub fn new(child: Child, addr: SocketAddr) -> Self {
        Self { child, addr }
    }

    /// How the process ended, once it has (while it starts up).
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a loopback address is a valid URI")
            .tcp_nodelay(true)
    }

    /// `count` separate HTTP/2 connections.
    pub async fn connections(&self, count: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            channels.push(self.endpoint().connect().await?);
        }
        Ok(channels)
    }

    /// The server's resident memory, from /proc.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_of(self.child.id())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bosun under test.
pub struct Bosun {
    pub process: Process,
    /// From spawning the process to health answering SERVING.
    pub ready_after: Duration,
}

impl Bosun {
    /// Starts bosun on `data_dir` with `extra` appended to its TOML config,
    /// and waits until health says SERVING.
    pub async fn start(data_dir: &Path, extra: &str) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let http_addr = free_port()?;
        let config = data_dir.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\ngrpc_addr = \"{addr}\"\nhttp_addr = \"{http_addr}\"\n{extra}",
                data_dir.display().to_string()
            ),
        )?;
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start bosun")?;
        let mut bosun = Self {
            process: Process::new(child, addr),
            ready_after: Duration::ZERO,
        };
        bosun.ready_after = bosun.wait_serving(started).await?;
        Ok(bosun)
    }

    /// Polls health until SERVING; the poll is the measurement.
    async fn wait_serving(&mut self, started: Instant) -> anyhow::Result<Duration> {
        let endpoint = self.process.endpoint();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.process.exited()? {
                bail!("bosun exited at start: {status}");
            }
            if let Ok(channel) = endpoint.connect().await {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await;
                if answer.is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32) {
                    return Ok(started.elapsed());
                }
            }
            tokio::task::yield_now().await;
        }
        bail!("bosun was not SERVING after 30s")
    }
}

/// VmRSS of process `pid`.
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
