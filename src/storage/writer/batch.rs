//! One batch of the writer: its jobs in one transaction, each in a
//! savepoint of its own (on PostgreSQL, none until a job fails; see
//! [`Guard`]), the replies sent once COMMIT has returned, then the head
//! published and what the batch appended handed to the feed. And a job run
//! alone, outside any transaction.

use std::any::Any;
use std::collections::VecDeque;
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
/// It may run more than once: again after a rollback undid its first run
/// (see [`Guard::Optimistic`]).
pub(super) type JobFn =
    Box<dyn for<'c> FnMut(&'c mut Conn<'_>) -> BoxFuture<'c, (bool, Erased)> + Send>;

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

/// Whether a batch's jobs run in savepoints: on PostgreSQL, a savepoint
/// is a round trip per job, so a batch first runs without any and only
/// falls back to them when a job fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Guard {
    /// Every job in a savepoint (but PostgreSQL's first of a transaction).
    EachJob,
    /// No savepoints: should a job after the first fail, the transaction
    /// is rolled back and the batch runs again with [`Guard::EachJob`].
    Optimistic,
}

/// Runs `batch` in one transaction (or more, after a failed job) with
/// `guard` to begin with, and returns how it ended and whether any job
/// failed (then the next batch had better use savepoints from the start).
pub(super) async fn commit_batch(
    link: &mut Link,
    batch: &mut Vec<Job>,
    head: &Head,
    mut guard: Guard,
) -> (Outcome, bool) {
    let mut pending: VecDeque<Job> = batch.drain(..).collect();
    let mut finished: Vec<(Job, Result<Erased, StoreError>)> = Vec::with_capacity(pending.len());
    let mut a_job_failed = false;
    let mut before = None;
    while let Some(mut job) = pending.pop_front() {
        if before.is_none() {
            let published = *head.tx.borrow();
            match link.begin(published).await {
                Ok(begun) => before = Some(begun),
                Err(err) => {
                    fail_all(
                        std::iter::once(job).chain(pending).map(|job| job.reply),
                        err,
                    );
                    return (begin_failed(link), a_job_failed);
                }
            }
        }
        let guarded = guard == Guard::EachJob && (!finished.is_empty() || link.free_savepoints());
        match run_job(link, &mut job.run, guarded).await {
            Ok(Ran::Kept { result, succeeded }) => {
                a_job_failed |= !succeeded;
                finished.push((job, result));
            }
            // The transaction held only this job: it was rolled back, and
            // the next job begins another.
            Ok(Ran::RolledBack(result)) if finished.is_empty() => {
                a_job_failed = true;
                let _ = job.reply.send(result);
                before = None;
            }
            // An optimistic batch's job failed after others: all were
            // rolled back, and run again, each in a savepoint. This job's
            // result came from changes that are gone; it runs again too.
            Ok(Ran::RolledBack(_)) => {
                a_job_failed = true;
                guard = Guard::EachJob;
                pending.push_front(job);
                for (job, _) in finished.drain(..).rev() {
                    pending.push_front(job);
                }
                before = None;
            }
            Err(err) => {
                // The transaction itself is unusable: fail the whole batch.
                let _ = query("ROLLBACK").execute(&mut link.conn()).await;
                let replies = finished
                    .into_iter()
                    .map(|(job, _)| job)
                    .chain(std::iter::once(job))
                    .chain(pending)
                    .map(|job| job.reply);
                fail_all(replies, err);
                return (Outcome::FailedAfterBegin, a_job_failed);
            }
        }
    }
    let Some(before) = before else {
        // The last job failed alone in a transaction of its own: nothing
        // is left to commit (`finished` only fills in an open one).
        return (Outcome::Clean, a_job_failed);
    };
    let appended = match link.commit(before, head.feed.wanted()).await {
        Ok(appended) => appended,
        Err(err) => {
            fail_all(finished.into_iter().map(|(job, _)| job.reply), err);
            return (Outcome::FailedAfterBegin, a_job_failed);
        }
    };
    head.feed.push(appended.rows);
    head.committed.notify_one();
    publish(&head.tx, appended.head);
    for (job, result) in finished {
        // The caller may have gone away; its change is committed regardless.
        let _ = job.reply.send(result);
    }
    (Outcome::Clean, a_job_failed)
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
    Kept {
        result: Result<Erased, StoreError>,
        succeeded: bool,
    },
    /// It failed with no savepoint of its own, so the whole transaction
    /// was rolled back.
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
/// PostgreSQL, the first of its transaction, or any of an optimistic
/// batch; see [`Guard`]) that fails is undone with the whole transaction.
async fn run_job(link: &mut Link, run: &mut JobFn, guarded: bool) -> Result<Ran, StoreError> {
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
            return Ok(Ran::Kept { result, succeeded });
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
    Ok(Ran::Kept { result, succeeded })
}

/// Undoes the newest job's changes.
async fn rollback_job(link: &mut Link) -> Result<(), StoreError> {
    query("ROLLBACK TO SAVEPOINT bosun_job")
        .execute(&mut link.conn())
        .await?;
    Ok(())
}

pub(super) async fn run_alone(link: &mut Link, mut job: Job) {
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
