//! The reaction planner: from a session's facts and its open reactions, the
//! changes to make (open, nudge again, escalate, clear). Pure: the service
//! applies the plan in the same transaction as the facts that caused it.

mod messages;

use std::collections::BTreeSet;
use std::time::Duration;

use super::{
    ActivityState, Check, CheckStatus, CiState, Comment, Mergeability, PullRequest,
    PullRequestState, Reaction, ReactionPriority, ReactionStatus, ReactionTarget, ReviewDecision,
    Session, SessionState, TerminationReason,
};
use crate::time::UnixMicros;
use messages::{ci_failure_message, comment_set_digest, newest_first, review_message, truncated};

/// Merge conflicts and an idle agent escalate after this long unresolved.
pub const ESCALATE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Review-comment nudges before escalating.
pub const MAX_REVIEW_NUDGES: u32 = 3;
/// Consecutive failed runs of one check that escalate ci-failed.
pub const FAILED_RUNS_TO_ESCALATE: usize = 3;

/// What the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub session: &'a Session,
    pub pull_request: Option<&'a PullRequest>,
    /// Every recorded run of every check of the session, newest first.
    pub checks: &'a [Check],
    /// The pull request's current comments.
    pub comments: &'a [Comment],
    pub now: UnixMicros,
}

/// One change to the reactions table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Open a new reaction (status pending, nudge_count 1 for agent targets,
    /// 0 for human ones).
    Open {
        key: &'static str,
        priority: ReactionPriority,
        target: ReactionTarget,
        message: String,
        dedup_key: Option<String>,
    },
    /// Nudge the agent again with a new message (nudge_count + 1).
    Nudge {
        id: i64,
        message: String,
        dedup_key: Option<String>,
    },
    /// Hand the reaction to a person: target human, priority urgent.
    Escalate { id: i64, message: String },
    /// The condition no longer holds.
    Clear { id: i64 },
}

/// Reaction keys, in the order `plan` considers them.
const CI_FAILED: &str = "ci-failed";
const REVIEW_COMMENTS: &str = "review-comments";
const MERGE_CONFLICTS: &str = "merge-conflicts";
const AGENT_IDLE: &str = "agent-idle";

/// The changes the facts call for, given the session's open reactions.
///
/// Choices the contract leaves open:
/// - ci-failed opens on FAILING and is kept (not nudged) while CI is PENDING,
///   so a new push does not clear and reopen it; it clears on PASSING, NONE,
///   an unknown CI state, or when the pull request is no longer open.
/// - When ci-failed would open while the brake already holds, it opens
///   directly for a person (human, urgent) with the escalation message; an
///   agent-key reaction whose target is human counts as escalated.
/// - On a done or terminated session agent keys never open or nudge; a
///   pending one is cleared (a dead agent cannot be nudged), an escalated one
///   stays for the person while its condition holds. Human notices follow
///   their conditions as usual.
/// - Time-based escalation is left to [`plan_timers`]. Open reactions with a
///   key this planner does not know are left alone.
pub fn plan(facts: &Facts<'_>, open: &[Reaction]) -> Vec<Change> {
    let find = |key: &str| open.iter().find(|reaction| reaction.key == key);
    let mut changes = Vec::new();
    changes.extend(ci_failed(facts, find(CI_FAILED)));
    changes.extend(review_comments(facts, find(REVIEW_COMMENTS)));
    let conflicting =
        open_pr(facts).is_some_and(|pr| pr.mergeability == Some(Mergeability::Conflicting));
    let conflicts = plain_nudge(facts, conflicting, find(MERGE_CONFLICTS), MERGE_CONFLICTS);
    changes.extend(conflicts);
    let idle = facts.session.state == SessionState::Idle;
    changes.extend(plain_nudge(facts, idle, find(AGENT_IDLE), AGENT_IDLE));
    for (key, priority, message) in notices(facts) {
        changes.extend(match (message, find(key)) {
            (Some(message), None) => {
                let human = ReactionTarget::Human;
                Some(open_change(key, priority, human, message, None))
            }
            (None, Some(reaction)) => Some(Change::Clear { id: reaction.id }),
            _ => None,
        });
    }
    changes
}

/// Whether a session change touches a fact [`plan`] reads (state,
/// termination reason, activity state). When it does not, and nothing else
/// changed, planning again would change nothing: the open reactions already
/// are what the unchanged facts call for (a plan applied needs no second
/// plan). Activity reports and probes that only move timestamps skip it.
pub fn session_facts_changed(before: &Session, after: &Session) -> bool {
    let read = |s: &Session| (s.state, s.termination_reason, s.activity_state);
    read(before) != read(after)
}

