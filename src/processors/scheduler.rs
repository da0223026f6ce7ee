//! The scheduler: one worker task per enabled processor, so processors run
//! in parallel. A worker starts a pass one cadence after the last pass
//! started (scheduled or manual), and runs the manual passes RunProcessor
//! hands it, so a pass runs to its end even when its caller goes away. A
//! per-processor lock, held by a pass (or briefly by a reset), means a
//! processor never has two passes at once; the last-run time advances when a
//! pass starts, whatever its outcome.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{OwnedMutexGuard, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::pass::Pass;
use super::processor::Registration;
use super::{ProcessorRun, RunTrigger, decide, store};
use crate::pass_metrics::PassFigures;
use crate::storage::{Db, StoreError};
use crate::time::UnixMicros;

/// How soon a worker tries again when a reset holds its processor's lock.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// What the service and the workers share.
pub(super) struct Inner {
    pub db: Db,
    pub dir: Arc<PathBuf>,
    /// Ordered by name.
    pub slots: Vec<Slot>,
    /// Every pass that ends, for /metrics.
    pub figures: PassFigures,
}

/// One processor's place in the scheduler.
pub(super) struct Slot {
    pub registration: Registration,
    /// Held by a pass, or by a reset while it deletes.
    pub lock: Arc<tokio::sync::Mutex<()>>,
    running: AtomicBool,
    times: Mutex<Times>,
    pub manual_tx: mpsc::Sender<ManualRun>,
}

#[derive(Default, Clone, Copy)]
struct Times {
    last_run: Option<UnixMicros>,
    next_run: Option<UnixMicros>,
}

/// A manual pass for a worker to run: the lock RunProcessor took, and where
/// to send the finished pass.
pub(super) struct ManualRun {
    pub guard: OwnedMutexGuard<()>,
    pub reply: oneshot::Sender<Result<ProcessorRun, StoreError>>,
}

impl Slot {
    pub fn new(registration: Registration) -> (Self, mpsc::Receiver<ManualRun>) {
        // The lock admits one manual pass at a time, so one message fits.
        let (manual_tx, manual_rx) = mpsc::channel(1);
        let slot = Self {
            registration,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            running: AtomicBool::new(false),
            times: Mutex::new(Times::default()),
            manual_tx,
        };
        (slot, manual_rx)
    }

