//! The Reconciler (SPEC §8): a background loop that plays transitions lost
//! with their webhooks through the same code paths the webhooks take. The
//! gate side advances idle tasks whose gate is green now; the tracker side
//! replays tracker issue states (Plane) as StartTask / RecordVerdict. Each
//! pass is a `reconciler_runs` row, hence events on the change log.

mod config;
mod convert;
pub mod decide;
mod error;
mod grpc;
mod pass;
pub mod plane;
mod service;
mod store;
mod tracker;

use serde::{Deserialize, Serialize};

pub use config::{PlaneConfig, ReconcilerConfig, StageGraceConfig};
pub use convert::run_from_payload;
pub use error::ReconcilerError;
pub use grpc::ReconcilerApi;
pub use service::{Reconciler, Switches};

use crate::slug::slug_enum;
use crate::tasks::Stage;
use crate::time::UnixMicros;

slug_enum!(
    /// One side of a pass.
    Side { Gate => "gate", Tracker => "tracker" }
);
slug_enum!(
    /// What started a pass.
    RunTrigger { Scheduled => "scheduled", Manual => "manual" }
);
slug_enum!(
    /// Where a pass is in its life.
    RunState { Running => "running", Succeeded => "succeeded", Failed => "failed" }
);
slug_enum!(
    /// What a pass did to unblock a task.
    ActionKind { Advanced => "advanced", Started => "started", VerdictReplayed => "verdict_replayed" }
);

/// Counts of one side of a pass (or summed over passes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCounts {
    pub scanned: i64,
    pub advanced: i64,
    pub replayed: i64,
    pub skipped: i64,
    pub errors: i64,
}

/// One thing a pass did to unblock a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub run_id: i64,
    pub side: Side,
    pub kind: ActionKind,
    pub task_id: i64,
    pub project_id: String,
    pub work_item_id: String,
    pub tracker_issue_id: Option<String>,
    pub from_stage: Option<Stage>,
    pub to_stage: Stage,
    pub session_id: Option<String>,
    pub action_time: UnixMicros,
}

/// One task, issue or project that failed during a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub side: Side,
    pub project_id: Option<String>,
    pub task_id: Option<i64>,
    pub tracker_issue_id: Option<String>,
    pub reason: String,
    pub message: String,
}

/// One pass. Field names equal the keys of `reconciler_runs_payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub trigger: RunTrigger,
    pub state: RunState,
    pub side: Option<Side>,
    pub start_time: UnixMicros,
    pub end_time: Option<UnixMicros>,
    pub gate_side_ran: bool,
    pub gate_side: SideCounts,
    pub tracker_side_ran: bool,
    pub tracker_side: SideCounts,
    pub projects_polled: i64,
    pub actions: Vec<Action>,
    pub error_details: Vec<RunError>,
    pub error: Option<String>,
    /// The replica that ran the pass; unset for passes recorded before
    /// replicas were.
    pub replica: Option<String>,
}

/// Counts summed over every recorded pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub passes: i64,
    pub failed_passes: i64,
    pub gate_side: SideCounts,
    pub tracker_side: SideCounts,
}

/// What GetStatus shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub settings: Settings,
    pub running_run_id: Option<i64>,
    pub last_run: Option<Run>,
    pub next_run_time: Option<UnixMicros>,
    pub totals: Totals,
    pub recent_unblocks: Vec<Action>,
}

/// The settings as the API shows them: the switches now, the rest from the
/// configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub gate_side_enabled: bool,
    pub tracker_side_enabled: bool,
    pub interval: std::time::Duration,
    pub stage_grace: Vec<(Stage, std::time::Duration)>,
    pub tracker_grace: std::time::Duration,
}
