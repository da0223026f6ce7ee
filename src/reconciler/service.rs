//! The Reconciler service: one pass at a time (scheduled or manual), the
//! kill-switches, the background loop, and what GetStatus shows.
//!
//! One pass at a time in this process (the claim) and across replicas (the
//! "reconciler" lease, see [`Leases`]). Every replica's loop ticks; when a
//! pass is due, one interval after the newest pass started whichever
//! replica ran it, the loop reads that from the database, then again
//! holding the lease, and starts a pass only if it is still due, so the
//! replicas together keep the interval. Whoever takes the lease ends a pass
//! recorded RUNNING as FAILED: the replica that ran it died holding the
//! lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::plane::PlaneClient;
use super::store::{self, RunFilter};
use super::{ReconcilerConfig, ReconcilerError, Run, RunTrigger, Settings, Side, Status, pass};
use crate::pagination::{PageRequest, split_page};
use crate::pass_metrics::PassFigures;
use crate::storage::{Db, Lease, Leases, StoreError};
use crate::tasks::TasksService;
use crate::time::UnixMicros;

/// The name of the reconciler's lease.
const JOB: &str = "reconciler";

/// How far back GetStatus looks for unblocked tasks, and how many it shows.
const RECENT: Duration = Duration::from_secs(24 * 60 * 60);
const RECENT_LIMIT: i64 = 50;

/// The run-time kill-switches.
#[derive(Debug, Default)]
pub struct Switches {
    gate: AtomicBool,
    tracker: AtomicBool,
}

impl Switches {
    pub fn gate(&self) -> bool {
        self.gate.load(Ordering::SeqCst)
    }

    pub fn tracker(&self) -> bool {
        self.tracker.load(Ordering::SeqCst)
    }

    pub fn set(&self, side: Side, enabled: bool) {
        match side {
            Side::Gate => self.gate.store(enabled, Ordering::SeqCst),
            Side::Tracker => self.tracker.store(enabled, Ordering::SeqCst),
        }
    }
}

/// Shared by the service, its loop and the passes.
pub(super) struct Inner {
    pub db: Db,
    /// Which replica runs passes.
    pub leases: Leases,
    pub tasks: TasksService,
    pub plane: Option<PlaneClient>,
    pub config: ReconcilerConfig,
    pub switches: Switches,
    /// The pass under way: `Some(0)` while its row is being created.
    running: Mutex<Option<i64>>,
    next_run: Mutex<Option<UnixMicros>>,
    /// Every pass that ends, for /metrics.
    pub figures: PassFigures,
}

impl Inner {
    /// Takes the lease and returns it with the newest pass's start; `None`
    /// while another replica holds it. A pass then recorded RUNNING was left
    /// by a replica that died holding the lease: it is ended FAILED.
    async fn take_lease(&self) -> Result<Option<(Lease, Option<UnixMicros>)>, StoreError> {
        let Some(lease) = self.leases.try_take(JOB).await? else {
            return Ok(None);
        };
        let latest = self.latest().await?;
        if latest.running.is_some() {
            let ended = self
                .db
                .write(|conn| async move { store::fail_interrupted(conn).await }.boxed())
                .await?;
            tracing::warn!(ended, "reconciler pass interrupted by a stop marked failed");
        }
        Ok(Some((lease, latest.start_time)))
    }

    async fn latest(&self) -> Result<store::Latest, StoreError> {
        store::latest(&mut self.db.read().await?.conn()).await
    }
}

/// Held by the pass under way; dropping it frees the slot.
pub(super) struct Claim {
    inner: Arc<Inner>,
}

