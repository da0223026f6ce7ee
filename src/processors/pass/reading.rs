//! A pass's reading side, on blocking threads: whether one more transcript
//! may start, and reading, hashing and processing one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::processors::ProcessorSettings;
use crate::processors::decide::{self, Remembered};
use crate::processors::processor::{Processor, StoredTranscript};
use crate::processors::results::Outcome;
use crate::processors::transcript::{self, Transcript, TranscriptKey};

/// The transcripts a pass has started, against its cap and time budget;
/// shared by the threads reading.
pub(super) struct Starts {
    pub started: AtomicU32,
    pub started_at: Instant,
    pub settings: ProcessorSettings,
    pub stop: CancellationToken,
}

impl Starts {
    /// Whether the pass may start one more transcript; counts it if so.
    /// None starts once the pass is stopped.
    pub fn start_one(&self) -> bool {
        if self.stop.is_cancelled() {
            return false;
        }
        let elapsed = self.started_at.elapsed();
        let (cap, budget) = (
            self.settings.max_transcripts_per_pass,
            self.settings.time_budget,
        );
        self.started
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |started| {
                decide::halt(started, elapsed, cap, budget)
                    .is_none()
                    .then_some(started + 1)
            })
            .is_ok()
    }
}

/// Reads, hashes and (when changed) processes one transcript. Runs on a
/// blocking thread; a panicking processor fails this transcript only.
pub(super) fn read_and_process(
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
