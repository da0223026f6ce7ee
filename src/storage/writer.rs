//! The single writer: every change to the database goes through one
//! connection owned by one task, so writers never race for SQLite's write
//! lock and a transaction never has to upgrade from read to write.
//!
//! Jobs queue on a bounded channel. The writer takes all queued jobs (up to
//! [`MAX_BATCH`]) and runs them in ONE `BEGIN IMMEDIATE ... COMMIT` (group
//! commit), each inside its own SAVEPOINT so a job that fails or panics is
//! rolled back alone. Replies are sent only after COMMIT returned: nothing is
//! acknowledged before it is durable. After each commit the new head of the
//! change log is published, which wakes event streams without polling.
//!
//! A transaction that fails after it began (a full disk, an I/O error) may
//! have been rolled back by SQLite itself, behind sqlx's back; the writer
//! then opens a fresh connection rather than trust the old one's state, so
//! writes succeed again as soon as the fault clears.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::StoreError;

/// The most jobs one transaction takes.
pub const MAX_BATCH: usize = 256;
/// Jobs waiting beyond this make callers wait (backpressure, not memory).
const QUEUE_DEPTH: usize = 4096;

type Erased = Box<dyn Any + Send>;
/// A job: runs on the connection and returns (succeeded, its boxed result).
type JobFn =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Erased)> + Send>;

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
    /// Starts the writer task on `conn` (opened with `options`, which also
    /// reopen it after a failed transaction); it publishes the change-log
    /// head on `head_tx` after every commit and stops once every handle is
    /// dropped or `stop` is sent, finishing the jobs already queued.
    pub fn start(
        conn: SqliteConnection,
        options: SqliteConnectOptions,
        head_tx: watch::Sender<i64>,
        stop_rx: oneshot::Receiver<()>,
    ) -> (Self, JoinHandle<()>) {
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(conn, options, jobs_rx, head_tx, stop_rx));
        (Self { jobs_tx }, task)
    }

    /// Runs `job` in a write transaction and returns its result once the
    /// transaction has committed. If the job returns `Err`, its changes are
    /// rolled back (other jobs of the batch are unaffected).
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, false).await
    }

    /// Runs `job` on the writer connection alone, outside any transaction,
    /// between two batches: for maintenance such as a WAL checkpoint.
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, true).await
    }

    async fn submit<T, E, F>(&self, job: F, outside_transaction: bool) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
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

async fn run(
    mut conn: SqliteConnection,
    options: SqliteConnectOptions,
    mut jobs_rx: mpsc::Receiver<Job>,
    head_tx: watch::Sender<i64>,
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
            while batch.len() < MAX_BATCH {
                match jobs_rx.try_recv() {
                    Ok(job) if job.outside_transaction => {
                        alone = Some(job);
                        break;
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if let Outcome::FailedAfterBegin = commit_batch(&mut conn, &mut batch, &head_tx).await {
                conn = reconnect(conn, &options).await;
            }
        }
        if let Some(job) = alone {
            run_alone(&mut conn, job).await;
        }
    }
    if let Err(err) = conn.close().await {
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

async fn commit_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Job>,
    head_tx: &watch::Sender<i64>,
) -> Outcome {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(err) => {
            fail_all(batch.drain(..).map(|job| job.reply), err.into());
            return Outcome::Clean;
        }
    };
    let mut finished = Vec::with_capacity(batch.len());
    let mut jobs = batch.drain(..);
    while let Some(job) = jobs.next() {
        match run_job(&mut tx, job.run).await {
            Ok(result) => finished.push((job.reply, result)),
            Err(err) => {
                // The transaction itself is unusable: fail the whole batch.
                let _ = tx.rollback().await;
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
    if let Err(err) = tx.commit().await {
        fail_all(finished.into_iter().map(|(reply, _)| reply), err.into());
        return Outcome::FailedAfterBegin;
    }
    publish_head(conn, head_tx).await;
    for (reply, result) in finished {
        // The caller may have gone away; its change is committed regardless.
        let _ = reply.send(result);
    }
    Outcome::Clean
}

/// A fresh writer connection in place of `old`, whose transaction state is
/// unknown; keeps `old` if none can be opened (the next batch will tell).
async fn reconnect(old: SqliteConnection, options: &SqliteConnectOptions) -> SqliteConnection {
    match options.connect().await {
        Ok(fresh) => {
            if let Err(err) = old.close().await {
                tracing::debug!(error = %err, "closing the failed writer connection failed");
            }
            tracing::info!("writer connection reopened after a failed transaction");
            fresh
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot reopen the writer connection; keeping the old one");
            old
        }
    }
}

/// Runs one job in a savepoint. The outer `Err` means the transaction can no
/// longer be used; the inner one is this job's own failure (a panic).
///
/// The savepoint is never released: COMMIT keeps every job's changes, and a
/// failed job is undone with `ROLLBACK TO`, which leaves the (now empty)
/// savepoint on the stack. So a job costs one extra statement, not two.
async fn run_job(
    tx: &mut Transaction<'_, Sqlite>,
    run: JobFn,
) -> Result<Result<Erased, StoreError>, StoreError> {
    sqlx::query("SAVEPOINT bosun_job")
        .execute(&mut **tx)
        .await?;
    let outcome = AssertUnwindSafe(run(tx)).catch_unwind().await;
    match outcome {
        Ok((true, result)) => Ok(Ok(result)),
        Ok((false, result)) => {
            rollback_job(tx).await?;
            Ok(Ok(result))
        }
        Err(_) => {
            tracing::error!("a write job panicked; its changes were rolled back");
            rollback_job(tx).await?;
            Ok(Err(StoreError::Panicked))
        }
    }
}

/// Undoes the newest job's changes.
async fn rollback_job(tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("ROLLBACK TO bosun_job")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn run_alone(conn: &mut SqliteConnection, job: Job) {
    let result = match AssertUnwindSafe((job.run)(conn)).catch_unwind().await {
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

async fn publish_head(conn: &mut SqliteConnection, head_tx: &watch::Sender<i64>) {
    match sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM change_log")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(head) => {
            head_tx.send_if_modified(|current| {
                let changed = *current != head;
                *current = head;
                changed
            });
        }
        Err(err) => tracing::warn!(error = %err, "reading the change-log head failed"),
    }
}
