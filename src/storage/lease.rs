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
//! most one of its intervals. Every replica's loops keep ticking; the lease
//! only decides who runs a given pass, and the loops read the last pass's
//! time from the database to keep their cadence whoever ran it.
//!
//! A lease's connection can also end while its replica lives: the server
//! ends it (`pg_terminate_backend`, `idle_session_timeout`), or a proxy or
//! a NAT drops an idle one. The lock is then free, and another replica may
//! take the job while the first still runs its pass. So while a lease is
//! held a keeper task asks its connection every [`CHECK_EVERY`] whether it
//! still lives (which also keeps it from looking idle); when it does not
//! answer, or answers an error, the lease is lost: [`Lease::lost`] fires and
//! the pass stops at its next step. Two passes can then overlap by at most
//! the time it takes to notice ([`CHECK_EVERY`] plus [`CHECK_TIMEOUT`]).
//! Two processor passes' writes cannot: they are fenced ([`Fence`], from
//! [`Leases::try_take_fenced`]), so a write of the old holder that would
//! commit after the new holder took the job fails instead. (The other jobs
//! decide and write in one transaction behind the change-log counter lock,
//! or replay request_id'd calls.) And a pass ends its run row only while
//! that row is still RUNNING, so the replica that took over, which ends the
//! abandoned row FAILED, keeps the last word.
//!
//! On SQLite one process owns the data dir, so every lease is granted.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::{Fence, StoreError};

/// The advisory-lock class of bosun's leases ("bosn"), the first of the two
/// keys; the second is `hashtext(job)`.
const LOCK_CLASS: i32 = 0x626f_736e;
/// Connections for leases: one per job held at once.
const LEASE_CONNECTIONS: u32 = 16;
/// How often a held lease's connection is asked whether it still lives.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long that question may go unanswered before the lease counts as lost.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands out leases; cheap to clone.
#[derive(Clone)]
pub struct Leases {
    shared: Option<PgPool>,
    replica: Arc<str>,
    /// Leases lost while held, by job (clones share it).
    lost: Family<Vec<(String, String)>, Counter>,
}

impl Leases {
    /// One process owns the database: every lease is granted.
    pub fn local(replica: &str) -> Self {
        Self {
            shared: None,
            replica: replica.into(),
            lost: Family::default(),
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
            lost: Family::default(),
        }
    }

    /// Registers `leases_lost`: leases found lost while a pass held them,
    /// by job (always 0 on SQLite).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "leases_lost",
            "Leases of background jobs lost while held (their database connection ended), by job",
            self.lost.clone(),
        );
    }

    /// This replica's name, as runs record it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Runs `work` under `job`'s lease; `None` (and `work` does not run)
    /// while another replica holds it, or when the lease cannot be asked
    /// for (logged: the next tick asks again). `work` is dropped where it
    /// stands, and `None` returned, if the lease is lost meanwhile.
    pub async fn run<T>(&self, job: &str, work: impl Future<Output = T>) -> Option<T> {
        let lease = match self.try_take(job).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(job, error = ?err, "cannot ask for a lease; skipping this pass");
                return None;
            }
        };
        // The keeper logs a loss.
        let result = tokio::select! {
            result = work => Some(result),
            () = lease.lost() => None,
        };
        lease.release().await;
        result
    }

    /// `job`'s lease, or `None` while another replica holds it. Its
    /// [`Lease::fence`] never fails: for jobs whose writes need none.
    pub async fn try_take(&self, job: &str) -> Result<Option<Lease>, StoreError> {
        self.take(job, false).await
    }

    /// `job`'s lease with a fence for its writes ([`Lease::fence`]), or
    /// `None` while another replica holds it. Taking it writes (the job's
    /// generation counts up), so only jobs that check the fence take one.
    pub async fn try_take_fenced(&self, job: &str) -> Result<Option<Lease>, StoreError> {
        self.take(job, true).await
    }

    async fn take(&self, job: &str, fenced: bool) -> Result<Option<Lease>, StoreError> {
        let Some(pool) = &self.shared else {
            return Ok(Some(Lease {
                held: None,
                fence: Fence::none(),
                lost: CancellationToken::new(),
                ended: CancellationToken::new(),
            }));
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
        let fence = match fenced {
            false => Fence::none(),
            true => match Fence::take(&mut conn, job).await {
                Ok(fence) => fence,
                Err(err) => {
                    // The lock goes with the connection, not back to the pool.
                    conn.close_on_drop();
                    return Err(err);
                }
            },
        };
        tracing::debug!(job, replica = %self.replica, "lease taken");
        let lost = CancellationToken::new();
        let (release_tx, release_rx) = oneshot::channel();
        let counted = self
            .lost
            .get_or_create(&vec![("job".to_owned(), job.to_owned())])
            .clone();
        tokio::spawn(keep(
            conn,
            job.to_owned(),
            lost.clone(),
            counted,
            release_rx,
        ));
        Ok(Some(Lease {
            held: Some(release_tx),
            fence,
            lost,
            ended: CancellationToken::new(),
        }))
    }
}

