//! What a pass read, stored: a batch of transcripts per write transaction,
//! all together in a few statements (the processor's
//! [`save_all`](super::processor::Processor::save_all) and one state
//! statement), in a savepoint; when that fails, the batch is rolled back and
//! stored again one transcript at a time, each in a savepoint of its own, so
//! a transcript whose result cannot be stored fails alone. And how each
//! result counts in the run.

use super::decide::{self, Remembered};
use super::processor::{Processed, Processor, Saving, StoredTranscript};
use super::store::{self, Failure, Success};
use super::transcript::TranscriptKey;
use super::{MAX_ERROR_DETAILS, ProcessorRun, RunError};
use crate::storage::StoreError;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

/// What reading one transcript came to.
pub enum Outcome {
    Processed {
        transcript: StoredTranscript,
        hash: String,
        processed: Processed,
        malformed: u64,
    },
    /// The content is what was last processed.
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

/// How one stored result counts in the run.
pub enum Tally {
    Processed { items: i64, malformed: u64 },
    SameContent,
    Error { error: RunError, malformed: u64 },
}

impl Tally {
    pub fn count(self, run: &mut ProcessorRun) {
        let counts = &mut run.counts;
        match self {
            Tally::Processed { items, malformed } => {
                counts.processed += 1;
                counts.items += items;
                counts.malformed_lines += malformed as i64;
            }
            Tally::SameContent => counts.skipped_same_hash += 1,
            Tally::Error { error, malformed } => {
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

/// Stores `batch` (results with what the processor remembered of each
/// transcript) inside the caller's write transaction.
pub async fn store(
    conn: &mut Conn<'_>,
    processor: &dyn Processor,
    batch: &[(Outcome, Option<Remembered>)],
    quarantine_after: u32,
) -> Result<Vec<Tally>, StoreError> {
    if batch.len() > 1 {
        conn.begin_savepoint().await?;
        let together = store_together(conn, processor, batch, quarantine_after).await;
        conn.end_savepoint(together.is_ok()).await?;
        match together {
            Ok(tallies) => return Ok(tallies),
            Err(err) => tracing::info!(
                processor = processor.name(), transcripts = batch.len(), error = ?err,
                "storing a batch together failed; storing it one transcript at a time"
            ),
        }
    }
    let mut tallies = Vec::with_capacity(batch.len());
    for (outcome, remembered) in batch {
        conn.begin_savepoint().await?;
        let applied = apply(
            conn,
            processor.name(),
            outcome,
            remembered.as_ref(),
            quarantine_after,
        )
        .await;
        conn.end_savepoint(applied.is_ok()).await?;
        match applied {
            Ok(tally) => tallies.push(tally),
            Err((key, err)) => {
                tracing::warn!(processor = processor.name(), transcript = %key, error = ?err, "storing a transcript's result failed");
                let error = RunError {
                    transcript: key.to_string(),
                    message: "storing the result failed; it will be retried".into(),
                    quarantined: false,
                };
                tallies.push(Tally::Error {
                    error,
                    malformed: 0,
                });
            }
        }
    }
    Ok(tallies)
}

/// Stores the whole batch: the processed transcripts' products and states
/// in a few statements, the others one by one. Any error fails the batch.
async fn store_together(
    conn: &mut Conn<'_>,
    processor: &dyn Processor,
    batch: &[(Outcome, Option<Remembered>)],
    quarantine_after: u32,
) -> Result<Vec<Tally>, StoreError> {
    let mut savings = Vec::new();
    let mut successes = Vec::new();
    let mut tallies = Vec::with_capacity(batch.len());
    for (outcome, remembered) in batch {
        let Outcome::Processed {
            transcript,
            hash,
            processed: Processed { items, product },
            malformed,
        } = outcome
        else {
            let tally = apply(
                conn,
                processor.name(),
                outcome,
                remembered.as_ref(),
                quarantine_after,
            );
            tallies.push(tally.await.map_err(|(_, err)| err)?);
            continue;
        };
        savings.push(Saving {
            product: &**product,
            transcript,
        });
        successes.push(Success {
            transcript: &transcript.key,
            read_time: transcript.processed_time,
            hash,
            items: *items,
        });
        tallies.push(Tally::Processed {
            items: *items,
            malformed: *malformed,
        });
    }
    processor.save_all(conn, &savings).await?;
    store::mark_processed(conn, processor.name(), &successes).await?;
    Ok(tallies)
}

/// Stores one result; on a storage error, names the transcript.
async fn apply(
    conn: &mut Conn<'_>,
    processor: &str,
    outcome: &Outcome,
    remembered: Option<&Remembered>,
    quarantine_after: u32,
) -> Result<Tally, (TranscriptKey, StoreError)> {
    match outcome {
        Outcome::Processed {
            transcript,
            hash,
            processed: Processed { items, product },
            malformed,
        } => {
            let success = Success {
                transcript: &transcript.key,
                read_time: transcript.processed_time,
                hash,
                items: *items,
            };
            let saved = async {
                product.save(&mut *conn, transcript).await?;
                store::mark_processed(conn, processor, &[success]).await
            };
            match saved.await {
                Ok(()) => Ok(Tally::Processed {
                    items: *items,
                    malformed: *malformed,
                }),
                Err(err) => Err((transcript.key.clone(), err)),
            }
        }
        Outcome::SameContent { key, read_time } => {
            match store::advance_processed_time(conn, processor, key.as_str(), *read_time).await {
                Ok(()) => Ok(Tally::SameContent),
                Err(err) => Err((key.clone(), err)),
            }
        }
        Outcome::Failed {
            key,
            message,
            malformed,
        } => {
            let after = decide::after_failure(remembered, quarantine_after);
            let failure = Failure {
                message,
                time: UnixMicros::now(),
                consecutive_failures: after.consecutive_failures,
                quarantined: after.quarantined,
            };
            if let Err(err) = store::mark_failed(conn, processor, key, &failure).await {
                return Err((key.clone(), err));
            }
            let error = RunError {
                transcript: key.to_string(),
                message: message.clone(),
                quarantined: after.quarantined,
            };
            Ok(Tally::Error {
                error,
                malformed: *malformed,
            })
        }
    }
}
