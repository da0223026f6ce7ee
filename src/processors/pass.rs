//! One pass of one processor (the algorithm of SPEC §9): list the
//! transcripts; skip quarantined ones and those not modified since their last
//! read, without reading them; oldest modification first, up to the cap and
//! within the time budget, take the read time, hash, skip when the hash
//! matches, else process. Transcripts are read on blocking threads, a chunk
//! of them per thread and several chunks at a time, while the previous batch
//! of results is being stored (see [`super::results`]); one transcript's
//! failure never stops the pass. The cap takes the oldest transcripts
//! exactly; when the time budget runs out, the chunks being read stop at
//! once, so the transcripts left for the next pass are the newest but for
//! the unread rest of those chunks.

mod reading;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::decide::{self, Precheck, Remembered};
use super::processor::Processor;
use super::results::{self, Outcome, Tally};
use super::store;
use super::transcript::{self, Listed, Listing, TranscriptKey};
use super::{ProcessorRun, ProcessorSettings, RunCounts, RunState, RunTrigger};
use crate::storage::{Db, Fence, StoreError};
use crate::time::UnixMicros;
use reading::{Starts, read_and_process};

/// Transcripts whose results are stored in one write transaction.
const WRITE_BATCH: usize = 256;
/// The most transcripts one blocking thread reads in a row.
const READ_CHUNK: usize = 32;
/// Why a pass that was stopped failed: a shutdown, or a lost lease.
const SHUTTING_DOWN: &str = "interrupted: bosun is shutting down";
const LEASE_LOST: &str =
    "interrupted: this replica lost the processor's lease (its database connection ended)";
/// Why a pass whose write was refused by its fence failed.
const FENCED: &str = "interrupted: another replica took the processor's lease over; \
     this replica's last batch was not stored";

/// What one pass needs.
pub struct Pass {
    pub db: Db,
    pub dir: Arc<PathBuf>,
    pub processor: Arc<dyn Processor>,
    pub settings: ProcessorSettings,
    pub trigger: RunTrigger,
    pub start_time: UnixMicros,
    /// The replica running the pass, as its row records it.
    pub replica: String,
    /// Cancelled at shutdown, or when this replica loses the processor's
    /// lease: the pass then ends FAILED without starting another transcript.
    pub stop: CancellationToken,
    /// Cancelled when the lease is lost (which of the two stopped it).
    pub lease_lost: CancellationToken,
    /// The lease's fence, checked by every write of the pass but the one
    /// that ends its run row (which ends only a RUNNING row).
    pub fence: Fence,
}

/// A transcript to read, and what the processor remembers of it.
struct Candidate {
    key: TranscriptKey,
    mtime: Option<UnixMicros>,
    remembered: Option<Remembered>,
}

impl Pass {
    /// Runs the pass to its end and returns it as stored. `Err` only when
    /// not even its row could be written.
    pub async fn run(self) -> Result<ProcessorRun, StoreError> {
        let name = self.processor.name().to_string();
        let (trigger, start_time) = (self.trigger, self.start_time);
        let id = self
            .db
            .write({
                let (name, replica) = (name.clone(), self.replica.clone());
                let fence = self.fence.clone();
                move |conn| {
                    async move {
                        fence.check(conn).await?;
                        store::insert_run(conn, &name, trigger, start_time, &replica).await
                    }
                    .boxed()
                }
            })
            .await?;
        let mut run = ProcessorRun {
            id,
            processor: name,
            trigger,
            state: RunState::Running,
            start_time,
            end_time: None,
            counts: RunCounts::default(),
            error_details: Vec::new(),
            capped: false,
            error: None,
            replica: Some(self.replica.clone()),
        };
        let outcome = self.go_through(&mut run).await;
        run.state = match outcome {
            Ok(()) => RunState::Succeeded,
            Err(error) => {
                tracing::warn!(processor = %run.processor, run = run.id, %error, "processor pass failed");
                run.error = Some(error);
                RunState::Failed
            }
        };
        run.end_time = Some(UnixMicros::now());
        let finished = run.clone();
        let stored = self
            .db
            .write(move |conn| async move { store::finish_run(conn, &finished).await }.boxed())
            .await?;
        match stored {
            None => Ok(run),
            Some(stored) => {
                tracing::warn!(processor = %run.processor, run = run.id, state = stored.state.as_str(),
                    "another replica ended this pass's run first (this one lost the lease); its outcome stands");
                Ok(stored)
            }
        }
    }