    pub fn name(&self) -> &str {
        self.registration.processor.name()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn times(&self) -> Times {
        match self.times.lock() {
            Ok(times) => *times,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn update_times(&self, change: impl FnOnce(&mut Times)) {
        match self.times.lock() {
            Ok(mut times) => change(&mut times),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    /// When the newest pass started, as far as this server has seen.
    pub fn last_run_time(&self) -> Option<UnixMicros> {
        self.times().last_run
    }

    pub fn next_run_time(&self) -> Option<UnixMicros> {
        self.times().next_run
    }

    fn advance_last_run(&self, time: Option<UnixMicros>) {
        self.update_times(|times| times.last_run = times.last_run.max(time));
    }
}

impl Inner {
    /// Runs one pass of slot `index` while holding its lock.
    pub async fn pass(
        &self,
        index: usize,
        trigger: RunTrigger,
        guard: OwnedMutexGuard<()>,
        stop: &CancellationToken,
    ) -> Result<ProcessorRun, StoreError> {
        let slot = &self.slots[index];
        let start_time = UnixMicros::now();
        slot.advance_last_run(Some(start_time));
        slot.running.store(true, Ordering::SeqCst);
        let pass = Pass {
            db: self.db.clone(),
            dir: self.dir.clone(),
            processor: slot.registration.processor.clone(),
            settings: slot.registration.settings,
            trigger,
            start_time,
            stop: stop.clone(),
        };
        let span = tracing::info_span!("processor.pass", processor = %slot.name(), trigger = trigger.as_str());
        let started = std::time::Instant::now();
        let result = pass.run().instrument(span).await;
        let state = result
            .as_ref()
            .map_or("unrecorded", |run| run.state.as_str());
        self.figures.observe(
            &[("processor", slot.name()), ("trigger", trigger.as_str())],
            state,
            started.elapsed(),
        );
        slot.running.store(false, Ordering::SeqCst);
        drop(guard);
        match &result {
            Ok(run) => tracing::info!(
                processor = %slot.name(), run = run.id, state = run.state.as_str(),
                scanned = run.counts.scanned, processed = run.counts.processed,
                skipped = run.counts.skipped(), errors = run.counts.errors,
                deferred = run.counts.deferred, "processor pass ended"
            ),
            Err(err) => {
                tracing::warn!(processor = %slot.name(), error = ?err, "processor pass could not be recorded")
            }
        }
        result
    }
}

/// Runs the workers; built with the service by [`super::ProcessorsService::new`].
pub struct Scheduler {
    pub(super) inner: Arc<Inner>,
    /// Index-aligned with `inner.slots`.
    pub(super) manual_rxs: Vec<mpsc::Receiver<ManualRun>>,
}

impl Scheduler {
    /// Ends the passes a previous run of bosun left RUNNING (it stopped
    /// during them); call before serving.
    pub async fn end_interrupted_passes(&self) -> Result<u64, StoreError> {
        let now = UnixMicros::now();
        let ended = self
            .inner
            .db
            .write(move |conn| store::fail_interrupted_runs(conn, now).boxed())
            .await?;
        if ended > 0 {
            tracing::info!(ended, "ended processor passes interrupted by a restart");
        }
        Ok(ended)
    }

    /// Runs one worker per enabled processor until `stop`; a pass under way
    /// at `stop` ends FAILED before its next transcript.
    pub async fn run(self, stop: CancellationToken) {
        let Scheduler { inner, manual_rxs } = self;
        let now = UnixMicros::now();
        let mut workers = JoinSet::new();
        for (index, manual_rx) in manual_rxs.into_iter().enumerate() {
            let slot = &inner.slots[index];
            if !slot.registration.settings.enabled {
                continue;
            }
            match last_run_start(&inner.db, slot.name()).await {
                Ok(last) => slot.advance_last_run(last),
                Err(err) => {
                    tracing::warn!(processor = %slot.name(), error = ?err, "cannot read the last pass")
                }
            }
            let span = tracing::info_span!("processor.worker", processor = %slot.name());
            workers
                .spawn(work(inner.clone(), index, manual_rx, stop.clone(), now).instrument(span));
        }
        while workers.join_next().await.is_some() {}
    }
}

/// One processor's worker: scheduled passes at its cadence, manual passes
/// when asked.
async fn work(
    inner: Arc<Inner>,
    index: usize,
    mut manual_rx: mpsc::Receiver<ManualRun>,
    stop: CancellationToken,
    scheduler_start: UnixMicros,
) {
    let slot = &inner.slots[index];
    let cadence = slot.registration.settings.cadence;
    let mut not_before = tokio::time::Instant::now();
    loop {
        let next = decide::next_run(true, cadence, slot.last_run_time(), scheduler_start);
        slot.update_times(|times| times.next_run = next);
        let due = next.map_or(Duration::ZERO, |next| {
            Duration::from_micros(u64::try_from(next.0 - UnixMicros::now().0).unwrap_or(0))
        });
        let wake = (tokio::time::Instant::now() + due).max(not_before);
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            Some(manual) = manual_rx.recv() => {
                let result = inner.pass(index, RunTrigger::Manual, manual.guard, &stop).await;
                let _ = manual.reply.send(result);
            }
            () = tokio::time::sleep_until(wake) => match slot.lock.clone().try_lock_owned() {
                Ok(guard) => {
                    let _ = inner.pass(index, RunTrigger::Scheduled, guard, &stop).await;
                }
                Err(_) => not_before = tokio::time::Instant::now() + LOCK_RETRY,
            },
        }
    }
}

/// The start of `processor`'s newest pass, whoever ran it.
async fn last_run_start(db: &Db, processor: &str) -> Result<Option<UnixMicros>, StoreError> {
    store::last_run_start(&mut db.read().await?.conn(), processor).await
}
