//! The scheduler: one worker task per enabled processor, so processors run
//! in parallel. A worker starts a pass one cadence after the last pass
//! started (scheduled or manual, on any replica), and runs the manual passes
//! RunProcessor hands it, so a pass runs to its end even when its caller
//! goes away. The last-run time advances when a pass starts, whatever its
//! outcome.
//!
//! A processor never has two passes at once: in this process a
//! per-processor lock is held by a pass (or briefly by a reset), and across
//! replicas so is the processor's lease (`processor:<name>`, see
//! [`Leases`]). Every replica's worker ticks; when its pass is due it reads
//! the newest pass from the database, then again holding the lease, and
//! starts one only if it is still due, so the replicas together keep the
//! cadence. Whoever takes the lease ends a pass recorded RUNNING as FAILED:
//! the replica that ran it died holding the lease.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
use crate::storage::{Db, Lease, Leases, StoreError};
use crate::time::UnixMicros;

/// How soon a worker tries again when a reset holds its processor's lock.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// What the service and the workers share.
pub(super) struct Inner {
    pub db: Db,
    /// Which replica runs each processor's passes.
    pub leases: Leases,
    pub dir: Arc<PathBuf>,
    /// When the scheduler was built: a processor that never ran is due a
    /// cadence later.
    pub started: UnixMicros,
    /// Ordered by name.
    pub slots: Vec<Slot>,
    /// Every pass that ends, for /metrics.
    pub figures: PassFigures,
}

/// One processor's place in the scheduler.
pub(super) struct Slot {
    pub registration: Registration,
    /// The name of the processor's lease.
    job: String,
    /// Held by a pass, or by a reset while it deletes.
    pub lock: Arc<tokio::sync::Mutex<()>>,
    running: AtomicBool,
    /// When the newest pass started, as far as this server has seen.
    last_run: Mutex<Option<UnixMicros>>,
    pub manual_tx: mpsc::Sender<ManualRun>,
}

/// A manual pass for a worker to run: the lock and the lease RunProcessor
/// took, and where to send the finished pass.
pub(super) struct ManualRun {
    pub guard: OwnedMutexGuard<()>,
    pub lease: Lease,
    pub reply: oneshot::Sender<Result<ProcessorRun, StoreError>>,
}