/// Escalations due by time alone (merge-conflicts and agent-idle open for
/// [`ESCALATE_AFTER`]), for the background tick.
pub fn plan_timers(open: &[Reaction], now: UnixMicros) -> Vec<Change> {
    let due_before = now.minus(ESCALATE_AFTER);
    let minutes = ESCALATE_AFTER.as_secs() / 60;
    let due = |r: &&Reaction| !is_escalated(r) && r.create_time <= due_before;
    open.iter()
        .filter(due)
        .filter_map(|r| {
            let what = match r.key.as_str() {
                MERGE_CONFLICTS => "merge conflicts",
                AGENT_IDLE => "the idle agent",
                _ => return None,
            };
            let message = format!("{what} unresolved for {minutes} minutes");
            Some(Change::Escalate { id: r.id, message })
        })
        .collect()
}

/// Where an agent key stands before its own rule speaks.
enum Step<'r> {
    /// Decided: this change or none.
    Done(Option<Change>),
    /// The condition holds and nothing is open.
    Open,
    /// The condition holds and this pending, agent-targeted reaction is open.
    Holding(&'r Reaction),
}

/// The life every agent key shares, including the terminal-session rule.
fn agent_step<'r>(facts: &Facts<'_>, current: Option<&'r Reaction>, holds: bool) -> Step<'r> {
    let terminal = facts.session.state.is_terminal();
    match current {
        None if holds && !terminal => Step::Open,
        None => Step::Done(None),
        Some(reaction) if !holds => Step::Done(Some(Change::Clear { id: reaction.id })),
        Some(reaction) if is_escalated(reaction) => Step::Done(None),
        Some(reaction) if terminal => Step::Done(Some(Change::Clear { id: reaction.id })),
        Some(reaction) => Step::Holding(reaction),
    }
}

/// Handed to a person, whether by escalation or opened that way.
fn is_escalated(reaction: &Reaction) -> bool {
    reaction.status == ReactionStatus::Escalated || reaction.target == ReactionTarget::Human
}

fn open_change(
    key: &'static str,
    priority: ReactionPriority,
    target: ReactionTarget,
    message: String,
    dedup_key: Option<String>,
) -> Change {
    Change::Open {
        key,
        priority,
        target,
        message,
        dedup_key,
    }
}

/// A fresh nudge for the agent.
fn nudge_open(key: &'static str, message: String, dedup_key: Option<String>) -> Change {
    let (priority, target) = (ReactionPriority::Action, ReactionTarget::Agent);
    open_change(key, priority, target, message, dedup_key)
}

fn nudge(id: i64, message: String, dedup_key: Option<String>) -> Change {
    Change::Nudge {
        id,
        message,
        dedup_key,
    }
}

fn ci_failed(facts: &Facts<'_>, current: Option<&Reaction>) -> Option<Change> {
    let pr = open_pr(facts);
    let ci = pr.and_then(|pr| pr.ci_state);
    let holds = matches!(ci, Some(CiState::Failing | CiState::Pending));
    let step = agent_step(facts, current, holds);
    let (Step::Open | Step::Holding(_), Some(pr), Some(CiState::Failing)) = (&step, pr, ci) else {
        // Decided, or CI pending: wait for its verdict.
        return match step {
            Step::Done(change) => change,
            _ => None,
        };
    };
    let head = pr.head_sha.clone();
    let failures = ci_failure_message(facts.checks, head.as_deref());
    let runs = FAILED_RUNS_TO_ESCALATE;
    let escalation = broken_check(facts.checks).map(|name| {
        truncated(format!(
            "CI failed {runs} runs in a row on {name}\n\n{failures}"
        ))
    });
    let (urgent, human) = (ReactionPriority::Urgent, ReactionTarget::Human);
    match (step, escalation) {
        (Step::Open, Some(message)) => Some(open_change(CI_FAILED, urgent, human, message, head)),
        (Step::Open, None) => Some(nudge_open(CI_FAILED, failures, head)),
        (Step::Holding(r), Some(message)) => Some(Change::Escalate { id: r.id, message }),
        (Step::Holding(r), None) if r.dedup_key != head => Some(nudge(r.id, failures, head)),
        _ => None,
    }
}

