//! Tasks (SPEC §7): tracker work items moving through the delivery pipeline.
//! The stage table (`pipeline`) and the gate table (`gates`) are each defined
//! once, as data; gates are pure functions of recorded [`Facts`]; `decide`
//! turns a gate result into a move; `service` applies moves in one write
//! transaction each, through one path ([`service::settle`]) whoever asks:
//! AdvanceTask, a Record* call, ReleaseTask or the Reconciler.

mod advance;
mod config;
mod convert;
pub mod decide;
mod error;
mod flow;
pub mod gates;
mod grpc;
pub mod pipeline;
mod record;
mod service;
mod store;

use serde::{Deserialize, Serialize};

pub use config::TasksConfig;
pub use convert::{
    ci_status_from_payload, deploy_freeze_from_payload, deploy_status_from_payload,
    task_from_payload, test_report_from_payload, verdict_from_payload,
};
pub use error::TaskError;
pub use flow::{AdvanceOutcome, AdvanceResult};
pub use grpc::TasksApi;
pub use record::{NewVerdict, TaskRef};
pub use service::{NewTask, Started, TaskSettings, TasksService};
pub(crate) use store::note_head_sha;
pub(crate) use store::task_project;
pub use store::{TaskFilter, TaskOrder};

use crate::slug::slug_enum;
use crate::time::UnixMicros;

slug_enum!(
    /// Where a task is in the pipeline, in pipeline order.
    Stage {
        Analysis => "analysis",
        Development => "development",
        Review => "review",
        Testing => "testing",
        Deploy => "deploy",
        Done => "done",
    }
);
slug_enum!(
    /// Why a task is held.
    HoldReason {
        RollbackLimit => "rollback_limit",
        RetryBudgetExhausted => "retry_budget_exhausted",
        MergeUnverified => "merge_unverified",
        DeployDegraded => "deploy_degraded",
    }
);
slug_enum!(
    /// The state of one CI context on one commit.
    CiState { Pending => "pending", Success => "success", Failure => "failure", Error => "error" }
);
slug_enum!(
    /// What a human decided.
    Decision { Approved => "approved", Rejected => "rejected" }
);
slug_enum!(
    /// Where a verdict came from.
    VerdictSource { Tracker => "tracker", PrReview => "pr_review" }
);
slug_enum!(
    /// How a deploy is.
    DeployHealth { Healthy => "healthy", Degraded => "degraded" }
);
slug_enum!(
    /// What a gate or one of its checks concluded.
    GateStatus { Passed => "passed", Failed => "failed", Pending => "pending" }
);

/// A task. Field names equal the keys of the `tasks_payload` view, so the
/// change log's payload deserializes straight into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: i64,
    pub project_id: String,
    pub tracker_issue_id: String,
    pub work_item_id: String,
    pub title: String,
    pub repo: String,
    pub branch: String,
    pub stage: Stage,
    pub head_sha: Option<String>,
    pub rollback_count: u32,
    pub transient_retries: u32,
    pub hold_reason: Option<HoldReason>,
    pub hold_detail: Option<String>,
    pub hold_time: Option<UnixMicros>,
    pub stage_session_id: Option<String>,
    /// Reported finished through AdvanceTask.
    pub stage_session_finished: bool,
    /// Derived on read: pending or live, and not reported finished.
    #[serde(default)]
    pub stage_session_active: bool,
    pub last_gate: Option<GateResult>,
    pub create_time: UnixMicros,
    pub update_time: UnixMicros,
    pub stage_enter_time: UnixMicros,
}

impl Task {
    pub fn is_held(&self) -> bool {
        self.hold_reason.is_some()
    }
}

/// One check of a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCheck {
    pub name: String,
    pub status: GateStatus,
    pub reason: String,
}

/// One evaluation of the gate that leaves a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub stage: Stage,
    pub gate: String,
    pub status: GateStatus,
    pub checks: Vec<GateCheck>,
    pub head_sha: Option<String>,
    pub evaluate_time: UnixMicros,
}

impl GateResult {
    pub fn check(&self, name: &str) -> Option<&GateCheck> {
        self.checks.iter().find(|check| check.name == name)
    }
}

/// The newest state of one CI context on one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiStatus {
    pub repo: String,
    pub sha: String,
    pub branch: Option<String>,
    pub context: String,
    pub state: CiState,
    pub target_url: Option<String>,
    pub description: Option<String>,
    pub create_time: UnixMicros,
    pub update_time: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: i64,
    pub task_id: i64,
    pub decision: Decision,
    pub source: VerdictSource,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub stage: Stage,
    pub create_time: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub id: i64,
    pub task_id: i64,
    pub passed: bool,
    pub coverage_percent: f64,
    pub sha: Option<String>,
    pub summary: Option<String>,
    pub create_time: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployStatus {
    pub id: i64,
    pub task_id: i64,
    pub health: DeployHealth,
    pub detail: Option<String>,
    pub create_time: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployFreeze {
    pub repo: String,
    pub task_id: i64,
    pub detail: Option<String>,
    pub create_time: UnixMicros,
}

/// The state of the task's pull request that the gates read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestFacts {
    pub number: i64,
    pub merged: bool,
    /// The review decision, when the forge reported one, with when the
    /// pull request was last reported.
    pub review_decision: Option<crate::sessions::ReviewDecision>,
    pub report_time: UnixMicros,
}

/// What the gates read: the facts recorded for one task. Verdicts, test
/// reports and deploy statuses are the ones since the task entered its
/// current stage, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// When the task entered its stage: a review decision reported before
    /// it does not count.
    pub stage_enter_time: UnixMicros,
    pub ci_statuses: Vec<CiStatus>,
    pub required_ci_contexts: Vec<String>,
    pub coverage_threshold: f64,
    pub verdicts: Vec<Verdict>,
    pub test_reports: Vec<TestReport>,
    pub deploy_statuses: Vec<DeployStatus>,
    pub deploy_freeze: Option<DeployFreeze>,
    pub pull_request: Option<PullRequestFacts>,
}
