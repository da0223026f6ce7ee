//! The shim's figures, registered in the Prometheus registry that
//! `GET /metrics` serves: deliveries by source, event kind and outcome, and
//! the calls the shim made to bosun, by method and code, with latencies.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    source: &'static str,
    event: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

type Latencies = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Clone, Debug)]
pub struct ShimMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    latencies: Latencies,
}

impl ShimMetrics {
    /// Registers the shim's families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries answered, by source, event kind and outcome",
            deliveries.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "webhook_upstream_calls",
            "Calls the webhook shim made to bosun's gRPC API, by method and status code",
            calls.clone(),
        );
        let latencies: Latencies = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "webhook_upstream_call_duration",
            "How long the webhook shim's calls to bosun took, by method",
            Unit::Seconds,
            latencies.clone(),
        );
        Self {
            deliveries,
            calls,
            latencies,
        }
    }

    /// Counts one answered delivery. `event` must be a known kind or
    /// "other": unverified senders choose the event header.
    pub fn delivery(&self, source: &'static str, event: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                source,
                event: event.to_string(),
                outcome,
            })
            .inc();
    }

    /// Counts one call to bosun and its latency.
    pub fn call(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                method,
                code: format!("{code:?}"),
            })
            .inc();
        self.latencies
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }
}