/// The first check (by name) whose newest [`FAILED_RUNS_TO_ESCALATE`] runs
/// all failed; a run is a commit, its status that of its newest row.
fn broken_check(checks: &[Check]) -> Option<&str> {
    let names: BTreeSet<&str> = checks.iter().map(|run| run.name.as_str()).collect();
    names.into_iter().find(|&name| {
        let mut commits = BTreeSet::new();
        let runs: Vec<&Check> = newest_first(checks)
            .into_iter()
            .filter(|run| run.name == name && commits.insert(run.commit_sha.as_str()))
            .take(FAILED_RUNS_TO_ESCALATE)
            .collect();
        runs.len() == FAILED_RUNS_TO_ESCALATE
            && runs.iter().all(|run| run.status == CheckStatus::Failed)
    })
}

fn review_comments(facts: &Facts<'_>, current: Option<&Reaction>) -> Option<Change> {
    let pr_open = open_pr(facts).is_some();
    let unresolved: Vec<&Comment> = facts
        .comments
        .iter()
        .filter(|c| pr_open && !c.resolved)
        .collect();
    let dedup_key = Some(comment_set_digest(&unresolved));
    let message = review_message(&unresolved);
    match agent_step(facts, current, !unresolved.is_empty()) {
        Step::Done(change) => change,
        Step::Open => Some(nudge_open(REVIEW_COMMENTS, message, dedup_key)),
        Step::Holding(r) if r.dedup_key == dedup_key => None,
        Step::Holding(r) if r.nudge_count >= MAX_REVIEW_NUDGES => {
            let why = format!("{MAX_REVIEW_NUDGES} nudges did not resolve review comments");
            let message = truncated(format!("{why}\n\n{message}"));
            Some(Change::Escalate { id: r.id, message })
        }
        Step::Holding(r) => Some(nudge(r.id, message, dedup_key)),
    }
}

/// An agent key with no rule of its own while it holds (time escalates it).
fn plain_nudge(
    facts: &Facts<'_>,
    holds: bool,
    current: Option<&Reaction>,
    key: &'static str,
) -> Option<Change> {
    let message = match key {
        MERGE_CONFLICTS => {
            "The pull request conflicts with its base branch: merge or rebase onto the base and resolve the conflicts."
        }
        _ => "You are idle: continue with the task, or finish the session if it is done.",
    };
    match agent_step(facts, current, holds) {
        Step::Done(change) => change,
        Step::Open => Some(nudge_open(key, message.into(), None)),
        Step::Holding(_) => None,
    }
}

/// Each human notice, with its message when its condition holds.
fn notices(facts: &Facts<'_>) -> Vec<(&'static str, ReactionPriority, Option<String>)> {
    use PullRequestState::{Closed, Merged};
    use ReactionPriority::{Action, Info, Urgent};
    let (session, id) = (facts.session, &facts.session.id);
    let pr_says = |pr: Option<&PullRequest>, what: &str| {
        pr.map(|pr| format!("{id}: pull request #{} {what}: {}", pr.number, pr.url))
    };
    let pr_in = |state| facts.pull_request.filter(|pr| pr.state == state);
    let agent_says = |holds: bool, what: &str| holds.then(|| format!("{id}: the agent {what}"));
    let green = open_pr(facts).filter(|pr| {
        pr.review_decision == Some(ReviewDecision::Approved)
            && pr.ci_state == Some(CiState::Passing)
    });
    let died = matches!(
        session.termination_reason,
        Some(TerminationReason::RuntimeLost | TerminationReason::AgentProcessExited)
    );
    let signalled = session.activity_state == Some(ActivityState::Exited);
    let exited = (signalled && !session.state.is_terminal())
        || (session.state == SessionState::Terminated && died);
    let stuck = session.state == SessionState::Stuck;
    let needs_input = session.state == SessionState::NeedsInput;
    vec![
        (
            "approved-and-green",
            Action,
            pr_says(green, "is approved and green"),
        ),
        ("agent-stuck", Urgent, agent_says(stuck, "is stuck")),
        (
            "agent-needs-input",
            Action,
            agent_says(needs_input, "needs input"),
        ),
        ("agent-exited", Action, agent_says(exited, "exited")),
        (
            "pr-closed",
            Info,
            pr_says(pr_in(Closed), "was closed without merging"),
        ),
        ("pr-merged", Info, pr_says(pr_in(Merged), "was merged")),
    ]
}

fn open_pr<'a>(facts: &Facts<'a>) -> Option<&'a PullRequest> {
    let pr = facts.pull_request;
    pr.filter(|pr| pr.state == PullRequestState::Open)
}

#[cfg(test)]
#[path = "reactions_tests.rs"]
mod tests;