impl Claim {
    pub fn set_run_id(&self, id: i64) {
        *lock(&self.inner.running) = Some(id);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        *lock(&self.inner.running) = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reconciler; cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

impl Reconciler {
    /// Builds the reconciler, its passes under the lease from `leases`, and
    /// marks a pass a stopped replica left RUNNING as FAILED (when the lease
    /// is free: on SQLite always; a live replica's pass holds it).
    pub async fn open(
        db: Db,
        leases: Leases,
        tasks: TasksService,
        config: ReconcilerConfig,
    ) -> Result<Self, StoreError> {
        let switches = Switches::default();
        switches.set(Side::Gate, config.gate_side_enabled);
        switches.set(Side::Tracker, config.tracker_side_enabled);
        let reconciler = Self {
            inner: Arc::new(Inner {
                db,
                leases,
                tasks,
                plane: PlaneClient::new(&config.plane),
                config,
                switches,
                running: Mutex::new(None),
                next_run: Mutex::new(None),
                figures: PassFigures::default(),
            }),
        };
        if let Some((lease, _)) = reconciler.inner.take_lease().await? {
            lease.release().await;
        }
        Ok(reconciler)
    }

    /// The figures of the passes that ended, for /metrics.
    pub fn pass_figures(&self) -> PassFigures {
        self.inner.figures.clone()
    }

    /// A reloaded configuration resets the kill-switches.
    pub fn apply_config(&self, config: &ReconcilerConfig) {
        self.inner
            .switches
            .set(Side::Gate, config.gate_side_enabled);
        self.inner
            .switches
            .set(Side::Tracker, config.tracker_side_enabled);
    }

    fn claim(&self) -> Result<Claim, ReconcilerError> {
        let mut running = lock(&self.inner.running);
        if let Some(run_id) = *running {
            return Err(ReconcilerError::PassRunning { run_id });
        }
        *running = Some(0);
        Ok(Claim {
            inner: self.inner.clone(),
        })
    }

    /// Which sides a pass asked for `side` (`None`: both) runs: (gate,
    /// tracker), those switched on.
    fn sides(&self, side: Option<Side>) -> Result<(bool, bool), ReconcilerError> {
        let switches = &self.inner.switches;
        let gate = side.is_none_or(|s| s == Side::Gate) && switches.gate();
        let tracker = side.is_none_or(|s| s == Side::Tracker) && switches.tracker();
        if !gate && !tracker {
            return Err(ReconcilerError::Disabled);
        }
        Ok((gate, tracker))
    }

    /// Runs one pass of the sides asked for (`None`: both) that are switched
    /// on, to its end even if the caller goes away. `PassRunning` while a
    /// pass is under way here or on another replica.
    pub async fn run_once(
        &self,
        trigger: RunTrigger,
        side: Option<Side>,
    ) -> Result<Run, ReconcilerError> {
        let (gate, tracker) = self.sides(side)?;
        let claim = self.claim()?;
        let Some((lease, _)) = self.inner.take_lease().await? else {
            // Another replica's pass: 0 while it is being recorded.
            let run_id = self.inner.latest().await?.running.unwrap_or(0);
            return Err(ReconcilerError::PassRunning { run_id });
        };
        self.start(claim, lease, trigger, side, gate, tracker).await
    }

    /// Runs a pass holding the claim and the lease, in a task of its own so
    /// it ends even if the caller goes away.
    async fn start(
        &self,
        claim: Claim,
        lease: Lease,
        trigger: RunTrigger,
        side: Option<Side>,
        gate: bool,
        tracker: bool,
    ) -> Result<Run, ReconcilerError> {
        let inner = self.inner.clone();
        tokio::spawn(
            async move { pass::run(&inner, claim, lease, trigger, side, gate, tracker).await },
        )
        .await
        .map_err(|err| ReconcilerError::Internal(err.to_string()))?
    }

    /// A scheduled pass if one is due: an interval after the newest pass
    /// started, read without the lease (replicas whose pass is not due leave
    /// it alone), then holding it. Returns when the next one is due; a pass
    /// that comes due while another runs (here or on another replica) is
    /// skipped.
    async fn scheduled(&self) -> Result<UnixMicros, ReconcilerError> {
        let interval = self.inner.config.interval;
        let not_due_until = |start: UnixMicros| {
            let due = start.plus(interval);
            (due > UnixMicros::now()).then_some(due)
        };
        let (gate, tracker) = self.sides(None)?;
        let last_start = self.inner.latest().await?.start_time;
        if let Some(due) = last_start.and_then(not_due_until) {
            return Ok(due);
        }
        let claim = self.claim()?;
        let Some((lease, last_start)) = self.inner.take_lease().await? else {
            return Ok(UnixMicros::now().plus(interval));
        };
        if let Some(due) = last_start.and_then(not_due_until) {
            lease.release().await;
            return Ok(due);
        }
        let run = self
            .start(claim, lease, RunTrigger::Scheduled, None, gate, tracker)
            .await?;
        Ok(not_due_until(run.start_time).unwrap_or_else(|| UnixMicros::now().plus(interval)))
    }

    /// Starts a scheduled pass when one is due (see [`Self::scheduled`]),
    /// the first one interval after the start at the earliest, until `stop`.
    pub async fn run_every(self, stop: CancellationToken) {
        let interval = self.inner.config.interval;
        let mut next = UnixMicros::now().plus(interval);
        loop {
            *lock(&self.inner.next_run) = Some(next);
            let wait = u64::try_from(next.0 - UnixMicros::now().0).unwrap_or(0);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_micros(wait)) => {}
            }
            next = match self.scheduled().await {
                Ok(next) => next,
                Err(ReconcilerError::Disabled) => UnixMicros::now().plus(interval),
                Err(ReconcilerError::PassRunning { run_id }) => {
                    tracing::info!(
                        run_id,
                        "scheduled reconciler pass skipped: another is running"
                    );
                    UnixMicros::now().plus(interval)
                }
                Err(ReconcilerError::Store(StoreError::Closed)) => return,
                Err(err) => {
                    tracing::warn!(error = ?err, "scheduled reconciler pass failed");
                    UnixMicros::now().plus(interval)
                }
            };
        }
    }

