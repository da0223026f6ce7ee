//! Admission: a tower layer inside the front door that sheds load instead
//! of queueing it, and bounds how long a call may take.
//!
//! - A call takes a permit from the server-wide call budget
//!   (`limits.max_concurrent_calls`) for as long as its answer is being
//!   made; an Events.Watch stream takes one from its own budget
//!   (`limits.max_watch_streams`) for as long as the stream is open, so
//!   long-lived watchers never starve unary calls. Health checks take none.
//!   When no permit is free the call is answered at once RESOURCE_EXHAUSTED
//!   (reason `OVERLOADED`, with RetryInfo): nothing waits in a queue.
//! - The answer must start within the client's deadline (`grpc-timeout`)
//!   or `limits.request_timeout`, whichever is shorter; past it the handler
//!   is dropped (its work cancelled) and the client gets DEADLINE_EXCEEDED.
//!   A write already handed to the database writer may still commit; the
//!   request_id of a retried call makes that safe.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tower::{Layer, Service};

use super::limits::LimitsConfig;
use crate::error::{CommonError, to_status};

/// The one streaming method with a budget of its own.
const WATCH_PATH: &str = "/bosun.v1.Events/Watch";
/// Health checks are always admitted: a busy server is still alive.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    limit: &'static str,
}

/// One budget: a semaphore that is only ever tried, never waited on.
#[derive(Debug)]
struct Budget {
    limit: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
}

impl Budget {
    fn new(limit: &'static str, max: usize) -> Self {
        Self {
            limit,
            max,
            permits: Arc::new(Semaphore::new(max)),
        }
    }

    fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// Shared by every connection's copy of the layer.
struct AdmissionState {
    calls: Budget,
    watches: Budget,
    request_timeout: Duration,
    shed: Family<ShedLabels, Counter>,
}

/// What an admitted call holds until it is done.
enum Permit {
    /// A health check: no budget.
    Free,
    /// Released when the answer is ready.
    Call(OwnedSemaphorePermit),
    /// Released when the stream ends.
    Stream(OwnedSemaphorePermit),
}

impl AdmissionState {
    fn admit(&self, path: &str) -> Result<Permit, Status> {
        if path.starts_with(HEALTH_PREFIX) {
            return Ok(Permit::Free);
        }
        let (budget, hold): (_, fn(_) -> _) = if path == WATCH_PATH {
            (&self.watches, Permit::Stream)
        } else {
            (&self.calls, Permit::Call)
        };
        match budget.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(hold(permit)),
            Err(_) => {
                self.shed
                    .get_or_create(&ShedLabels {
                        limit: budget.limit,
                    })
                    .inc();
                Err(to_status(CommonError::Overloaded {
                    limit: budget.limit,
                    max: budget.max,
                }))
            }
        }
    }

    /// The client's deadline or the server's bound, whichever is shorter.
    fn deadline(&self, headers: &http::HeaderMap) -> Duration {
        client_deadline(headers).map_or(self.request_timeout, |client| {
            client.min(self.request_timeout)
        })
    }
}