impl Slot {
    pub fn new(registration: Registration) -> (Self, mpsc::Receiver<ManualRun>) {
        // The lock admits one manual pass at a time, so one message fits.
        let (manual_tx, manual_rx) = mpsc::channel(1);
        let slot = Self {
            job: format!("processor:{}", registration.processor.name()),
            registration,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            running: AtomicBool::new(false),
            last_run: Mutex::new(None),
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

    /// When the newest pass started, as far as this server has seen.
    pub fn last_run_time(&self) -> Option<UnixMicros> {
        *self.last_run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the last-run time on to `time`, when later.
    pub fn advance_last_run(&self, time: Option<UnixMicros>) {
        let mut last_run = self.last_run.lock().unwrap_or_else(PoisonError::into_inner);
        *last_run = (*last_run).max(time);
    }

    /// When the next scheduled pass is due: a cadence after the last pass
    /// started, or after the scheduler was built (`started`); unset when
    /// the processor is disabled.
    pub fn next_run(&self, started: UnixMicros) -> Option<UnixMicros> {
        let settings = self.registration.settings;
        decide::next_run(
            settings.enabled,
            settings.cadence,
            self.last_run_time(),
            started,
        )
    }

    fn is_due(&self, started: UnixMicros) -> bool {
        self.next_run(started)
            .is_some_and(|next| next <= UnixMicros::now())
    }
}

impl Inner {
    /// Reads `slot`'s latest passes, whoever ran them: the newest start into
    /// its last-run time; whether a pass is recorded RUNNING.
    pub async fn read_latest(&self, slot: &Slot) -> Result<bool, StoreError> {
        let latest = store::latest(&mut self.db.read().await?.conn(), slot.name()).await?;
        slot.advance_last_run(latest.start_time);
        Ok(latest.running.is_some())
    }

    /// Takes `slot`'s lease (call holding its lock); `None` while another
    /// replica holds it. A pass then recorded RUNNING was left by a replica
    /// that died holding the lease: it is ended FAILED. Also reads the
    /// newest start into the last-run time.
    pub async fn take_lease(&self, slot: &Slot) -> Result<Option<Lease>, StoreError> {
        let Some(lease) = self.leases.try_take_fenced(&slot.job).await? else {
            return Ok(None);
        };
        if self.read_latest(slot).await? {
            let (name, now) = (slot.name().to_string(), UnixMicros::now());
            let ended = self
                .db
                .write(move |conn| {
                    async move { store::fail_interrupted_runs(conn, &name, now).await }.boxed()
                })
                .await?;
            tracing::info!(processor = %slot.name(), ended, "ended a processor pass interrupted by a stop");
        }
        Ok(Some(lease))
    }

    /// A scheduled pass of slot `index` (call holding its lock), if one is
    /// due by the newest pass in the database: read first without the lease
    /// (replicas whose pass is not due leave it alone), then holding it.
    /// `Ok(false)` when another replica holds the lease.
    async fn scheduled(
        &self,
        index: usize,
        guard: OwnedMutexGuard<()>,
        stop: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let slot = &self.slots[index];
        self.read_latest(slot).await?;
        if !slot.is_due(self.started) {
            return Ok(true);
        }
        let Some(lease) = self.take_lease(slot).await? else {
            return Ok(false);
        };
        if slot.is_due(self.started) {
            // Its outcome is logged and recorded.
            let _ = self
                .pass(index, RunTrigger::Scheduled, guard, lease, stop)
                .await;
        } else {
            lease.release().await;
        }
        Ok(true)
    }

    /// Runs one pass of slot `index` while holding its lock and its lease;
    /// gives both back when the pass has ended.
    pub async fn pass(
        &self,
        index: usize,
        trigger: RunTrigger,
        guard: OwnedMutexGuard<()>,
        lease: Lease,
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
            replica: self.leases.replica().to_string(),
            stop: lease.stop_with(stop),
            lease_lost: lease.lost_token(),
            fence: lease.fence(),
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
        lease.release().await;
        drop(guard);
        match &result {
            Ok(run) => tracing::info!(
                processor = %slot.name(), run = run.id, state = run.state.as_str(),
                scanned = run.counts.scanned, processed = run.counts.processed,
                skipped = run.counts.skipped(), errors = run.counts.errors,
                deferred = run.counts.deferred, forgotten = run.counts.forgotten,
                "processor pass ended"
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
    /// Ends the passes left RUNNING by a replica that stopped during them,
    /// for every processor whose lease is free (on SQLite: every processor;
    /// a live replica's pass holds its processor's lease). Call before
    /// serving.
    pub async fn end_interrupted_passes(&self) -> Result<(), StoreError> {
        for slot in &self.inner.slots {
            if let Some(lease) = self.inner.take_lease(slot).await? {
                lease.release().await;
            }
        }
        Ok(())
    }

    /// Runs one worker per enabled processor until `stop`; a pass under way
    /// at `stop` ends FAILED before its next transcript.
    pub async fn run(self, stop: CancellationToken) {
        let Scheduler { inner, manual_rxs } = self;
        let mut workers = JoinSet::new();
        for (index, manual_rx) in manual_rxs.into_iter().enumerate() {
            let slot = &inner.slots[index];
            if !slot.registration.settings.enabled {
                continue;
            }
            let span = tracing::info_span!("processor.worker", processor = %slot.name());
            workers.spawn(work(inner.clone(), index, manual_rx, stop.clone()).instrument(span));
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
) {
    let slot = &inner.slots[index];
    let cadence = slot.registration.settings.cadence;
    let mut not_before = tokio::time::Instant::now();
    loop {
        let next = slot.next_run(inner.started);
        let due = next.map_or(Duration::ZERO, |next| {
            Duration::from_micros(u64::try_from(next.0 - UnixMicros::now().0).unwrap_or(0))
        });
        let wake = (tokio::time::Instant::now() + due).max(not_before);
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            Some(manual) = manual_rx.recv() => {
                let result = inner.pass(index, RunTrigger::Manual, manual.guard, manual.lease, &stop).await;
                let _ = manual.reply.send(result);
            }
            () = tokio::time::sleep_until(wake) => match slot.lock.clone().try_lock_owned() {
                Ok(guard) => match inner.scheduled(index, guard, &stop).await {
                    Ok(true) => {}
                    // Another replica runs the processor: ask again a cadence
                    // later (its pass then counts as the last one, or it died
                    // and this replica takes over).
                    Ok(false) => not_before = tokio::time::Instant::now() + cadence,
                    Err(StoreError::Closed) => return,
                    Err(err) => {
                        tracing::warn!(processor = %slot.name(), error = ?err, "cannot start a scheduled pass; trying again a cadence later");
                        not_before = tokio::time::Instant::now() + cadence;
                    }
                },
                Err(_) => not_before = tokio::time::Instant::now() + LOCK_RETRY,
            },
        }
    }
}