    pub fn settings(&self) -> Settings {
        let config = &self.inner.config;
        Settings {
            gate_side_enabled: self.inner.switches.gate(),
            tracker_side_enabled: self.inner.switches.tracker(),
            interval: config.interval,
            stage_grace: config.grace.per_stage(),
            tracker_grace: config.tracker_grace,
        }
    }

    /// Sets the kill-switches given (`None` leaves one alone).
    pub fn update_switches(&self, gate: Option<bool>, tracker: Option<bool>) -> Settings {
        for (side, value) in [(Side::Gate, gate), (Side::Tracker, tracker)] {
            if let Some(enabled) = value {
                self.inner.switches.set(side, enabled);
                tracing::info!(
                    side = side.as_str(),
                    enabled,
                    "reconciler kill-switch changed"
                );
            }
        }
        self.settings()
    }

    pub async fn status(&self) -> Result<Status, ReconcilerError> {
        let settings = self.settings();
        let any_side = settings.gate_side_enabled || settings.tracker_side_enabled;
        let running_here = (*lock(&self.inner.running)).filter(|id| *id > 0);
        let next_run_time = (*lock(&self.inner.next_run)).filter(|_| any_side);
        // One read transaction: the last pass, the totals and the actions
        // agree with each other.
        let mut snapshot = self.inner.db.snapshot().await?;
        let mut conn = snapshot.conn();
        let running_run_id = running_here.or(store::latest(&mut conn).await?.running);
        let last_run = store::last_finished(&mut conn).await?;
        let totals = store::totals(&mut conn).await?;
        let recent_unblocks =
            store::actions_since(&mut conn, UnixMicros::now().minus(RECENT), RECENT_LIMIT).await?;
        snapshot.finish().await?;
        Ok(Status {
            running_run_id,
            last_run,
            next_run_time,
            totals,
            recent_unblocks,
            settings,
        })
    }

    /// Passes newest first; the id continues the listing.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        page: PageRequest,
    ) -> Result<(Vec<Run>, Option<i64>), ReconcilerError> {
        let mut reader = self.inner.db.read().await?;
        let runs = store::list_runs(&mut reader.conn(), filter, page.after, page.size + 1).await?;
        Ok(split_page(runs, page.size, |r| r.id))
    }
}