/// How much earlier than the deadline a call is answered DEADLINE_EXCEEDED
/// (see [`Admission`]'s `call`).
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n).
fn client_deadline(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[derive(Clone)]
pub struct AdmissionLayer {
    state: Arc<AdmissionState>,
}

impl AdmissionLayer {
    /// The layer for `limits`; its figures join `registry`.
    pub fn new(limits: &LimitsConfig, registry: &mut Registry) -> Self {
        let shed = Family::<ShedLabels, Counter>::default();
        registry.register(
            "grpc_server_shed_calls",
            "gRPC calls refused RESOURCE_EXHAUSTED because a [limits] budget was full, by limit",
            shed.clone(),
        );
        let state = Arc::new(AdmissionState {
            calls: Budget::new("max_concurrent_calls", limits.max_concurrent_calls),
            watches: Budget::new("max_watch_streams", limits.max_watch_streams),
            request_timeout: limits.request_timeout,
            shed,
        });
        registry.register_collector(Box::new(InFlight(state.clone())));
        Self { state }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    state: Arc<AdmissionState>,
}

impl<S, B> Service<http::Request<B>> for Admission<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let permit = match self.state.admit(request.uri().path()) {
            Ok(permit) => permit,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let deadline = self.state.deadline(request.headers());
        let answer = self.inner.call(request);
        // tonic enforces the client's grpc-timeout too, outside this layer,
        // and answers its own CANCELLED "Timeout expired" when its timer
        // fires first; a busy runtime can put the two timers in different
        // ticks. Ours fires a moment early, so the client gets
        // DEADLINE_EXCEEDED naming its deadline.
        let timer = deadline.saturating_sub(DEADLINE_MARGIN).max(deadline / 2);
        Box::pin(async move {
            let Ok(result) = tokio::time::timeout(timer, answer).await else {
                return Ok(to_status(CommonError::DeadlineExceeded(deadline)).into_http());
            };
            Ok(match (result?, permit) {
                (response, Permit::Stream(permit)) => response.map(|body| {
                    tonic::body::Body::new(Holding {
                        _permit: permit,
                        body,
                    })
                }),
                (response, Permit::Call(permit)) => {
                    drop(permit);
                    response
                }
                (response, Permit::Free) => response,
            })
        })
    }
}

/// A stream's body holding its permit: released when the stream ends
/// (the body is dropped), before the stream itself is, so whoever sees the
/// stream gone finds the permit free.
struct Holding {
    _permit: OwnedSemaphorePermit,
    body: tonic::body::Body,
}

impl http_body::Body for Holding {
    type Data = tonic::codegen::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Calls holding a permit now, read at scrape time.
struct InFlight(Arc<AdmissionState>);

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}

impl Collector for InFlight {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let calls = ConstGauge::new(i64::try_from(self.0.calls.in_use()).unwrap_or(i64::MAX));
        calls.encode(encoder.encode_descriptor(
            "grpc_server_calls_in_flight",
            "gRPC calls holding a limits.max_concurrent_calls permit now",
            None,
            calls.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_of(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        client_deadline(&headers)
    }

    #[test]
    fn grpc_timeout_header() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("5n", Some(Duration::from_nanos(5))),
            ("123456789m", None),
            ("m", None),
            ("", None),
            ("10x", None),
            ("+5S", None),
            ("5 S", None),
        ];
        for (value, expected) in cases {
            assert_eq!(deadline_of(value), expected, "{value:?}");
        }
        assert_eq!(client_deadline(&http::HeaderMap::new()), None);
    }

    #[test]
    fn the_shorter_deadline_wins_and_budgets_never_wait() {
        let limits = LimitsConfig {
            max_concurrent_calls: 1,
            max_watch_streams: 1,
            request_timeout: Duration::from_secs(5),
            ..LimitsConfig::default()
        };
        let layer = AdmissionLayer::new(&limits, &mut Registry::default());
        let state = &layer.state;
        let mut headers = http::HeaderMap::new();
        assert_eq!(state.deadline(&headers), Duration::from_secs(5));
        headers.insert("grpc-timeout", "100m".parse().unwrap());
        assert_eq!(state.deadline(&headers), Duration::from_millis(100));
        headers.insert("grpc-timeout", "1H".parse().unwrap());
        assert_eq!(state.deadline(&headers), Duration::from_secs(5));

        let call = state.admit("/bosun.v1.Lessons/ListLessons").unwrap();
        let watch = state.admit(WATCH_PATH).unwrap();
        let refused = state.admit("/bosun.v1.Tasks/GetTask").err().unwrap();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            state.admit(WATCH_PATH).is_err(),
            "watches have their own budget"
        );
        assert!(matches!(
            state.admit("/grpc.health.v1.Health/Check"),
            Ok(Permit::Free)
        ));
        drop((call, watch));
        assert!(state.admit("/bosun.v1.Tasks/GetTask").is_ok());
    }
}