    /// The pass proper; `Err` is why it could not go on.
    async fn go_through(&self, run: &mut ProcessorRun) -> Result<(), String> {
        let started_at = Instant::now();
        let dir = self.dir.clone();
        let listing = tokio::task::spawn_blocking(move || transcript::list(&dir))
            .await
            .map_err(|err| format!("listing the transcripts dir failed: {err}"))?
            .map_err(|err| format!("cannot list the transcripts dir: {err}"))?;
        let mut reader = self.db.read().await.map_err(storage_failed)?;
        let remembered = store::remembered(&mut reader.conn(), self.processor.name())
            .await
            .map_err(storage_failed)?;
        drop(reader);
        let (mut candidates, gone) = triage(listing, remembered, &mut run.counts);
        run.counts.forgotten = self.forget(gone).await?;
        let cap = self.settings.max_transcripts_per_pass as usize;
        if cap > 0 && candidates.len() > cap {
            run.counts.deferred += (candidates.len() - cap) as i64;
            run.capped = true;
            candidates.truncate(cap);
        }

        // Transcripts are read a chunk at a time on a blocking thread (a
        // hand-off per chunk, not per transcript), `workers` chunks at once;
        // small passes keep one transcript per chunk, so they still spread
        // over the workers. Each item is None when the time budget (or a
        // stop) defers the transcript; the cap was applied above.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = (candidates.len() / (workers * 8)).clamp(1, READ_CHUNK);
        let starts = Arc::new(Starts {
            started: AtomicU32::new(0),
            started_at,
            settings: self.settings,
            stop: self.stop.clone(),
        });
        let mut candidates = candidates.into_iter();
        let chunks = std::iter::from_fn(move || {
            let chunk: Vec<Candidate> = candidates.by_ref().take(chunk).collect();
            (!chunk.is_empty()).then_some(chunk)
        });
        let mut outcomes = futures::stream::iter(chunks)
            .map(|chunk| {
                let (dir, processor) = (self.dir.clone(), self.processor.clone());
                let starts = starts.clone();
                tokio::task::spawn_blocking(move || {
                    let read = |candidate: Candidate| {
                        if !starts.start_one() {
                            return None;
                        }
                        let Candidate {
                            key, remembered, ..
                        } = candidate;
                        let outcome = read_and_process(&dir, key, remembered.as_ref(), &*processor);
                        Some((outcome, remembered))
                    };
                    chunk.into_iter().map(read).collect::<Vec<_>>()
                })
            })
            .buffered(workers)
            .flat_map(|joined| {
                let items: Vec<_> = match joined {
                    Ok(items) => items.into_iter().map(Ok).collect(),
                    Err(err) => vec![Err(err)],
                };
                futures::stream::iter(items)
            });

        // Each full batch is stored while the next one is read: at most one
        // write in flight, tallied in order.
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let mut writing: Option<JoinHandle<Result<Vec<Tally>, String>>> = None;
        while let Some(joined) = outcomes.next().await {
            if self.stop.is_cancelled() {
                tally(writing.take(), run).await?;
                let why = if self.lease_lost.is_cancelled() {
                    LEASE_LOST
                } else {
                    SHUTTING_DOWN
                };
                return Err(why.into());
            }
            match joined.map_err(|err| format!("a worker failed: {err}"))? {
                Some(read) => batch.push(read),
                None => {
                    run.counts.deferred += 1;
                    run.capped = true;
                }
            }
            if batch.len() == WRITE_BATCH {
                tally(writing.take(), run).await?;
                writing = Some(tokio::spawn(self.store(std::mem::take(&mut batch))));
            }
        }
        tally(writing.take(), run).await?;
        tally(Some(tokio::spawn(self.store(batch))), run).await
    }

