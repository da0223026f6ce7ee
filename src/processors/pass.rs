//! One pass of one processor (the algorithm of SPEC §9): list the
//! transcripts; skip quarantined ones and those not modified since their last
//! read, without reading them; oldest modification first, up to the cap and
//! within the time budget, take the read time, hash, skip when the hash
//! matches, else process. Results are stored in batches, each transcript in
//! its own savepoint, so one transcript's failure never stops the pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::decide::{self, Precheck, Remembered};
use super::processor::{Processed, Processor, StoredTranscript};
use super::store::{self, Failure};
use super::transcript::{self, Listed, Transcript, TranscriptKey};
use super::{
    MAX_ERROR_DETAILS, ProcessorRun, ProcessorSettings, RunCounts, RunError, RunState, RunTrigger,
};
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
    /// Cancelled at shutdown: the pass then ends FAILED without starting
    /// another transcript.
    pub stop: CancellationToken,
}

/// What reading one transcript came to.
enum Outcome {
    Processed {
        key: TranscriptKey,
        read_time: UnixMicros,
        hash: String,
        processed: Processed,
        malformed: u64,
    },
    SameContent {
        key: TranscriptKey,
        read_time: UnixMicros,
    },
    Failed {
        key: TranscriptKey,
        message: String,
        malformed: u64,
    },
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
                let name = name.clone();
                move |conn| {
                    async move { store::insert_run(conn, &name, trigger, start_time).await }.boxed()
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
        let dir = self.dir.clone();
        let listed = tokio::task::spawn_blocking(move || transcript::list(&dir))
            .await
            .map_err(|err| format!("listing the transcripts dir failed: {err}"))?
            .map_err(|err| format!("cannot list the transcripts dir: {err}"))?;
        let mut remembered = store::remembered(self.db.reader(), self.processor.name())
            .await
            .map_err(storage_failed)?;
        let candidates = triage(listed, &mut remembered, &mut run.counts);

        let started_at = Instant::now();
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

        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(joined) = outcomes.next().await {
            if self.stop.is_cancelled() {
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
                self.store(std::mem::take(&mut batch), run).await?;
            }
        }
        self.store(batch, run).await
    }

    /// Stores a batch of outcomes in one transaction and counts them.
    async fn store(
        &self,
        batch: Vec<(Outcome, Option<Remembered>)>,
        run: &mut ProcessorRun,
    ) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let name = self.processor.name().to_string();
        let limit = self.settings.quarantine_after_failures;
        let stored = self
            .db
            .write(move |conn| {
                async move {
                    let mut stored = Vec::with_capacity(batch.len());
                    for (outcome, remembered) in batch {
                        let mut savepoint = sqlx::Acquire::begin(&mut *conn).await?;
                        let tally = apply(&mut savepoint, &name, outcome, remembered.as_ref(), limit).await;
                        match tally {
                            Ok(tally) => {
                                savepoint.commit().await?;
                                stored.push(tally);
                            }
                            Err((key, err)) => {
                                savepoint.rollback().await?;
                                tracing::warn!(processor = %name, transcript = %key, error = ?err, "storing a transcript's result failed");
                                stored.push(Tally::Error(RunError {
                                    transcript: key.to_string(),
                                    message: "storing the result failed; it will be retried".into(),
                                    quarantined: false,
                                }, 0));
                            }
                        }
                    }
                    Ok::<_, StoreError>(stored)
                }
                .boxed()
            })
            .await
            .map_err(storage_failed)?;
        for tally in stored {
            tally.count(run);
        }
        Ok(())
    }
}

/// Counts the transcripts skipped without reading; returns the others,
/// oldest modification first (those that cannot be stat'ed first of all).
fn triage(
    listed: Vec<Listed>,
    remembered: &mut HashMap<String, Remembered>,
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
            key,
            read_time: read.read_time,
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

/// How one stored outcome counts in the run.
enum Tally {
    Processed { items: i64, malformed: u64 },
    SameContent,
    Error(RunError, u64),
}

impl Tally {
    fn count(self, run: &mut ProcessorRun) {
        let counts = &mut run.counts;
        match self {
            Tally::Processed { items, malformed } => {
                counts.processed += 1;
                counts.items += items;
                counts.malformed_lines += malformed as i64;
            }
            Tally::SameContent => counts.skipped_same_hash += 1,
            Tally::Error(error, malformed) => {
                counts.errors += 1;
                counts.malformed_lines += malformed as i64;
                if error.quarantined {
                    counts.quarantined += 1;
                }
                if run.error_details.len() < MAX_ERROR_DETAILS {
                    run.error_details.push(error);
                }
            }
        }
    }
}

/// Stores one outcome; on a storage error, names the transcript.
async fn apply(
    conn: &mut sqlx::SqliteConnection,
    processor: &str,
    outcome: Outcome,
    remembered: Option<&Remembered>,
    quarantine_after: u32,
) -> Result<Tally, (TranscriptKey, StoreError)> {
    match outcome {
        Outcome::Processed {
            key,
            read_time,
            hash,
            processed,
            malformed,
        } => {
            let stored = StoredTranscript {
                key,
                processed_time: read_time,
            };
            let Processed { items, product } = processed;
            let saved = async {
                product.save(&mut *conn, &stored).await?;
                store::mark_processed(conn, processor, &stored.key, read_time, &hash, items).await
            };
            saved.await.map_err(|err| (stored.key.clone(), err))?;
            Ok(Tally::Processed { items, malformed })
        }
        Outcome::SameContent { key, read_time } => {
            store::advance_processed_time(conn, processor, key.as_str(), read_time)
                .await
                .map_err(|err| (key, err))?;
            Ok(Tally::SameContent)
        }
        Outcome::Failed {
            key,
            message,
            malformed,
        } => {
            let after = decide::after_failure(remembered, quarantine_after);
            let failure = Failure {
                message: &message,
                time: UnixMicros::now(),
                consecutive_failures: after.consecutive_failures,
                quarantined: after.quarantined,
            };
            if let Err(err) = store::mark_failed(conn, processor, &key, &failure).await {
                return Err((key, err));
            }
            let error = RunError {
                transcript: key.to_string(),
                message,
                quarantined: after.quarantined,
            };
            Ok(Tally::Error(error, malformed))
        }
    }
}

fn storage_failed(err: StoreError) -> String {
    tracing::warn!(error = ?err, "a processor pass could not use storage");
    "storage failed; see the server log".to_string()
}
