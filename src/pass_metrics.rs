//! Figures of bosun's background passes for `/metrics` (SPEC §10): how many
//! passes ended, by their labels and outcome, and how long they took. Each
//! pass loop (processors, reconciler) owns one [`PassFigures`] and observes
//! every pass it ends; the server registers it under the loop's name.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(String, String)>;

/// Pass durations: 5 ms to about 5.5 minutes.
fn pass_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

/// Passes ended and their durations; cheap to clone (clones share figures).
#[derive(Clone, Debug)]
pub struct PassFigures {
    passes: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for PassFigures {
    fn default() -> Self {
        Self {
            passes: Family::default(),
            durations: Family::new_with_constructor(pass_histogram),
        }
    }
}

impl PassFigures {
    /// Registers `<name>_passes` (a counter by the pass's labels and
    /// `state`) and `<name>_pass_duration_seconds` (by the pass's labels).
    pub fn register(&self, registry: &mut Registry, name: &str, what: &str) {
        registry.register(
            format!("{name}_passes"),
            format!("{what} passes ended, by outcome (state)"),
            self.passes.clone(),
        );
        registry.register_with_unit(
            format!("{name}_pass_duration"),
            format!("How long {what} passes took, start to end"),
            Unit::Seconds,
            self.durations.clone(),
        );
    }

    /// Counts one ended pass: its `labels`, its outcome `state`, its duration.
    pub fn observe(&self, labels: &[(&str, &str)], state: &str, took: Duration) {
        let labels: Labels = labels
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let mut with_state = labels;
        with_state.push(("state".into(), state.into()));
        self.passes.get_or_create(&with_state).inc();
    }
}
