//! Sessions (SPEC §6): projects under management and the agent sessions that
//! work on them, with their pull requests, CI checks, review comments, a
//! runtime-health quarantine and durable reactions. This module holds the
//! domain types; [`decide`] the pure rules for probes, activity and display
//! status; [`reactions`] the pure reaction planner.

pub mod attention;
mod convert;
mod convert_answers;
mod convert_projects;
mod convert_reads;
pub mod decide;
mod error;
mod grpc;
mod observe;
mod projects;
mod react;
pub mod reactions;
mod reads;
mod service;
mod store;
mod timers;
mod view;

pub use convert_answers::{
    check_from_payload, pull_request_from_payload, reaction_from_payload, session_from_payload,
};
pub use convert_projects::project_from_payload;
pub use error::SessionError;
pub use grpc::SessionsApi;
pub use observe::{
    CheckReport, PullRequestReport, ReportOutcome, SessionRef, origin_matches, origin_repo,
};
pub use projects::{NewProject, ProjectPatch};
pub use reads::{AttentionItem, HeldTask};
pub(crate) use service::insert_not_started;
pub use service::{Launch, NewSession, SessionFilter, SessionsService};
pub use store::{ReactionQuery, SessionOrder, SessionQuery};
pub(crate) use store::{get_project, list_projects};
pub use view::{PullRequestView, SessionView};

use serde::{Deserialize, Serialize};

use crate::slug::slug_enum;
use crate::time::UnixMicros;

slug_enum!(
    /// Where a session is in its life. Done and terminated are terminal.
    SessionState {
        NotStarted => "not_started",
        Working => "working",
        Idle => "idle",
        NeedsInput => "needs_input",
        Stuck => "stuck",
        Detecting => "detecting",
        Done => "done",
        Terminated => "terminated",
    }
);

impl SessionState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Terminated)
    }
}

slug_enum!(
    /// Why a session was terminated.
    TerminationReason {
        ManuallyKilled => "manually_killed",
        RuntimeLost => "runtime_lost",
        AgentProcessExited => "agent_process_exited",
        ProbeFailure => "probe_failure",
        ErrorInProcess => "error_in_process",
        AutoCleanup => "auto_cleanup",
        PrMerged => "pr_merged",
    }
);
slug_enum!(
    /// The coding agent that runs a session.
    Harness { ClaudeCode => "claude-code", Codex => "codex", Aider => "aider", Opencode => "opencode", Other => "other" }
);
slug_enum!(
    /// The pipeline role a session works.
    Role { Analyst => "analyst", Developer => "developer", Reviewer => "reviewer", Tester => "tester", Deployer => "deployer" }
);
slug_enum!(
    /// An activity signal from the agent.
    ActivityState {
        Active => "active",
        Ready => "ready",
        Idle => "idle",
        WaitingInput => "waiting_input",
        Blocked => "blocked",
        Exited => "exited",
    }
);
slug_enum!(
    /// Where an activity signal came from.
    ActivitySource { Hook => "hook", Transcript => "transcript", Terminal => "terminal", Runtime => "runtime" }
);
slug_enum!(
    /// What a probe found of the session's runtime (tmux pane, container...).
    RuntimeProbe { Alive => "alive", Dead => "dead", ProbeFailed => "probe_failed" }
);
slug_enum!(
    /// What a probe found of the agent process.
    ProcessProbe { Alive => "alive", Dead => "dead", Unknown => "unknown" }
);
slug_enum!(
    /// A pull request's state on the forge.
    PullRequestState { Open => "open", Closed => "closed", Merged => "merged" }
);
slug_enum!(
    /// The forge's review decision.
    ReviewDecision { ReviewRequired => "review_required", Approved => "approved", ChangesRequested => "changes_requested" }
);
slug_enum!(
    /// The overall CI state of a pull request.
    CiState { None => "none", Pending => "pending", Passing => "passing", Failing => "failing" }
);
slug_enum!(
    /// Whether the forge can merge a pull request.
    Mergeability { Mergeable => "mergeable", Conflicting => "conflicting", Blocked => "blocked", Unknown => "unknown" }
);
slug_enum!(
    /// One CI check run's status.
    CheckStatus { Pending => "pending", Passed => "passed", Failed => "failed", Cancelled => "cancelled", Skipped => "skipped" }
);
slug_enum!(
    /// How soon a reaction needs attention.
    ReactionPriority { Urgent => "urgent", Action => "action", Info => "info" }
);
slug_enum!(
    /// Who a reaction is for.
    ReactionTarget { Agent => "agent", Human => "human" }
);
slug_enum!(
    /// Pending and escalated are open; cleared is final.
    ReactionStatus { Pending => "pending", Escalated => "escalated", Cleared => "cleared" }
);
slug_enum!(
    /// The status shown for a session, derived on read (first match wins, in
    /// this order), never stored.
    DisplayStatus {
        Done => "done",
        Killed => "killed",
        Cleanup => "cleanup",
        Errored => "errored",
        NeedsInput => "needs_input",
        Stuck => "stuck",
        Detecting => "detecting",
        Spawning => "spawning",
        Merged => "merged",
        CiFailed => "ci_failed",
        Draft => "draft",
        ChangesRequested => "changes_requested",
        Mergeable => "mergeable",
        Approved => "approved",
        ReviewPending => "review_pending",
        PrOpen => "pr_open",
        Idle => "idle",
        Working => "working",
    }
);

