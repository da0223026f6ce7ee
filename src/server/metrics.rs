//! bosun's own figures for `GET /metrics`: every gRPC call by service,
//! method and status code with its latency (a tower layer in front of every
//! service), the change-log head and the open Watch streams (read at scrape
//! time). A call's code is the one it was answered with when its response
//! started: every unary call's code; a stream counts as OK once opened and
//! its latency is the time to open it. Method labels are limited to the
//! methods bosun serves, so unknown paths cannot grow the label set.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use prost::Message;
use tokio::sync::watch;
use tonic::Code;
use tower::{Layer, Service};

use crate::pb;
use crate::webhooks::latency_histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

/// Counts and times every gRPC call.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    calls: Family<CallLabels, Counter>,
    latencies: Family<MethodLabels, Histogram, fn() -> Histogram>,
    known: Arc<HashSet<String>>,
}

/// Registers bosun's figures in `registry`: the gRPC families (fed by the
/// returned layer), and the change-log head and open streams read from
/// `head` and `open_streams` at each scrape.
pub fn register(
    registry: &mut Registry,
    head: watch::Receiver<i64>,
    open_streams: watch::Receiver<usize>,
) -> GrpcMetricsLayer {
    let calls = Family::<CallLabels, Counter>::default();
    registry.register(
        "grpc_server_calls",
        "gRPC calls answered, by service, method and status code",
        calls.clone(),
    );
    let latencies: Family<MethodLabels, Histogram, fn() -> Histogram> =
        Family::new_with_constructor(latency_histogram);
    registry.register_with_unit(
        "grpc_server_call_duration",
        "Time from a gRPC call's arrival to its response (for streams: to the stream's opening)",
        Unit::Seconds,
        latencies.clone(),
    );
    registry.register_collector(Box::new(ServerFigures { head, open_streams }));
    GrpcMetricsLayer {
        calls,
        latencies,
        known: Arc::new(known_methods()),
    }
}

/// `/package.Service/Method` of every method bosun serves.
fn known_methods() -> HashSet<String> {
    let mut known: HashSet<String> = [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    if let Ok(set) = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET) {
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let name = service.name.unwrap_or_default();
                for method in service.method {
                    let method = method.name.unwrap_or_default();
                    known.insert(format!("/{package}.{name}/{method}"));
                }
            }
        }
    }
    known
}

impl GrpcMetricsLayer {
    fn labels(&self, path: &str) -> MethodLabels {
        match path.trim_start_matches('/').split_once('/') {
            Some((service, method)) if self.known.contains(path) => MethodLabels {
                service: service.to_string(),
                method: method.to_string(),
            },
            _ => MethodLabels {
                service: "unknown".into(),
                method: "unknown".into(),
            },
        }
    }

    fn observe(&self, method: MethodLabels, code: Code, started: Instant) {
        self.latencies
            .get_or_create(&method)
            .observe(started.elapsed().as_secs_f64());
        let MethodLabels { service, method } = method;
        self.calls
            .get_or_create(&CallLabels {
                service,
                method,
                code: format!("{code:?}"),
            })
            .inc();
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let labels = self.layer.labels(request.uri().path());
        let layer = self.layer.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                // An error answer carries its code in the headers
                // (trailers-only); a normal one starts as OK.
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or(Code::Ok, Code::from_i32),
                Err(_) => Code::Unknown,
            };
            layer.observe(labels, code, started);
            result
        })
    }
}

/// Figures read at scrape time.
#[derive(Debug)]
struct ServerFigures {
    head: watch::Receiver<i64>,
    open_streams: watch::Receiver<usize>,
}

impl Collector for ServerFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let head = ConstGauge::new(*self.head.borrow());
        head.encode(encoder.encode_descriptor(
            "change_log_head_seq",
            "The newest committed change-log seq; each event appended raises it by one",
            None,
            head.metric_type(),
        )?)?;
        let open = ConstGauge::new(i64::try_from(*self.open_streams.borrow()).unwrap_or(i64::MAX));
        open.encode(encoder.encode_descriptor(
            "watch_streams_open",
            "Events.Watch streams open now",
            None,
            open.metric_type(),
        )?)?;
        Ok(())
    }
}
