//! One pass of one processor (the algorithm of SPEC §9): list the
//! transcripts; skip quarantined ones and those not modified since their last
//! read, without reading them; oldest modification first, up to the cap and
//! within the time budget, take the read time, hash, skip when the hash
//! matches, else process. Transcripts are read on blocking threads, several
//! at a time, while the previous batch of results is being stored (see
//! [`super::results`]); one transcript's failure never stops the pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::decide::{self, Precheck, Remembered};
use super::processor::{Processor, StoredTranscript};
use super::results::{self, Outcome, Tally};
use super::store;
use super::transcript::{self, Listed, Transcript, TranscriptKey};
use super::{ProcessorRun, ProcessorSettings, RunCounts, RunState, RunTrigger};
use crate::storage::{Db, StoreError};
use crate::time::UnixMicros;

/// Transcripts whose results are stored in one write transaction.
const WRITE_BATCH: usize = 256;

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
    /// Cancelled at shutdown: the pass then ends FAILED without starting
    /// another transcript.
    pub stop: CancellationToken,
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
                move |conn| {
                    async move {
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
        self.db
            .write(move |conn| async move { store::finish_run(conn, &finished).await }.boxed())
            .await?;
        Ok(run)
    }

    /// The pass proper; `Err` is why it could not go on.
    async fn go_through(&self, run: &mut ProcessorRun) -> Result<(), String> {
        let started_at = Instant::now();
        let dir = self.dir.clone();
        let listed = tokio::task::spawn_blocking(move || transcript::list(&dir))
            .await
            .map_err(|err| format!("listing the transcripts dir failed: {err}"))?
            .map_err(|err| format!("cannot list the transcripts dir: {err}"))?;
        let mut reader = self.db.read().await.map_err(storage_failed)?;
        let remembered = store::remembered(&mut reader.conn(), self.processor.name())
            .await
            .map_err(storage_failed)?;
        drop(reader);
        let candidates = triage(listed, remembered, &mut run.counts);

        let mut started = 0;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Each item is None when the cap or the budget defers the transcript.
        let mut outcomes = futures::stream::iter(candidates)
            .map(|candidate| {
                if run_halted(&mut started, started_at, &self.settings) {
                    return futures::future::ready(Ok(None)).boxed();
                }
                let (dir, processor) = (self.dir.clone(), self.processor.clone());
                tokio::task::spawn_blocking(move || {
                    let Candidate {
                        key, remembered, ..
                    } = candidate;
                    let outcome = read_and_process(&dir, key, remembered.as_ref(), &*processor);
                    Some((outcome, remembered))
                })
                .boxed()
            })
            .buffered(workers);

        // Each full batch is stored while the next one is read: at most one
        // write in flight, tallied in order.
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let mut writing: Option<JoinHandle<Result<Vec<Tally>, String>>> = None;
        while let Some(joined) = outcomes.next().await {
            if self.stop.is_cancelled() {
                tally(writing.take(), run).await?;
                return Err("interrupted: bosun is shutting down".into());
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

    /// Stores a batch of results in one write transaction.
    fn store(
        &self,
        batch: Vec<(Outcome, Option<Remembered>)>,
    ) -> impl Future<Output = Result<Vec<Tally>, String>> + Send + 'static {
        let (db, processor) = (self.db.clone(), self.processor.clone());
        let limit = self.settings.quarantine_after_failures;
        async move {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            db.write(move |conn| {
                async move { results::store(conn, &*processor, batch, limit).await }.boxed()
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
/// oldest modification first (those that cannot be stat'ed first of all).
fn triage(
    listed: Vec<Listed>,
    mut remembered: HashMap<String, Remembered>,
    counts: &mut RunCounts,
) -> Vec<Candidate> {
    counts.scanned = listed.len() as i64;
    let mut candidates = Vec::new();
    for Listed { key, mtime } in listed {
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
    candidates
}

/// Whether the pass may start no more transcripts; counts the one it starts.
fn run_halted(started: &mut u32, started_at: Instant, settings: &ProcessorSettings) -> bool {
    let halt = decide::halt(
        *started,
        started_at.elapsed(),
        settings.max_transcripts_per_pass,
        settings.time_budget,
    );
    if halt.is_none() {
        *started += 1;
    }
    halt.is_some()
}

/// Reads, hashes and (when changed) processes one transcript. Runs on a
/// blocking thread; a panicking processor fails this transcript only.
fn read_and_process(
    dir: &std::path::Path,
    key: TranscriptKey,
    remembered: Option<&Remembered>,
    processor: &dyn Processor,
) -> Outcome {
    let read = match transcript::read(dir, &key) {
        Ok(read) => read,
        Err(message) => {
            return Outcome::Failed {
                key,
                message,
                malformed: 0,
            };
        }
    };
    if decide::same_content(remembered, &read.hash) {
        return Outcome::SameContent {
            key,
            read_time: read.read_time,
        };
    }
    let transcript = Transcript::new(key.clone(), read.content);
    let processed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        processor.process(&transcript)
    }))
    .unwrap_or_else(|_| Err("the processor panicked".to_string()));
    let malformed = transcript.malformed_lines();
    match processed {
        Ok(processed) => Outcome::Processed {
            transcript: StoredTranscript {
                key,
                processed_time: read.read_time,
            },
            hash: read.hash,
            processed,
            malformed,
        },
        Err(message) => Outcome::Failed {
            key,
            message,
            malformed,
        },
    }
}

fn storage_failed(err: StoreError) -> String {
    tracing::warn!(error = ?err, "a processor pass could not use storage");
    "storage failed; see the server log".to_string()
}
