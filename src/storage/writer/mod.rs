//! The single writer: every change to the database goes through one
//! connection owned by one task, so writers never race for SQLite's write
//! lock and a transaction never has to upgrade from read to write.
//!
//! Jobs queue on a bounded channel. The writer takes all queued jobs (up to
//! [`MAX_BATCH`]; [`MAX_BATCH_POSTGRES`] on PostgreSQL) and runs them in ONE
//! `BEGIN IMMEDIATE ... COMMIT` (group commit), each inside its own
//! SAVEPOINT so a job that fails or panics is rolled back alone. On
//! PostgreSQL, where a savepoint is a round trip of its own, a batch first
//! runs with none: should a job fail, the transaction is rolled back and
//! the batch runs again, each job in a savepoint (but the first of a
//! transaction: if that one fails, the transaction holds nothing else, so
//! it is rolled back and the next job begins another). So a job may run
//! more than once, which is why it must be `Clone`: each run starts from
//! a copy of what it captured, and only the committed run's changes and
//! result count (what a job does outside the database, none of bosun's
//! own do, happens once per run).
//! Replies are sent only after COMMIT returned: nothing is acknowledged
//! before it is durable. After each commit the new head of the
//! change log is published, which wakes event streams without polling; while
//! streams are open, the rows the batch appended go to them first, read once
//! inside the transaction (see [`super::feed`]).
//!
//! On SQLite the writer runs on a thread of its own and calls SQLite's C
//! API in place ([`Direct`]): a statement is a function call, not a
//! hand-off to a driver's thread and back, so a batch runs its statements
//! back to back while it holds the write lock.
//!
//! A transaction that fails after it began (a full disk, an I/O error) may
//! have been rolled back by SQLite itself; the writer then opens a fresh
//! connection rather than trust the old one's state, so writes succeed
//! again as soon as the fault clears.
//!
//! On PostgreSQL each replica has one such writer, and every batch first
//! locks the change-log counter row (`change_log_head`) for its whole
//! transaction. So write transactions of all replicas run one at a time, as
//! on SQLite: a check-then-insert (one task per issue, session numbers, a
//! request_id) sees every earlier commit, two batches can never deadlock,
//! and change-log seqs follow commit order (see
//! `migrations/postgres/0001_change_log.sql`). Group commit keeps the
//! price of that lock to one transaction per batch, not per call.

mod batch;
mod link;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::StoreError;
use super::sql::Conn;
use batch::{Erased, Guard, Job, JobFn, Outcome, commit_batch, run_alone};
pub use batch::{Head, publish};
pub use link::Link;

/// The most jobs one transaction takes.
pub const MAX_BATCH: usize = 256;
/// The most jobs one PostgreSQL transaction takes. A batch that runs again
/// after a job failed gives each job a savepoint; each one that writes
/// is a subtransaction, and PostgreSQL keeps at most 64 of them per
/// transaction in shared memory (`PGPROC_MAX_CACHED_SUBXIDS`); past that,
/// every snapshot taken meanwhile, on every replica, must look up
/// `pg_subtrans` to tell what is visible. A few jobs nest savepoints of
/// their own, hence some room below 64.
pub const MAX_BATCH_POSTGRES: usize = 48;
/// Jobs waiting beyond this make callers wait (backpressure, not memory).
const QUEUE_DEPTH: usize = 4096;

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs_tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `link`; after every commit it hands what
    /// it appended to the feed (while anyone follows it), publishes the
    /// change-log head, and stops once every handle is dropped
    /// or `stop` is sent, finishing the jobs already queued.
    ///
    /// On SQLite the writer gets a thread of its own (it blocks in SQLite
    /// while a batch runs), driving the jobs on a runtime of its own; on
    /// PostgreSQL it is a task like any other.
    pub fn start(link: Link, head: Head, stop_rx: oneshot::Receiver<()>) -> (Self, JoinHandle<()>) {
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
        let task = match link {
            Link::Sqlite(..) => {
                // A named thread (`bosun-writer` in profiles and `top -H`);
                // the task returned ends when it does.
                let (done_tx, done_rx) = oneshot::channel::<()>();
                let thread = std::thread::Builder::new()
                    .name("bosun-writer".into())
                    .spawn(move || {
                        // Timers only: no I/O driver, so no second signal
                        // driver in the process competing with the main
                        // runtime's for tokio's signal pipe.
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                        {
                            Ok(runtime) => runtime.block_on(run(link, jobs_rx, head, stop_rx)),
                            Err(err) => {
                                tracing::error!(error = %err, "cannot start the writer's runtime");
                            }
                        }
                        let _ = done_tx.send(());
                    });
                // Without its thread every write fails as Closed, which
                // callers report.
                if let Err(err) = thread {
                    tracing::error!(error = %err, "cannot start the writer's thread");
                }
                tokio::spawn(async move {
                    let _ = done_rx.await;
                })
            }
            Link::Postgres(..) => tokio::spawn(run(link, jobs_rx, head, stop_rx)),
        };
        (Self { jobs_tx }, task)
    }

    /// Runs `job` in a write transaction and returns its result once the
    /// transaction has committed. If the job returns `Err`, its changes are
    /// rolled back (other jobs of the batch are unaffected). The job may
    /// run more than once before that (see the module docs).
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, false).await
    }

    /// Runs `job` on the writer connection alone, outside any transaction,
    /// between two batches: for maintenance such as a WAL checkpoint.
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, true).await
    }

    async fn submit<T, E, F>(&self, job: F, outside_transaction: bool) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let run: JobFn = Box::new(move |conn| {
            let job = job.clone();
            async move {
                let result = job(conn).await;
                (result.is_ok(), Box::new(result) as Erased)
            }
            .boxed()
        });
        let (reply_tx, reply_rx) = oneshot::channel();
        let job = Job {
            run,
            reply: reply_tx,
            outside_transaction,
        };
        self.jobs_tx
            .send(job)
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        match reply_rx.await {
            Ok(Ok(erased)) => match erased.downcast::<Result<T, E>>() {
                Ok(result) => *result,
                // `run` above boxes exactly a Result<T, E>.
                Err(_) => unreachable!("write job result has the type it was boxed with"),
            },
            Ok(Err(store_error)) => Err(E::from(store_error)),
            Err(_) => Err(E::from(StoreError::Closed)),
        }
    }
}

async fn run(
    mut link: Link,
    mut jobs_rx: mpsc::Receiver<Job>,
    head: Head,
    mut stop_rx: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Whether the last batch had a job fail: then the next one runs each
    // job in a savepoint from the start rather than risk running twice.
    let mut a_job_failed = false;
    loop {
        let first = tokio::select! {
            job = jobs_rx.recv() => job,
            _ = &mut stop_rx => {
                // Refuse new jobs, finish the queued ones.
                jobs_rx.close();
                jobs_rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut alone = None;
        if first.outside_transaction {
            alone = Some(first);
        } else {
            batch.push(first);
            while batch.len() < link.max_batch() {
                match jobs_rx.try_recv() {
                    Ok(job) if job.outside_transaction => {
                        alone = Some(job);
                        break;
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let guard = if link.free_savepoints() || a_job_failed {
                Guard::EachJob
            } else {
                Guard::Optimistic
            };
            let outcome;
            (outcome, a_job_failed) = commit_batch(&mut link, &mut batch, &head, guard).await;
            if let Outcome::FailedAfterBegin = outcome {
                link = link.reconnect().await;
            }
        }
        if let Some(job) = alone {
            run_alone(&mut link, job).await;
        }
    }
    if let Err(err) = link.close().await {
        tracing::warn!(error = %err, "closing the writer connection failed");
    }
}
