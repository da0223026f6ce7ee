//! The real `bosun` binary as a child process over a data dir, on
//! 127.0.0.1:0: its gRPC address is read from the "bosun serving" log line
//! (logged once the listeners are bound and the database is open), its log
//! is kept for failure messages, and it can be killed with SIGKILL.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// `bosun` with a clean environment: no RUST_LOG, no BOSUN_* of the caller.
pub fn bosun_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bosun"));
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("BOSUN_") {
            command.env_remove(key);
        }
    }
    command
}

pub struct BosunProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    addr_rx: Option<oneshot::Receiver<SocketAddr>>,
}

impl BosunProcess {
    /// Starts `bosun serve` on `data_dir` with extra environment `envs`;
    /// returns at once (see [`BosunProcess::ready`]).
    pub fn spawn(data_dir: &Path, envs: &[(&str, String)]) -> Self {
        Self::spawn_at(data_dir, "127.0.0.1:0", envs)
    }

    /// Like [`BosunProcess::spawn`], serving gRPC on `grpc_addr` (to restart
    /// on the same port).
    pub fn spawn_at(data_dir: &Path, grpc_addr: &str, envs: &[(&str, String)]) -> Self {
        let mut child = bosun_command()
            .args([
                "serve",
                "--grpc-addr",
                grpc_addr,
                "--http-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .envs(envs.iter().map(|(key, value)| (*key, value.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bosun");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = oneshot::channel();
        let kept = log.clone();
        // Reads the log to its end, so the child never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("bosun serving") {
                    let addr = line
                        .split("grpc_addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|addr| addr.parse().ok());
                    if let (Some(addr), Some(tx)) = (addr, addr_tx.take()) {
                        let _ = tx.send(addr);
                    }
                }
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            log,
            reader: Some(reader),
            addr_rx: Some(addr_rx),
        }
    }

    /// The gRPC address once bosun serves; `None` if it exited first.
    pub async fn ready(&mut self) -> Option<SocketAddr> {
        self.addr_rx.take()?.await.ok()
    }

    /// SIGKILL, then reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL bosun");
        self.child.wait().expect("reap bosun");
    }

    /// Waits for it to exit by itself; returns its status and whole log.
    pub async fn exited(mut self) -> (ExitStatus, Vec<String>) {
        tokio::task::spawn_blocking(move || {
            let status = self.child.wait().expect("wait for bosun");
            // The pipe closes with the process: the reader ends.
            if let Some(reader) = self.reader.take() {
                reader.join().expect("log reader");
            }
            let log = self.log.lock().unwrap().clone();
            (status, log)
        })
        .await
        .expect("wait task")
    }

    /// The last `n` log lines, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for BosunProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A channel to `addr`, after one health check said SERVING.
pub async fn connect(addr: SocketAddr) -> Channel {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    channel
}
