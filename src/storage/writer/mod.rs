//! The single writer: every change to the database goes through one
//! connection owned by one task, so writers never race for SQLite's write
//! lock and a transaction never has to upgrade from read to write.
//!
//! Jobs queue on a bounded channel. The writer takes all queued jobs (up to
//! [`MAX_BATCH`]; [`MAX_BATCH_POSTGRES`] on PostgreSQL) and runs them in ONE
//! `BEGIN IMMEDIATE ... COMMIT` (group commit), each inside its own
//! SAVEPOINT so a job that fails or panics is rolled back alone (on
//! PostgreSQL the first job of a transaction has none: if it fails, the
//! whole transaction is rolled back and the next job begins another).
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

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

mod link;

pub use link::Link;

use super::StoreError;
use super::feed::Feed;
use super::sql::{Conn, JOB_SAVEPOINT, query};

/// The most jobs one transaction takes.
pub const MAX_BATCH: usize = 256;
/// The most jobs one PostgreSQL transaction takes. Each job's savepoint that
/// writes is a subtransaction, and PostgreSQL keeps at most 64 of them per
/// transaction in shared memory (`PGPROC_MAX_CACHED_SUBXIDS`); past that,
/// every snapshot taken meanwhile, on every replica, must look up
/// `pg_subtrans` to tell what is visible. A few jobs nest savepoints of
/// their own, hence some room below 64.
pub const MAX_BATCH_POSTGRES: usize = 48;
/// Jobs waiting beyond this make callers wait (backpressure, not memory).
const QUEUE_DEPTH: usize = 4096;

