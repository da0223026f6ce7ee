//! Processors (SPEC §9): pluggable passes over agent transcripts, each on its
//! own cadence, with its own state per transcript, isolated from the others.
//!
//! A [`Processor`] turns one transcript into a product it stores; the
//! framework decides which transcripts to read ([`decide`]), reads and hashes
//! them ([`transcript`]), runs the pass ([`pass`]) and schedules passes
//! ([`scheduler`]). This file holds the domain types. The built-in processors
//! are [`usage`] (token usage per transcript and per model) and
//! [`tool_errors`] (failed tool results per tool, bursts become lessons).

mod convert;
pub mod decide;
pub mod dedup;
mod error;
mod grpc;
mod pass;
mod processor;
mod products;
mod results;
mod scheduler;
mod service;
mod store;
pub mod tool_errors;
pub mod transcript;
pub mod usage;
mod usage_store;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lessons::Journal;
use crate::slug::slug_enum;
use crate::time::UnixMicros;

pub use convert::{
    run_from_payload, state_from_payload, tool_errors_from_payload, transcript_usage_from_payload,
    usage_to_pb,
};
pub use error::ProcessorError;
pub use grpc::ProcessorsApi;
pub use processor::{Processed, Processor, Product, Registration, StoredTranscript};
pub use products::usage_total;
pub use scheduler::Scheduler;
pub use service::{ProcessorView, ProcessorsService};
pub use transcript::{Transcript, TranscriptKey};

slug_enum!(
    /// What started a pass.
    RunTrigger { Scheduled => "scheduled", Manual => "manual" }
);
slug_enum!(
    /// Where a pass is in its life.
    RunState { Running => "running", Succeeded => "succeeded", Failed => "failed" }
);

/// How one processor is run: its cadence, bounds and failure limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorSettings {
    /// When false the scheduler does not run it and RunProcessor refuses it.
    pub enabled: bool,
    /// How often the scheduler starts a pass.
    pub cadence: Duration,
    /// At most this many transcripts are hashed per pass; 0 means no cap.
    pub max_transcripts_per_pass: u32,
    /// A pass starts no new transcript after this long; zero means no budget.
    pub time_budget: Duration,
    /// Consecutive failures after which a transcript is quarantined (>= 1).
    pub quarantine_after_failures: u32,
}

/// The built-in processors with their settings.
pub fn builtin(
    usage_settings: ProcessorSettings,
    tool_errors_settings: ProcessorSettings,
    burst_threshold: u32,
    journal: Journal,
) -> Vec<Registration> {
    vec![
        Registration {
            processor: Arc::new(usage::Usage),
            settings: usage_settings,
        },
        Registration {
            processor: Arc::new(tool_errors::ToolErrors {
                journal,
                burst_threshold,
            }),
            settings: tool_errors_settings,
        },
    ]
}

/// One pass of one processor. Field names equal the keys of the
/// `processor_runs_payload` view, so a change-log payload deserializes into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorRun {
    pub id: i64,
    pub processor: String,
    pub trigger: RunTrigger,
    pub state: RunState,
    pub start_time: UnixMicros,
    pub end_time: Option<UnixMicros>,
    #[serde(flatten)]
    pub counts: RunCounts,
    /// The first [`MAX_ERROR_DETAILS`] failures, in order.
    pub error_details: Vec<RunError>,
    pub capped: bool,
    /// Why the pass itself failed; unset unless FAILED.
    pub error: Option<String>,
    /// The replica that ran the pass; unset for passes recorded before
    /// replicas were.
    pub replica: Option<String>,
}

/// What a pass counted. When a pass succeeds:
/// scanned = processed + skipped_* + errors + deferred.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub scanned: i64,
    pub processed: i64,
    pub skipped_unchanged: i64,
    pub skipped_same_hash: i64,
    pub skipped_quarantined: i64,
    pub errors: i64,
    pub items: i64,
    pub malformed_lines: i64,
    pub deferred: i64,
    pub quarantined: i64,
    /// Transcripts remembered from earlier passes that were gone from the
    /// transcripts dir: this pass forgot their state and products. Not
    /// part of `scanned` (they were not listed). 0 in payloads recorded
    /// before it was counted.
    #[serde(default)]
    pub forgotten: i64,
}

impl RunCounts {
    pub fn skipped(&self) -> i64 {
        self.skipped_unchanged + self.skipped_same_hash + self.skipped_quarantined
    }
}

/// Most failures a run keeps the details of (errors counts them all).
pub const MAX_ERROR_DETAILS: usize = 100;

/// One transcript that failed during a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub transcript: String,
    /// Without server paths.
    pub message: String,
    /// Whether this failure quarantined the transcript.
    pub quarantined: bool,
}

/// What one processor remembers about one transcript. Field names equal the
/// keys of the `processor_state_payload` view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorState {
    pub processor: String,
    pub transcript: String,
    pub owner: String,
    /// The read time of the last success, taken before hashing.
    pub processed_time: Option<UnixMicros>,
    pub items: i64,
    pub content_hash: Option<String>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_error_time: Option<UnixMicros>,
    /// Set exactly when the transcript is quarantined.
    pub quarantine_time: Option<UnixMicros>,
}

/// The filters of ListProcessorState; unset ones match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateFilter {
    pub processor: Option<String>,
    pub owner: Option<String>,
    pub transcript: Option<String>,
    pub quarantined_only: bool,
}

/// What ResetProcessorState forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forget {
    pub processor: String,
    /// Empty means every transcript.
    pub transcripts: Vec<String>,
    pub quarantined_only: bool,
}

/// Token usage summed over assistant messages, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub messages: i64,
}

impl TokenUsage {
    /// Adds `other` (saturating: a corrupt count never wraps a total).
    pub fn add(&mut self, other: &TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(other.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(other.cache_read_input_tokens);
        self.messages = self.messages.saturating_add(other.messages);
    }
}

/// The filters of GetUsage; unset ones match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageFilter {
    pub transcript: Option<String>,
    pub owner: Option<String>,
    pub session_id: Option<String>,
    pub model: Option<String>,
}

/// One transcript's usage, split by model (ordered by model name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptUsage {
    pub transcript: String,
    pub owner: String,
    pub session_id: String,
    pub usage: TokenUsage,
    pub by_model: Vec<(String, TokenUsage)>,
    pub processed_time: UnixMicros,
}

/// GetUsage's answer: one page of transcripts, and totals over all matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub transcripts: Vec<TranscriptUsage>,
    /// The transcript key to continue after, when there are more.
    pub next_after: Option<String>,
    pub by_model: Vec<(String, TokenUsage)>,
    pub total: TokenUsage,
}

/// The filters of GetToolErrors; unset ones match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolErrorFilter {
    pub transcript: Option<String>,
    pub owner: Option<String>,
    pub session_id: Option<String>,
}

/// One transcript's failed tool results, per tool (ordered by tool name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptToolErrors {
    pub transcript: String,
    pub owner: String,
    pub session_id: String,
    pub by_tool: Vec<(String, i64)>,
    pub errors: i64,
    pub bursts: i64,
    pub processed_time: UnixMicros,
}

/// GetToolErrors' answer: one page of transcripts, and totals over all
/// matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolErrorReport {
    pub transcripts: Vec<TranscriptToolErrors>,
    /// The transcript key to continue after, when there are more.
    pub next_after: Option<String>,
    pub by_tool: Vec<(String, i64)>,
    pub errors: i64,
    pub bursts: i64,
}
