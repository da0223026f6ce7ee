//! The server's background loops: request_id pruning, change-log
//! compaction, reaction timers, the reconciler's passes and the processor
//! scheduler. Each pass runs under its lease, so on PostgreSQL only one
//! replica runs a given pass at a time; all stop when `stop` is cancelled.

use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::Compactor;
use crate::idempotency;
use crate::processors::Scheduler;
use crate::reconciler::Reconciler;
use crate::sessions::SessionsService;
use crate::storage::{Db, Leases, StoreError};

/// How often unresolved reactions are checked for escalation by time.
const REACTION_TICK: Duration = Duration::from_secs(30);

/// How often forgotten request_ids are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// What the loops run over.
pub struct Loops {
    pub db: Db,
    pub leases: Leases,
    pub compactor: Compactor,
    pub sessions: SessionsService,
    pub reconciler: Reconciler,
    pub scheduler: Scheduler,
    pub compaction_interval: Duration,
}

/// Starts every loop; they end once `stop` is cancelled.
pub fn spawn(loops: Loops, stop: &CancellationToken) -> JoinSet<()> {
    let Loops {
        db,
        leases,
        compactor,
        sessions,
        reconciler,
        scheduler,
        compaction_interval,
    } = loops;
    let mut set = JoinSet::new();
    set.spawn(prune_request_ids(db, leases.clone(), stop.clone()));
    set.spawn(compactor.run_every(compaction_interval, leases.clone(), stop.clone()));
    set.spawn(sessions.run_timers(REACTION_TICK, leases, stop.clone()));
    set.spawn(reconciler.run_every(stop.clone()));
    set.spawn(scheduler.run(stop.clone()));
    set
}

async fn prune_request_ids(db: Db, leases: Leases, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                let pruned = db.write(|conn| idempotency::prune(conn).boxed());
                match leases.run("request_id_pruning", pruned).await {
                    None | Some(Ok(0)) => {}
                    Some(Ok(pruned)) => tracing::info!(pruned, "forgot old request ids"),
                    Some(Err(err @ StoreError::Closed)) => {
                        tracing::debug!(error = %err, "request id pruning stopped");
                        return;
                    }
                    Some(Err(err)) => tracing::warn!(error = ?err, "pruning request ids failed"),
                }
            }
        }
    }
}
