//! The etcd under test (a child process) and the few calls of its v3 gRPC
//! API the suite makes, with their messages written out for prost.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use http::uri::PathAndQuery;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

use crate::daemon::Process;

/// The etcd under test: a child process on a temp data dir and loopback
/// ports, its log beside the data dir.
pub struct Etcd {
    pub process: Process,
    pub version: String,
    /// From spawning the process to its first answered Status.
    pub ready_after: Duration,
}

impl Etcd {
    pub async fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let peer = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let (client_url, peer_url) = (format!("http://{addr}"), format!("http://{peer}"));
        let log: PathBuf = data_dir.with_extension("log");
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut etcd = Self {
            process: Process::new(child, addr),
            version: String::new(),
            ready_after: Duration::ZERO,
        };
        etcd.version = etcd
            .wait_ready(started)
            .await
            .with_context(|| format!("etcd's log is {}", log.display()))?;
        etcd.ready_after = started.elapsed();
        Ok(etcd)
    }

    /// Polls Maintenance.Status until it answers; returns etcd's version.
    pub(super) async fn wait_ready(&mut self, started: Instant) -> anyhow::Result<String> {
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.process.exited()? {
                bail!("etcd exited at start: {status}");
            }
            if let Ok(channel) = self.process.endpoint().connect().await
                && let Ok(status) = Client::new(channel).status().await
            {
                return Ok(status.version);
            }
            tokio::task::yield_now().await;
        }
        bail!("etcd did not answer Status within 30s")
    }
}

/// etcd's v3 gRPC API, the calls the suite makes.
#[derive(Clone)]
pub(super) struct Client(tonic::client::Grpc<Channel>);

impl Client {
    pub(super) fn new(channel: Channel) -> Self {
        Self(tonic::client::Grpc::new(channel))
    }

    pub(super) async fn unary<Q, R>(&mut self, path: &'static str, request: Q) -> Result<R, Status>
    where
        Q: Message + Sync + 'static,
        R: Message + Default + Sync + 'static,
    {
        self.0
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let codec = tonic_prost::ProstCodec::<Q, R>::default();
        let path = PathAndQuery::from_static(path);
        Ok(self
            .0
            .unary(Request::new(request), path, codec)
            .await?
            .into_inner())
    }

    pub(super) async fn put(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<PutResponse, Status> {
        self.unary("/etcdserverpb.KV/Put", PutRequest { key, value })
            .await
    }

    /// The store's revision now (a linearizable Range of a key no one
    /// writes; its header carries the revision).
    pub(super) async fn revision(mut self) -> Result<i64, Status> {
        let request = RangeRequest {
            key: b"bench/none".to_vec(),
        };
        let response: RangeResponse = self.unary("/etcdserverpb.KV/Range", request).await?;
        Ok(response.header.unwrap_or_default().revision)
    }

    pub(super) async fn status(mut self) -> Result<StatusResponse, Status> {
        self.unary("/etcdserverpb.Maintenance/Status", StatusRequest {})
            .await
    }

    /// One Watch stream with one watch; the request side stays open.
    pub(super) async fn watch(
        &mut self,
        create: WatchCreateRequest,
    ) -> Result<Streaming<WatchResponse>, Status> {
        self.0
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let requests = futures::stream::iter([WatchRequest {
            create_request: Some(create),
        }])
        .chain(futures::stream::pending());
        let codec = tonic_prost::ProstCodec::<WatchRequest, WatchResponse>::default();
        let path = PathAndQuery::from_static("/etcdserverpb.Watch/Watch");
        Ok(self
            .0
            .streaming(Request::new(requests), path, codec)
            .await?
            .into_inner())
    }
}

// The messages of etcd's api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto
// the suite uses, with only the fields it reads or sets (same tags).

#[derive(Clone, PartialEq, Message)]
pub(super) struct ResponseHeader {
    #[prost(int64, tag = "3")]
    pub(super) revision: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(super) value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct PutResponse {
    #[prost(message, optional, tag = "1")]
    pub(super) header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    pub(super) header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct StatusRequest {}

#[derive(Clone, PartialEq, Message)]
pub(super) struct StatusResponse {
    #[prost(string, tag = "2")]
    pub(super) version: String,
}

/// `request_union`'s create_request, the only one sent.
#[derive(Clone, PartialEq, Message)]
pub(super) struct WatchRequest {
    #[prost(message, optional, tag = "1")]
    pub(super) create_request: Option<WatchCreateRequest>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct WatchCreateRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(super) range_end: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub(super) start_revision: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct WatchResponse {
    #[prost(bool, tag = "3")]
    pub(super) created: bool,
    #[prost(bool, tag = "4")]
    pub(super) canceled: bool,
    #[prost(string, tag = "6")]
    pub(super) cancel_reason: String,
    #[prost(message, repeated, tag = "11")]
    pub(super) events: Vec<Event>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct Event {
    #[prost(message, optional, tag = "2")]
    pub(super) kv: Option<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct KeyValue {
    #[prost(int64, tag = "3")]
    pub(super) mod_revision: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub(super) value: Vec<u8>,
}
