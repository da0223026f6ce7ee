//! The reaction timer: every tick, on one replica at a time, reactions
//! left unresolved too long are escalated to a person.

use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::error::SessionError;
use super::react;
use super::service::SessionsService;
use crate::storage::{Leases, StoreError};

impl SessionsService {
    /// Escalates merge-conflict and idle reactions left unresolved too long;
    /// returns how many.
    pub async fn escalate_due(&self) -> Result<usize, SessionError> {
        self.write(None, |conn| {
            async move { Ok(react::escalate_due(conn).await?) }.boxed()
        })
        .await
    }

    /// Runs [`Self::escalate_due`] every `interval` until `stop`, each time
    /// under the "reaction_timers" lease (one replica at a time; the others
    /// skip that tick).
    pub async fn run_timers(self, interval: Duration, leases: Leases, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => match leases.run("reaction_timers", self.escalate_due()).await {
                    None | Some(Ok(0)) => {}
                    Some(Ok(escalated)) => tracing::info!(escalated, "escalated unresolved reactions"),
                    Some(Err(SessionError::Store(StoreError::Closed))) => return,
                    Some(Err(err)) => tracing::warn!(error = ?err, "escalating reactions failed"),
                },
            }
        }
    }
}
