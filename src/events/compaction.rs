//! Retention: a background job deletes change-log history older than the
//! retention, never the newest [`KEEP_NEWEST`] events, from the front only
//! (the kept log stays a gapless suffix), in small transactions so writers
//! never wait long, then checkpoints the WAL so the file shrinks.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store;
use crate::storage::sql::{Conn, Engine, query};
use crate::storage::{Db, Leases, StoreError};
use crate::time::UnixMicros;

/// The newest events are always kept, whatever their age.
pub const KEEP_NEWEST: i64 = 10_000;
/// Events deleted per transaction.
const DELETE_BATCH: i64 = 1_000;

/// Runs compaction passes over one database.
#[derive(Clone)]
pub struct Compactor {
    db: Db,
    retention: Duration,
    /// How many passes of this compactor ended.
    passes: Arc<watch::Sender<u64>>,
}

impl Compactor {
    pub fn new(db: Db, retention: Duration) -> Self {
        Self {
            db,
            retention,
            passes: Arc::new(watch::Sender::new(0)),
        }
    }

    /// How many passes have ended (with or without deleting anything):
    /// lets a caller wait for the pass the server runs at start-up.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes.subscribe()
    }

    /// One pass; returns how many events were deleted.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let cutoff = UnixMicros::now().minus(self.retention);
        let mut deleted = 0;
        loop {
            let batch = self
                .db
                .write(move |conn| {
                    async move {
                        let front = store::front(&mut *conn, KEEP_NEWEST, DELETE_BATCH).await?;
                        match last_expired(&front, cutoff) {
                            Some(last) => store::delete_through(conn, last).await,
                            None => Ok(0),
                        }
                    }
                    .boxed()
                })
                .await?;
            deleted += batch;
            if batch < DELETE_BATCH as u64 {
                break;
            }
        }
        if deleted > 0 && self.db.engine() == Engine::Sqlite {
            let busy_timeout = self.db.busy_timeout();
            self.db
                .outside_transaction(move |conn| checkpoint(conn, busy_timeout).boxed())
                .await?;
            tracing::info!(deleted, "compacted the change log");
        }
        self.passes.send_modify(|passes| *passes += 1);
        Ok(deleted)
    }

    /// Runs a pass now and then every `interval` until `stop`, each under
    /// the "compaction" lease (one replica at a time).
    pub async fn run_every(self, interval: Duration, leases: Leases, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => match leases.run("compaction", self.run_once()).await {
                    None | Some(Ok(_)) => {}
                    Some(Err(StoreError::Closed)) => return,
                    Some(Err(err)) => tracing::warn!(error = ?err, "change-log compaction failed; retrying next interval"),
                },
            }
        }
    }
}

/// The last seq of `front` (the log's oldest events, in seq order, as
/// `(seq, create_time)`) that compaction deletes: the events before the
/// first one not older than `cutoff`. An old event after a newer one (the
/// clock went back) stays, so the kept log is always a suffix.
fn last_expired(front: &[(i64, i64)], cutoff: UnixMicros) -> Option<i64> {
    front
        .iter()
        .take_while(|(_, create_time)| *create_time < cutoff.0)
        .last()
        .map(|(seq, _)| *seq)
}

/// Truncates the WAL, waiting at most briefly for readers so the writer is
/// not held up, then restores the connection's `busy_timeout`.
/// (SQLite only: PostgreSQL's autovacuum reclaims the space.)
async fn checkpoint(conn: &mut Conn<'_>, busy_timeout: Duration) -> Result<(), StoreError> {
    query("PRAGMA busy_timeout = 100").execute(conn).await?;
    let result = query("PRAGMA wal_checkpoint(TRUNCATE)").execute(conn).await;
    let restore = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
    query(&restore).execute(conn).await?;
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_takes_the_expired_front_and_stops_at_the_first_kept_event() {
        let cutoff = UnixMicros(100);
        // (seq, create_time) of the front, and the last seq compacted.
        type Front = &'static [(i64, i64)];
        let cases: &[(Front, Option<i64>)] = &[
            (&[], None),
            (&[(1, 10), (2, 20), (3, 30)], Some(3)),
            (&[(1, 10), (2, 100), (3, 30)], Some(1)),
            (&[(5, 99), (6, 100)], Some(5)),
            (&[(1, 100), (2, 10)], None),
            (&[(7, 150)], None),
        ];
        for (front, expected) in cases {
            assert_eq!(last_expired(front, cutoff), *expected, "{front:?}");
        }
    }
}
