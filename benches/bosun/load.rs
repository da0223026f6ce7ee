//! The load generator: a closed loop of `concurrency` workers, each issuing
//! one call after another over a few shared HTTP/2 connections, measured
//! after a warm-up. Latency is per call, in microseconds.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

/// How long each measurement lasts, after its warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one load run measured.
pub struct Run {
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.5) as f64 / 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1e3
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `call(worker, n)` from `concurrency` workers for `window`; calls
/// that complete inside the measured part count.
pub async fn closed_loop<F, Fut, E>(concurrency: usize, window: Window, call: F) -> Run
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let measure_from = started + window.warmup;
    let until = measure_from + window.measure;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let call = call.clone();
        workers.spawn(async move {
            let mut latency = histogram();
            let (mut calls, mut errors, mut first_error) = (0u64, 0u64, None);
            let mut n = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let result = call(worker, n).await;
                n += 1;
                let done = Instant::now();
                if sent < measure_from || done > until {
                    continue;
                }
                match result {
                    Ok(()) => {
                        calls += 1;
                        let micros = (done - sent).as_micros().max(1) as u64;
                        latency.saturating_record(micros);
                    }
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| err.to_string());
                    }
                }
            }
            (calls, errors, first_error, latency)
        });
    }
    let mut run = Run {
        calls: 0,
        errors: 0,
        first_error: None,
        elapsed: window.measure,
        latency: histogram(),
    };
    while let Some(joined) = workers.join_next().await {
        let (calls, errors, first_error, latency) = joined.expect("a load worker panicked");
        run.calls += calls;
        run.errors += errors;
        run.first_error = run.first_error.or(first_error);
        run.latency
            .add(latency)
            .expect("histograms of the same bounds");
    }
    run
}