/// A repository under management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub repo_path: Option<String>,
    pub origin_url: Option<String>,
    pub display_name: String,
    pub register_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
    pub archive_time: Option<UnixMicros>,
    /// Percent, 0..=100; 0 = passing tests are enough.
    pub coverage_threshold: f64,
    pub plane: Option<PlaneBinding>,
    pub required_ci_contexts: Vec<String>,
}

/// A project's Plane tracker and which state names mean what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneBinding {
    pub workspace_slug: String,
    pub plane_project_id: String,
    pub in_progress_state: String,
    pub approved_state: String,
    pub rejected_state: String,
}

/// One coding-agent run. Field names equal the columns of `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub project_id: String,
    pub task_id: Option<i64>,
    pub role: Option<Role>,
    pub issue_id: Option<String>,
    pub harness: Harness,
    pub state: SessionState,
    /// Set only when terminated.
    pub termination_reason: Option<TerminationReason>,
    pub termination_detail: Option<String>,
    pub is_alive: bool,
    /// The last activity signal: state, source and when bosun received it.
    pub activity_state: Option<ActivityState>,
    pub activity_source: Option<ActivitySource>,
    pub activity_time: Option<UnixMicros>,
    /// The detecting quarantine's memory; all set or all unset.
    pub detecting_attempts: u32,
    pub detecting_start_time: Option<UnixMicros>,
    pub detecting_evidence_hash: Option<String>,
    pub detecting_last_evidence: Option<String>,
    pub branch: Option<String>,
    pub workspace_path: Option<String>,
    pub runtime_handle_id: Option<String>,
    pub runtime_name: Option<String>,
    pub agent_session_id: Option<String>,
    pub prompt: Option<String>,
    pub create_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
    pub start_time: Option<UnixMicros>,
    pub end_time: Option<UnixMicros>,
    pub restore_time: Option<UnixMicros>,
}

impl Session {
    /// Whether the detecting quarantine holds a memory.
    pub fn is_detecting_remembered(&self) -> bool {
        self.detecting_start_time.is_some()
    }

    /// The latest of create_time, update_time and activity_time (what
    /// ListSessions' last-activity order sorts by).
    pub fn last_activity_time(&self) -> UnixMicros {
        [self.update_time, self.activity_time]
            .into_iter()
            .flatten()
            .fold(self.create_time, |latest, time| latest.max(time))
    }

    /// Forgets the detecting memory.
    pub fn clear_detecting(&mut self) {
        self.detecting_attempts = 0;
        self.detecting_start_time = None;
        self.detecting_evidence_hash = None;
        self.detecting_last_evidence = None;
    }
}

/// A session's pull request, as last fetched from the forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub session_id: String,
    pub project_id: String,
    pub url: String,
    pub number: i64,
    pub state: PullRequestState,
    pub review_decision: Option<ReviewDecision>,
    pub ci_state: Option<CiState>,
    pub mergeability: Option<Mergeability>,
    pub draft: bool,
    pub head_sha: Option<String>,
    pub branch: Option<String>,
    /// Kept when a report carries none.
    #[serde(default)]
    pub title: Option<String>,
    pub create_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
}

/// One run of one CI check on one commit. Rows are kept as history: the
/// newest runs of a check tell whether it keeps failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: i64,
    pub session_id: String,
    pub project_id: String,
    pub pull_request_number: i64,
    pub name: String,
    pub commit_sha: String,
    pub status: CheckStatus,
    pub url: Option<String>,
    /// The end of the check's log (at most 16 KiB).
    pub log_tail: Option<String>,
    pub create_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
}

/// A review comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub author: Option<String>,
    pub body: String,
    pub path: Option<String>,
    pub line: Option<i32>,
    pub resolved: bool,
}

/// A nudge for the agent or a notice for a person, raised from session
/// facts. At most one open (pending or escalated) reaction per session and
/// key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub id: i64,
    pub session_id: String,
    pub project_id: String,
    /// ci-failed, review-comments, merge-conflicts, agent-idle,
    /// approved-and-green, agent-stuck, agent-needs-input, agent-exited,
    /// pr-closed, pr-merged.
    pub key: String,
    pub priority: ReactionPriority,
    pub target: ReactionTarget,
    pub status: ReactionStatus,
    pub message: String,
    pub nudge_count: u32,
    /// What makes a repeat the same: the failing commit, the comment-id set.
    pub dedup_key: Option<String>,
    pub create_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
    pub nudge_time: Option<UnixMicros>,
    pub escalate_time: Option<UnixMicros>,
    pub clear_time: Option<UnixMicros>,
}