/// A job's lease; released when dropped.
pub struct Lease {
    /// Asks the keeper to release the lock, and answers when it has.
    held: Option<oneshot::Sender<oneshot::Sender<()>>>,
    /// What the pass's writes check.
    fence: Fence,
    /// Fires when the lease's connection was found gone (never for a
    /// local lease).
    lost: CancellationToken,
    /// Fires when the lease is released or dropped.
    ended: CancellationToken,
}

impl Lease {
    /// Resolves when the lease is lost: another replica may hold it now,
    /// so the pass must stop.
    pub fn lost(&self) -> WaitForCancellationFuture<'_> {
        self.lost.cancelled()
    }

    /// Whether the lease is lost (see [`Lease::lost`]).
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// The fence of this lease: a write that checks it fails once another
    /// replica has taken the job (see [`Fence`]); never, for a lease taken
    /// without one ([`Leases::try_take`]).
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// A token cancelled when the lease is lost, for a pass that outlives
    /// borrows of the lease.
    pub fn lost_token(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// A token cancelled when `stop` is, or when this lease is lost: what a
    /// pass that already stops on `stop` watches. It stays tied to the
    /// lease only until the lease is released or dropped.
    pub fn stop_with(&self, stop: &CancellationToken) -> CancellationToken {
        let either = stop.child_token();
        if self.held.is_some() {
            let (lost, ended, either) = (self.lost.clone(), self.ended.clone(), either.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = lost.cancelled() => either.cancel(),
                    () = either.cancelled() => {}
                    () = ended.cancelled() => {}
                }
            });
        }
        either
    }

    /// Gives the lease back at once (dropping it does too, by closing its
    /// connection).
    pub async fn release(mut self) {
        self.ended.cancel();
        if let Some(held) = self.held.take() {
            let (done_tx, done_rx) = oneshot::channel();
            if held.send(done_tx).is_ok() {
                let _ = done_rx.await;
            }
        }
    }
}

/// Holds `job`'s lock on `conn` until asked to release it (or the lease is
/// dropped), asking the connection every [`CHECK_EVERY`] whether it lives;
/// cancels `lost` when it does not.
async fn keep(
    mut conn: PoolConnection<Postgres>,
    job: String,
    lost: CancellationToken,
    counted: Counter,
    mut release: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            asked = &mut release => {
                match asked {
                    Ok(done) => {
                        unlock(&mut conn, &job).await;
                        let _ = done.send(());
                    }
                    // Dropped, not released: the lock goes with the connection.
                    Err(_) => conn.close_on_drop(),
                }
                return;
            }
            _ = ticker.tick() => {
                let answer = tokio::time::timeout(
                    CHECK_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&mut *conn),
                )
                .await;
                let failure = match answer {
                    Ok(Ok(_)) => continue,
                    Ok(Err(err)) => err.to_string(),
                    Err(_) => format!("no answer in {CHECK_TIMEOUT:?}"),
                };
                tracing::warn!(job, error = %failure,
                    "a lease's connection is gone; another replica may take the job, so this pass stops");
                lost.cancel();
                counted.inc();
                // Whatever state it is in, the connection is not reused:
                // closing it frees the lock if the server still holds it.
                // (A release that comes later finds nothing to do.)
                conn.close_on_drop();
                return;
            }
        }
    }
}

async fn unlock(conn: &mut PoolConnection<Postgres>, job: &str) {
    let released = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(job)
        .execute(&mut **conn)
        .await;
    if let Err(err) = released {
        tracing::warn!(job, error = %err, "releasing a lease failed; closing its connection");
        conn.close_on_drop();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The keeper sees the sender dropped and closes the connection.
        self.ended.cancel();
    }
}
