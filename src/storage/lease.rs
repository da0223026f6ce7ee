//! Background work runs on one replica at a time: compaction, the
//! reconciler's passes, each processor's passes, reaction timers and the
//! request_id pruning each take a lease named after the job for the length
//! of one pass.
//!
//! On PostgreSQL a lease is a session advisory lock
//! (`pg_try_advisory_lock`) held on a connection of a small pool of its own.
//! The lock lives exactly as long as that connection: a replica that dies
//! (even by SIGKILL) loses its connection, the server drops the lock, and
//! the next replica whose loop ticks takes the job over, so a job stalls at
//! most one of its intervals. A replica that is alive but cut off from the
//! database cannot write either, so it cannot do a pass's work twice.
//! Every replica's loops keep ticking; the lease only decides who runs a
//! given pass, and the loops read the last pass's time from the database to
//! keep their cadence whoever ran it.
//!
//! On SQLite one process owns the data dir, so every lease is granted.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::StoreError;

/// The advisory-lock class of bosun's leases ("bosn"), the first of the two
/// keys; the second is `hashtext(job)`.
const LOCK_CLASS: i32 = 0x626f_736e;
/// Connections for leases: one per job held at once.
const LEASE_CONNECTIONS: u32 = 16;

/// Hands out leases; cheap to clone.
#[derive(Clone)]
pub struct Leases {
    shared: Option<PgPool>,
    replica: Arc<str>,
}

impl Leases {
    /// One process owns the database: every lease is granted.
    pub fn local(replica: &str) -> Self {
        Self {
            shared: None,
            replica: replica.into(),
        }
    }

    /// Leases in the PostgreSQL database `options` connect to; connects
    /// lazily, when a job first asks.
    pub fn shared(options: PgConnectOptions, replica: &str) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(LEASE_CONNECTIONS)
            .min_connections(0)
            .connect_lazy_with(options);
        Self {
            shared: Some(pool),
            replica: replica.into(),
        }
    }

    /// This replica's name, as runs record it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Runs `work` under `job`'s lease; `None` (and `work` does not run)
    /// while another replica holds it, or when the lease cannot be asked
    /// for (logged: the next tick asks again).
    pub async fn run<T>(&self, job: &str, work: impl Future<Output = T>) -> Option<T> {
        let lease = match self.try_take(job).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(job, error = ?err, "cannot ask for a lease; skipping this pass");
                return None;
            }
        };
        let result = work.await;
        lease.release().await;
        Some(result)
    }

    /// `job`'s lease, or `None` while another replica holds it.
    pub async fn try_take(&self, job: &str) -> Result<Option<Lease>, StoreError> {
        let Some(pool) = &self.shared else {
            return Ok(Some(Lease { held: None }));
        };
        let mut conn = pool.acquire().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(job)
            .fetch_one(&mut *conn)
            .await?;
        if !taken {
            return Ok(None);
        }
        tracing::debug!(job, replica = %self.replica, "lease taken");
        Ok(Some(Lease {
            held: Some(Held {
                conn,
                job: job.to_owned(),
            }),
        }))
    }
}

/// A job's lease; released when dropped.
pub struct Lease {
    held: Option<Held>,
}

struct Held {
    conn: PoolConnection<Postgres>,
    job: String,
}

impl Lease {
    /// Gives the lease back at once (dropping it does too, by closing its
    /// connection).
    pub async fn release(mut self) {
        if let Some(mut held) = self.held.take() {
            let released = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LOCK_CLASS)
                .bind(&held.job)
                .execute(&mut *held.conn)
                .await;
            if let Err(err) = released {
                tracing::warn!(job = %held.job, error = %err, "releasing a lease failed; closing its connection");
                held.conn.close_on_drop();
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            // Not released by a query: the lock goes with the connection.
            held.conn.close_on_drop();
        }
    }
}
