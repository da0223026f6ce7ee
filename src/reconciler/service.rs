//! The Reconciler service: one pass at a time (scheduled or manual), the
//! kill-switches, the background loop, and what GetStatus shows.

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
use crate::storage::{Db, StoreError};
use crate::tasks::TasksService;
use crate::time::UnixMicros;

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
    /// Builds the reconciler and marks passes a stopped process left
    /// RUNNING as FAILED.
    pub async fn open(
        db: Db,
        tasks: TasksService,
        config: ReconcilerConfig,
    ) -> Result<Self, StoreError> {
        let interrupted = db
            .write(|conn| async move { store::fail_interrupted(conn).await }.boxed())
            .await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "reconciler passes interrupted by a stop marked failed"
            );
        }
        let switches = Switches::default();
        switches.set(Side::Gate, config.gate_side_enabled);
        switches.set(Side::Tracker, config.tracker_side_enabled);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                tasks,
                plane: PlaneClient::new(&config.plane),
                config,
                switches,
                running: Mutex::new(None),
                next_run: Mutex::new(None),
                figures: PassFigures::default(),
            }),
        })
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

    /// Runs one pass of the sides asked for (`None`: both) that are switched
    /// on, to its end even if the caller goes away.
    pub async fn run_once(
        &self,
        trigger: RunTrigger,
        side: Option<Side>,
    ) -> Result<Run, ReconcilerError> {
        let switches = &self.inner.switches;
        let gate = side.is_none_or(|s| s == Side::Gate) && switches.gate();
        let tracker = side.is_none_or(|s| s == Side::Tracker) && switches.tracker();
        if !gate && !tracker {
            return Err(ReconcilerError::Disabled);
        }
        let claim = self.claim()?;
        let inner = self.inner.clone();
        tokio::spawn(async move { pass::run(&inner, claim, trigger, side, gate, tracker).await })
            .await
            .map_err(|err| ReconcilerError::Internal(err.to_string()))?
    }

    /// Starts a scheduled pass every interval until `stop`; a pass that comes
    /// due while another runs is skipped.
    pub async fn run_every(self, stop: CancellationToken) {
        let interval = self.inner.config.interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            *lock(&self.inner.next_run) = Some(UnixMicros::now().plus(interval));
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.run_once(RunTrigger::Scheduled, None).await {
                Ok(_) | Err(ReconcilerError::Disabled) => {}
                Err(ReconcilerError::PassRunning { run_id }) => {
                    tracing::info!(
                        run_id,
                        "scheduled reconciler pass skipped: another is running"
                    );
                }
                Err(ReconcilerError::Store(StoreError::Closed)) => return,
                Err(err) => tracing::warn!(error = ?err, "scheduled reconciler pass failed"),
            }
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
        let running_run_id = (*lock(&self.inner.running)).filter(|id| *id > 0);
        let next_run_time = (*lock(&self.inner.next_run)).filter(|_| any_side);
        // One read transaction: the last pass, the totals and the actions
        // agree with each other.
        let mut snapshot = self.inner.db.snapshot().await?;
        let mut conn = snapshot.conn();
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
