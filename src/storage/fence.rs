//! Fencing tokens: the writes of a pass made under a lease land only while
//! that lease is still this replica's.
//!
//! A lease ([`super::lease`]) can be lost without its replica knowing at
//! once: its connection ended, the lock is free, and another replica may
//! take the job while the first still runs its pass (the keeper notices
//! within seconds). A fence closes that window for the writes that matter.
//! On PostgreSQL, taking a fenced lease (`Leases::try_take_fenced`: the
//! processors') counts the job's generation up in `lease_fences` (on the
//! lease's own connection, after the lock is granted), and the lease's
//! [`Fence`] remembers the generation it took.
//! A fenced write first reads the generation `FOR SHARE`, in the write's own
//! transaction, and fails with [`StoreError::LeaseLost`] unless it is still
//! its own. The row lock orders the two holders: the new holder's count up
//! waits for any transaction of the old holder that read the row to end,
//! and every check of the old holder after the count up sees the new
//! generation. So the old holder's writes all commit before the new holder
//! takes the job, or not at all.
//!
//! On SQLite one process owns the database and a fence never fails.

use std::sync::Arc;

use sqlx::PgConnection;

use super::StoreError;
use super::sql::{Conn, query};

/// What a lease's writes check; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    held: Option<Arc<Held>>,
}

#[derive(Debug)]
struct Held {
    job: String,
    generation: i64,
}

impl Fence {
    /// A fence that never fails: one process owns the database.
    pub fn none() -> Self {
        Self::default()
    }

    /// Counts `job`'s generation up on `conn` (the lease's connection,
    /// holding the job's lock) and returns the fence of that generation.
    /// Waits for a transaction of the previous holder that checked its
    /// fence to end.
    pub(super) async fn take(conn: &mut PgConnection, job: &str) -> Result<Self, StoreError> {
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO lease_fences (job, generation) VALUES ($1, 1) \
             ON CONFLICT (job) DO UPDATE SET generation = lease_fences.generation + 1 \
             RETURNING generation",
        )
        .bind(job)
        .fetch_one(conn)
        .await?;
        Ok(Self {
            held: Some(Arc::new(Held {
                job: job.to_owned(),
                generation,
            })),
        })
    }

    /// Fails with [`StoreError::LeaseLost`] when another replica has taken
    /// the lease since; call first in a write transaction, whose commit then
    /// cannot interleave with the new holder's writes.
    pub async fn check(&self, conn: &mut Conn<'_>) -> Result<(), StoreError> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        let generation: Option<i64> =
            query("SELECT generation FROM lease_fences WHERE job = $1 FOR SHARE")
                .bind(held.job.as_str())
                .fetch_optional_scalar(conn)
                .await?;
        if generation == Some(held.generation) {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(held.job.clone()))
        }
    }
}