type Erased = Box<dyn Any + Send>;
/// A job: runs on the connection and returns (succeeded, its boxed result).
type JobFn = Box<dyn for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, (bool, Erased)> + Send>;

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Result<Erased, StoreError>>,
    /// Runs alone, outside any transaction (e.g. a WAL checkpoint).
    outside_transaction: bool,
}

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
    /// rolled back (other jobs of the batch are unaffected).
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, false).await
    }

    /// Runs `job` on the writer connection alone, outside any transaction,
    /// between two batches: for maintenance such as a WAL checkpoint.
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, true).await
    }

    async fn submit<T, E, F>(&self, job: F, outside_transaction: bool) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let run: JobFn = Box::new(move |conn| {
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

/// Where the writer tells what it committed.
pub struct Head {
    pub tx: watch::Sender<i64>,
    pub feed: Arc<Feed>,
    /// Notified after every commit, events or not (SQLite's checkpointer
    /// waits on it).
    pub committed: Arc<Notify>,
}

async fn run(
    mut link: Link,
    mut jobs_rx: mpsc::Receiver<Job>,
    head: Head,
    mut stop_rx: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
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
            if let Outcome::FailedAfterBegin = commit_batch(&mut link, &mut batch, &head).await {
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

/// How a batch ended.
enum Outcome {
    /// Committed, or refused before it began (e.g. the lock was busy): the
    /// connection is in a known state.
    Clean,
    /// Failed inside the transaction or at COMMIT: the connection's
    /// transaction state is unknown.
    FailedAfterBegin,
}

async fn commit_batch(link: &mut Link, batch: &mut Vec<Job>, head: &Head) -> Outcome {
    let published = *head.tx.borrow();
    let mut before = match link.begin(published).await {
        Ok(before) => before,
        Err(err) => {
            fail_all(batch.drain(..).map(|job| job.reply), err);
            return begin_failed(link);
        }
    };
    let mut open = true;
    let mut finished = Vec::with_capacity(batch.len());
    let mut jobs = batch.drain(..);
    while let Some(job) = jobs.next() {
        if !open {
            let published = *head.tx.borrow();
            before = match link.begin(published).await {
                Ok(before) => before,
                Err(err) => {
                    fail_all(
                        std::iter::once(job.reply).chain(jobs.map(|job| job.reply)),
                        err,
                    );
                    return begin_failed(link);
                }
            };
            open = true;
        }
        let guarded = !finished.is_empty() || link.guards_first_job();
        match run_job(link, job.run, guarded).await {
            Ok(Ran::Kept(result)) => finished.push((job.reply, result)),
            // The transaction held only this job: it was rolled back, and
            // the next job begins another.
            Ok(Ran::RolledBack(result)) => {
                let _ = job.reply.send(result);
                open = false;
            }
            Err(err) => {
                // The transaction itself is unusable: fail the whole batch.
                let _ = query("ROLLBACK").execute(&mut link.conn()).await;
                let replies = finished
                    .into_iter()
                    .map(|(reply, _)| reply)
                    .chain(std::iter::once(job.reply))
                    .chain(jobs.map(|job| job.reply));
                fail_all(replies, err);
                return Outcome::FailedAfterBegin;
            }
        }
    }
    drop(jobs);
    if !open {
        // The last job failed alone in a transaction of its own: nothing
        // is left to commit (`finished` only fills in an open one).
        return Outcome::Clean;
    }
    let appended = match link.commit(before, head.feed.wanted()).await {
        Ok(appended) => appended,
        Err(err) => {
            fail_all(finished.into_iter().map(|(reply, _)| reply), err);
            return Outcome::FailedAfterBegin;
        }
    };
    head.feed.push(appended.rows);
    head.committed.notify_one();
    publish(&head.tx, appended.head);
    for (reply, result) in finished {
        // The caller may have gone away; its change is committed regardless.
        let _ = reply.send(result);
    }
    Outcome::Clean
}

/// After a BEGIN that failed: a PostgreSQL BEGIN that failed half-way
/// leaves a transaction open.
fn begin_failed(link: &Link) -> Outcome {
    match link {
        Link::Sqlite(..) => Outcome::Clean,
        Link::Postgres(..) => Outcome::FailedAfterBegin,
    }
}

/// What became of a job that ran.
enum Ran {
    /// Its changes stay in the transaction (none, if it failed in its
    /// savepoint and was rolled back to it).
    Kept(Result<Erased, StoreError>),
    /// It failed with no savepoint of its own, so the whole transaction,
    /// which held only it, was rolled back.
    RolledBack(Result<Erased, StoreError>),
}

/// Runs one job, in a savepoint when `guarded`. The outer `Err` means the
/// transaction can no longer be used; the inner one is this job's own
/// failure (a panic).
///
/// A guarded job that fails is undone with `ROLLBACK TO`. On SQLite each
/// job's savepoint is then released (a function call each), so SQLite,
/// which walks the open savepoints as pages change, holds one at a time.
/// On PostgreSQL savepoints are left for COMMIT (releasing one would not
/// help: a released subtransaction still counts until COMMIT), so batches
/// are smaller there (see [`Link::max_batch`]). An unguarded job (on
/// PostgreSQL, the first of its transaction; see
/// [`Link::guards_first_job`]) that fails is undone with the whole
/// transaction.
async fn run_job(link: &mut Link, run: JobFn, guarded: bool) -> Result<Ran, StoreError> {
    if guarded {
        query(JOB_SAVEPOINT).execute(&mut link.conn()).await?;
    }
    let outcome = AssertUnwindSafe(run(&mut link.conn())).catch_unwind().await;
    let (succeeded, result) = match outcome {
        Ok((succeeded, result)) => (succeeded, Ok(result)),
        Err(_) => {
            tracing::error!("a write job panicked; its changes were rolled back");
            (false, Err(StoreError::Panicked))
        }
    };
    if !guarded {
        if succeeded {
            return Ok(Ran::Kept(result));
        }
        query("ROLLBACK").execute(&mut link.conn()).await?;
        return Ok(Ran::RolledBack(result));
    }
    if !succeeded {
        rollback_job(link).await?;
    }
    if let Link::Sqlite(..) = link {
        query("RELEASE SAVEPOINT bosun_job")
            .execute(&mut link.conn())
            .await?;
    }
    Ok(Ran::Kept(result))
}

/// Undoes the newest job's changes.
async fn rollback_job(link: &mut Link) -> Result<(), StoreError> {
    query("ROLLBACK TO SAVEPOINT bosun_job")
        .execute(&mut link.conn())
        .await?;
    Ok(())
}

async fn run_alone(link: &mut Link, job: Job) {
    let outcome = {
        let mut conn = link.conn();
        AssertUnwindSafe((job.run)(&mut conn)).catch_unwind().await
    };
    let result = match outcome {
        Ok((_, result)) => Ok(result),
        Err(_) => {
            tracing::error!("a maintenance job panicked");
            Err(StoreError::Panicked)
        }
    };
    let _ = job.reply.send(result);
}

fn fail_all(
    replies: impl Iterator<Item = oneshot::Sender<Result<Erased, StoreError>>>,
    err: StoreError,
) {
    tracing::error!(error = ?err, "write transaction failed; every job in it was refused");
    let shared = Arc::new(err);
    for reply in replies {
        let _ = reply.send(Err(StoreError::Batch(shared.clone())));
    }
}

/// Moves the published head forward to `head` (never back: on PostgreSQL
/// the writer and the listener for other replicas' commits both publish).
pub fn publish(head_tx: &watch::Sender<i64>, head: i64) {
    head_tx.send_if_modified(|current| {
        let newer = head > *current;
        if newer {
            *current = head;
        }
        newer
    });
}
