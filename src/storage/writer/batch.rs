//! One batch of the writer: its jobs in one transaction, each in a
//! savepoint of its own (but PostgreSQL's first), the replies sent once
//! COMMIT has returned, then the head published and what the batch appended
//! handed to the feed. And a job run alone, outside any transaction.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, oneshot, watch};

use super::link::Link;
use crate::storage::StoreError;
use crate::storage::feed::Feed;
use crate::storage::sql::{Conn, JOB_SAVEPOINT, query};

pub(super) type Erased = Box<dyn Any + Send>;
/// A job: runs on the connection and returns (succeeded, its boxed result).
pub(super) type JobFn =
    Box<dyn for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, (bool, Erased)> + Send>;

pub(super) struct Job {
    pub run: JobFn,
    pub reply: oneshot::Sender<Result<Erased, StoreError>>,
    /// Runs alone, outside any transaction (e.g. a WAL checkpoint).
    pub outside_transaction: bool,
}

/// Where the writer tells what it committed.
pub struct Head {
    pub tx: watch::Sender<i64>,
    pub feed: Arc<Feed>,
    /// Notified after every commit, events or not (SQLite's checkpointer
    /// waits on it).
    pub committed: Arc<Notify>,
}

/// How a batch ended.
pub(super) enum Outcome {
    /// Committed, or refused before it began (e.g. the lock was busy): the
    /// connection is in a known state.
    Clean,
    /// Failed inside the transaction or at COMMIT: the connection's
    /// transaction state is unknown.
    FailedAfterBegin,
}

pub(super) async fn commit_batch(link: &mut Link, batch: &mut Vec<Job>, head: &Head) -> Outcome {
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

pub(super) async fn run_alone(link: &mut Link, job: Job) {
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