    /// Forgets transcripts deleted from the folder: their state and what
    /// the processor stored for them, in one write transaction; returns how
    /// many were forgotten.
    async fn forget(&self, gone: Vec<TranscriptKey>) -> Result<i64, String> {
        if gone.is_empty() {
            return Ok(0);
        }
        let (processor, fence) = (self.processor.clone(), self.fence.clone());
        let forgotten = self
            .db
            .write(move |conn| {
                async move {
                    fence.check(conn).await?;
                    processor.forget(conn, &gone).await?;
                    store::forget_gone(conn, processor.name(), &gone).await
                }
                .boxed()
            })
            .await
            .map_err(storage_failed)?;
        tracing::info!(processor = %self.processor.name(), forgotten, "forgot transcripts deleted from the transcripts dir");
        Ok(i64::try_from(forgotten).unwrap_or(i64::MAX))
    }

    /// Stores a batch of results in one write transaction.
    fn store(
        &self,
        batch: Vec<(Outcome, Option<Remembered>)>,
    ) -> impl Future<Output = Result<Vec<Tally>, String>> + Send + 'static {
        let (db, processor) = (self.db.clone(), self.processor.clone());
        let (limit, fence) = (self.settings.quarantine_after_failures, self.fence.clone());
        async move {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            // Shared, not copied, should the writer run the job again.
            let batch = Arc::new(batch);
            db.write(move |conn| {
                async move {
                    fence.check(conn).await?;
                    results::store(conn, &*processor, &batch, limit).await
                }
                .boxed()
            })
            .await
            .map_err(storage_failed)
        }
    }
}

/// Waits for a batch's write and counts its results in the run.
async fn tally(
    writing: Option<JoinHandle<Result<Vec<Tally>, String>>>,
    run: &mut ProcessorRun,
) -> Result<(), String> {
    let Some(writing) = writing else {
        return Ok(());
    };
    let tallies = writing
        .await
        .map_err(|err| format!("a write failed: {err}"))??;
    for tally in tallies {
        tally.count(run);
    }
    Ok(())
}

/// Counts the transcripts skipped without reading; returns the others,
/// oldest modification first (those that cannot be stat'ed first of all),
/// and the remembered transcripts the listing shows gone from the folder,
/// sorted.
fn triage(
    mut listing: Listing,
    mut remembered: HashMap<String, Remembered>,
    counts: &mut RunCounts,
) -> (Vec<Candidate>, Vec<TranscriptKey>) {
    counts.scanned = listing.transcripts.len() as i64;
    let mut candidates = Vec::new();
    for Listed { key, mtime } in std::mem::take(&mut listing.transcripts) {
        let state = remembered.remove(key.as_str());
        let mtime = mtime.ok();
        match decide::precheck(state.as_ref(), mtime) {
            Precheck::Quarantined => counts.skipped_quarantined += 1,
            Precheck::Unchanged => counts.skipped_unchanged += 1,
            Precheck::Read => candidates.push(Candidate {
                key,
                mtime,
                remembered: state,
            }),
        }
    }
    candidates.sort_by(|a, b| (a.mtime, &a.key).cmp(&(b.mtime, &b.key)));
    let mut gone: Vec<TranscriptKey> = remembered
        .into_keys()
        .filter_map(|key| TranscriptKey::parse(&key))
        .filter(|key| listing.shows_gone(key))
        .collect();
    gone.sort();
    (candidates, gone)
}

fn storage_failed(err: StoreError) -> String {
    if let StoreError::LeaseLost(_) = err {
        tracing::warn!(error = %err, "a processor pass's write was fenced off; the pass stops");
        return FENCED.to_string();
    }
    tracing::warn!(error = ?err, "a processor pass could not use storage");
    "storage failed; see the server log".to_string()
}
