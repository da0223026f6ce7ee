//! The reaction planner: from a session's facts and its open reactions, the
//! changes to make (open, nudge again, escalate, clear). Pure: the service
//! applies the plan in the same transaction as the facts that caused it.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    ActivityState, Check, CheckStatus, CiState, Comment, Mergeability, PullRequest,
    PullRequestState, Reaction, ReactionPriority, ReactionStatus, ReactionTarget, ReviewDecision,
    Session, SessionState, TerminationReason,
};
use crate::time::UnixMicros;

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

/// A message never grows past this (log tails are long).
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
const TRUNCATED: &str = "\n… (truncated)";

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

/// Every check run, newest first by (create_time, id).
fn newest_first(checks: &[Check]) -> Vec<&Check> {
    let mut runs: Vec<&Check> = checks.iter().collect();
    runs.sort_by_key(|run| Reverse((run.create_time, run.id)));
    runs
}

/// The checks whose newest run on the head commit failed, with log tails.
fn ci_failure_message(checks: &[Check], head: Option<&str>) -> String {
    let mut seen = BTreeSet::new();
    let mut failed: Vec<&Check> = newest_first(checks)
        .into_iter()
        .filter(|run| Some(run.commit_sha.as_str()) == head && seen.insert(run.name.as_str()))
        .filter(|run| run.status == CheckStatus::Failed)
        .collect();
    failed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut message = format!("CI is failing on {}.", head.unwrap_or("the head commit"));
    for run in failed {
        let log = run.log_tail.as_deref().unwrap_or("(no log recorded)");
        message.push_str(&format!("\n\n## {} failed\n{log}", run.name));
    }
    truncated(message)
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

/// A stable digest of the sorted comment ids: the same set, the same key.
fn comment_set_digest(comments: &[&Comment]) -> String {
    let ids: BTreeSet<&str> = comments.iter().map(|comment| comment.id.as_str()).collect();
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.len().to_le_bytes());
        hasher.update(id.as_bytes());
    }
    let digest = hasher.finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn review_message(unresolved: &[&Comment]) -> String {
    let mut message = String::from("Unresolved review comments:");
    for comment in unresolved {
        let author = comment.author.as_deref().unwrap_or("a reviewer");
        let place = match (&comment.path, comment.line) {
            (Some(path), Some(line)) => format!(" on {path}:{line}"),
            (Some(path), None) => format!(" on {path}"),
            _ => String::new(),
        };
        message.push_str(&format!("\n- {author}{place}: {}", comment.body));
    }
    truncated(message)
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

/// Cuts a message to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn truncated(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - TRUNCATED.len();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(TRUNCATED);
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use CheckStatus::{Failed, Passed};
    use CiState::{Failing, Passing};
    use PullRequestState::{Closed, Merged, Open};
    use ReactionStatus::{Escalated, Pending};
    use SessionState::{Done, Idle, NeedsInput, Stuck, Terminated, Working};

    const HEAD: &str = "c3";
    const MINUTE: i64 = 60_000_000;

    /// Fixtures in their stored (JSON) shape; unset options are left out.
    fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a valid fixture")
    }

    /// One row's facts, owned.
    struct World {
        session: Session,
        pr: Option<PullRequest>,
        checks: Vec<Check>,
        comments: Vec<Comment>,
    }

    fn world(state: SessionState) -> World {
        let session = from_json(json!({"id": "mer-1", "project_id": "mer", "state": state,
            "harness": "claude-code", "is_alive": true, "detecting_attempts": 0, "create_time": 0}));
        let (pr, checks, comments) = (None, vec![], vec![]);
        World {
            session,
            pr,
            checks,
            comments,
        }
    }

    impl World {
        fn pr(mut self, state: PullRequestState, ci: Option<CiState>) -> Self {
            self.pr = Some(from_json(
                json!({"session_id": "mer-1", "project_id": "mer",
                "url": "https://forge/pr/7", "number": 7, "state": state, "ci_state": ci,
                "draft": false, "head_sha": HEAD, "create_time": 0}),
            ));
            self
        }
        fn edit(mut self, change: impl FnOnce(&mut Self)) -> Self {
            change(&mut self);
            self
        }
        /// Check runs, oldest first: (name, commit, status).
        fn runs(mut self, runs: &[(&str, &str, CheckStatus)]) -> Self {
            for (id, &(name, sha, status)) in (1..).zip(runs) {
                let log_tail = format!("{name} log on {sha}");
                self.checks.push(from_json(json!({"id": id, "session_id": "mer-1",
                    "project_id": "mer", "pull_request_number": 7, "name": name,
                    "commit_sha": sha, "status": status, "log_tail": log_tail, "create_time": id})));
            }
            self
        }
        fn comments(mut self, comments: &[(&str, bool)]) -> Self {
            self.comments = comments
                .iter()
                .map(|&(id, done)| comment(id, done))
                .collect();
            self
        }
        fn facts(&self) -> Facts<'_> {
            let (session, pull_request) = (&self.session, self.pr.as_ref());
            let (checks, comments, now) = (&self.checks[..], &self.comments[..], UnixMicros(0));
            Facts {
                session,
                pull_request,
                checks,
                comments,
                now,
            }
        }
    }

    fn comment(id: &str, resolved: bool) -> Comment {
        from_json(
            json!({"id": id, "author": "ana", "body": format!("fix {id}"),
            "path": "src/lib.rs", "line": 3, "resolved": resolved}),
        )
    }

    fn digest(ids: &[&str]) -> String {
        let comments: Vec<Comment> = ids.iter().map(|id| comment(id, false)).collect();
        comment_set_digest(&comments.iter().collect::<Vec<_>>())
    }

    /// An open reaction; with no nudges or escalated it is a human one.
    fn reaction(
        id: i64,
        key: &str,
        status: ReactionStatus,
        nudges: u32,
        dedup: Option<&str>,
    ) -> Reaction {
        let human = status == Escalated || nudges == 0;
        let (target, priority) = [("agent", "action"), ("human", "urgent")][usize::from(human)];
        from_json(
            json!({"id": id, "session_id": "mer-1", "project_id": "mer", "key": key,
            "priority": priority, "target": target, "status": status, "message": "",
            "nudge_count": nudges, "dedup_key": dedup, "create_time": 0}),
        )
    }

    fn summaries(changes: &[Change]) -> Vec<String> {
        let summary = |change: &Change| match change {
            Change::Open {
                key,
                priority,
                target,
                ..
            } => {
                format!("open {key} {}/{}", target.as_str(), priority.as_str())
            }
            Change::Nudge { id, .. } => format!("nudge {id}"),
            Change::Escalate { id, .. } => format!("escalate {id}"),
            Change::Clear { id } => format!("clear {id}"),
        };
        changes.iter().map(summary).collect()
    }

    /// What the service does with a plan.
    fn apply(mut open: Vec<Reaction>, changes: Vec<Change>) -> Vec<Reaction> {
        for change in changes {
            match change {
                Change::Open {
                    key,
                    target,
                    dedup_key,
                    ..
                } => {
                    let nudges = u32::from(target == ReactionTarget::Agent);
                    let id = 100 + open.len() as i64;
                    open.push(reaction(id, key, Pending, nudges, dedup_key.as_deref()));
                }
                Change::Nudge { id, dedup_key, .. } => {
                    open.iter_mut().filter(|r| r.id == id).for_each(|r| {
                        (r.nudge_count, r.dedup_key) = (r.nudge_count + 1, dedup_key.clone());
                    })
                }
                Change::Escalate { id, .. } => {
                    open.iter_mut().filter(|r| r.id == id).for_each(|r| {
                        (r.status, r.target, r.priority) =
                            (Escalated, ReactionTarget::Human, ReactionPriority::Urgent);
                    })
                }
                Change::Clear { id } => open.retain(|r| r.id != id),
            }
        }
        open
    }

    type Row = (&'static str, World, Vec<Reaction>, Vec<&'static str>);

    #[rustfmt::skip]
    fn rows() -> Vec<Row> {
        let failing = || world(Working).pr(Open, Some(Failing));
        let three_failed = [("test", "c1", Failed), ("test", "c2", Failed), ("test", HEAD, Failed)];
        let ci = |status, dedup| vec![reaction(1, CI_FAILED, status, 1, dedup)];
        let review = |nudges, ids: &[&str]| vec![reaction(1, REVIEW_COMMENTS, Pending, nudges, Some(&digest(ids)))];
        let commented = |ids: &[(&str, bool)]| world(Working).pr(Open, None).comments(ids);
        let conflicting = || world(Working).pr(Open, None).edit(|w| w.pr.as_mut().unwrap().mergeability = Some(Mergeability::Conflicting));
        let approved = |ci| world(Working).pr(Open, Some(ci)).edit(|w| w.pr.as_mut().unwrap().review_decision = Some(ReviewDecision::Approved));
        let ended = |reason| world(Terminated).edit(|w| w.session.termination_reason = Some(reason));
        let exited = |state| world(state).edit(|w| w.session.activity_state = Some(ActivityState::Exited));
        let done = |w: World| w.edit(|w| w.session.state = Done);
        let held = |key, status| vec![reaction(1, key, status, u32::from(status == Pending), None)];
        let notice = |key| vec![reaction(1, key, Pending, 0, None)];
        vec![
            ("a quiet working session raises nothing", world(Working), vec![], vec![]),
            ("ci-failed opens for the agent", failing().runs(&[("test", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
            ("ci-failed stays quiet on the same commit", failing(), ci(Pending, Some(HEAD)), vec![]),
            ("ci-failed nudges on a new failing commit", failing(), ci(Pending, Some("c2")), vec!["nudge 1"]),
            ("ci-failed escalates after 3 failed runs", failing().runs(&three_failed), ci(Pending, Some("c2")), vec!["escalate 1"]),
            ("ci-failed opens for a person when the brake holds", failing().runs(&three_failed), vec![], vec!["open ci-failed human/urgent"]),
            ("ci-failed brake counts commits, not re-runs", failing().runs(&[("t", "c2", Failed), ("t", HEAD, Failed), ("t", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
            ("ci-failed brake reads each commit's newest run", failing().runs(&[("t", "c1", Failed), ("t", "c2", Failed), ("t", "c2", Passed), ("t", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
            ("ci-failed brake is per check", failing().runs(&[("a", "c1", Failed), ("b", "c2", Failed), ("a", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
            ("ci-failed escalated stays quiet", failing().runs(&three_failed), ci(Escalated, Some("c2")), vec![]),
            ("ci-failed is kept while CI is pending", world(Working).pr(Open, Some(CiState::Pending)), ci(Pending, Some("c2")), vec![]),
            ("ci-failed clears when CI passes", world(Working).pr(Open, Some(Passing)), ci(Pending, Some(HEAD)), vec!["clear 1"]),
            ("ci-failed clears when CI reports none", world(Working).pr(Open, Some(CiState::None)), ci(Escalated, Some(HEAD)), vec!["clear 1"]),
            ("ci-failed clears when the pull request closes", world(Working).pr(Closed, Some(Failing)), ci(Pending, Some(HEAD)), vec!["clear 1", "open pr-closed human/info"]),
            ("review-comments opens on an unresolved comment", commented(&[("a", false), ("b", true)]), vec![], vec!["open review-comments agent/action"]),
            ("review-comments same set stays quiet", commented(&[("a", false), ("b", true)]), review(1, &["a"]), vec![]),
            ("review-comments nudges on a new set", commented(&[("c", false), ("a", false)]), review(2, &["a"]), vec!["nudge 1"]),
            ("review-comments escalates after 3 nudges", commented(&[("c", false)]), review(3, &["a"]), vec!["escalate 1"]),
            ("review-comments clears when all are resolved", commented(&[("a", true)]), review(1, &["a"]), vec!["clear 1"]),
            ("review-comments clears when the pull request merges", commented(&[("a", false)]).edit(|w| w.pr.as_mut().unwrap().state = Merged), review(1, &["a"]), vec!["clear 1", "open pr-merged human/info"]),
            ("merge-conflicts opens when conflicting", conflicting(), vec![], vec!["open merge-conflicts agent/action"]),
            ("merge-conflicts holds quietly", conflicting(), held(MERGE_CONFLICTS, Pending), vec![]),
            ("merge-conflicts clears when resolved", world(Working).pr(Open, None), held(MERGE_CONFLICTS, Pending), vec!["clear 1"]),
            ("agent-idle opens when idle", world(Idle), vec![], vec!["open agent-idle agent/action"]),
            ("agent-idle clears when working", world(Working), held(AGENT_IDLE, Escalated), vec!["clear 1"]),
            ("approved-and-green notifies a person", approved(Passing), vec![], vec!["open approved-and-green human/action"]),
            ("approved-and-green clears when CI runs again", approved(CiState::Pending), notice("approved-and-green"), vec!["clear 1"]),
            ("agent-stuck is urgent for a person", world(Stuck), vec![], vec!["open agent-stuck human/urgent"]),
            ("agent-stuck clears when the agent moves on", world(Working), notice("agent-stuck"), vec!["clear 1"]),
            ("agent-needs-input notifies a person", world(NeedsInput), vec![], vec!["open agent-needs-input human/action"]),
            ("agent-exited on an exited signal", exited(Working), vec![], vec!["open agent-exited human/action"]),
            ("agent-exited not on an exited signal once done", exited(Done), vec![], vec![]),
            ("agent-exited on runtime lost", ended(TerminationReason::RuntimeLost), vec![], vec!["open agent-exited human/action"]),
            ("agent-exited on the agent process exiting", ended(TerminationReason::AgentProcessExited), vec![], vec!["open agent-exited human/action"]),
            ("agent-exited not on a manual kill", ended(TerminationReason::ManuallyKilled), notice("agent-exited"), vec!["clear 1"]),
            ("pr-merged notifies a person", world(Working).pr(Merged, None), vec![], vec!["open pr-merged human/info"]),
            ("terminal clears pending nudges", done(failing()), ci(Pending, Some(HEAD)), vec!["clear 1"]),
            ("terminal keeps escalated ones that hold", done(failing()), ci(Escalated, Some(HEAD)), vec![]),
            ("terminal opens no nudges", done(conflicting().comments(&[("a", false)])).edit(|w| w.pr.as_mut().unwrap().ci_state = Some(Failing)), vec![], vec![]),
            ("terminal clears escalated ones that stop holding", done(world(Working).pr(Merged, Some(Failing))), ci(Escalated, Some(HEAD)), vec!["clear 1", "open pr-merged human/info"]),
        ]
    }

    #[test]
    fn plans_each_rule() {
        for (rule, world, open, expected) in rows() {
            assert_eq!(summaries(&plan(&world.facts(), &open)), expected, "{rule}");
        }
    }

    #[test]
    fn a_plan_applied_needs_no_second_plan() {
        for (rule, world, open, _) in rows() {
            let first = plan(&world.facts(), &open);
            let open = apply(open, first);
            assert_eq!(plan(&world.facts(), &open), vec![], "{rule}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn messages_say_what_and_why() {
        let working = || world(Working).pr(Open, Some(Failing));
        let on_head = working().runs(&[("lint", HEAD, Failed), ("unit", HEAD, Passed), ("e2e", "c2", Failed)]);
        let braked = working().runs(&[("unit", "c1", Failed), ("unit", "c2", Failed), ("unit", HEAD, Failed)]);
        let commented = world(Working).pr(Open, None).comments(&[("b", false)]);
        let old = |key| reaction(1, key, Pending, 3, Some("old"));
        let cases = [
            ("ci-failed lists failed checks on the head with logs", plan(&on_head.facts(), &[]), &["lint", "lint log on c3"][..], &["unit", "e2e"][..]),
            ("ci-failed escalation names the check", plan(&braked.facts(), &[]), &["CI failed 3 runs in a row on unit", "unit log on c3"], &[]),
            ("review-comments lists author, place and body", plan(&commented.facts(), &[]), &["ana on src/lib.rs:3: fix b"], &[]),
            ("review-comments escalation says nudges ran out", plan(&commented.facts(), &[old(REVIEW_COMMENTS)]), &["3 nudges did not resolve review comments", "fix b"], &[]),
            ("timers say how long", plan_timers(&[old(AGENT_IDLE)], UnixMicros(15 * MINUTE)), &["the idle agent unresolved for 15 minutes"], &[]),
        ];
        for (rule, changes, present, absent) in cases {
            let [Change::Open { message, .. } | Change::Escalate { message, .. }] = &changes[..] else { panic!("{rule}: {changes:?}") };
            present.iter().for_each(|text| assert!(message.contains(text), "{rule}: {message}"));
            absent.iter().for_each(|text| assert!(!message.contains(text), "{rule}: {message}"));
        }
    }

    #[test]
    fn ci_failed_message_is_cut_to_16_kib() {
        let mut failing = world(Working)
            .pr(Open, Some(Failing))
            .runs(&[("unit", HEAD, Failed)]);
        failing.checks[0].log_tail = Some("é".repeat(20 * 1024));
        let changes = plan(&failing.facts(), &[]);
        let [Change::Open { message, .. }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        assert!(message.ends_with(TRUNCATED));
    }

    #[test]
    fn comment_digest_is_the_sorted_set() {
        assert_eq!(digest(&["b", "a"]), digest(&["a", "b"]));
        assert_ne!(digest(&["a"]), digest(&["a", "b"]));
        assert_ne!(digest(&["ab"]), digest(&["a", "b"]));
    }

    #[test]
    #[rustfmt::skip]
    fn timers_escalate_only_long_open_pending_nudges() {
        let at = |key, status, minutes_ago: i64| Reaction { create_time: UnixMicros(-minutes_ago * MINUTE), ..reaction(1, key, status, 1, None) };
        let cases = [
            ("merge-conflicts after 15 minutes", at(MERGE_CONFLICTS, Pending, 15), vec!["escalate 1"]),
            ("agent-idle after 20 minutes", at(AGENT_IDLE, Pending, 20), vec!["escalate 1"]),
            ("agent-idle not before 15 minutes", at(AGENT_IDLE, Pending, 14), vec![]),
            ("not when already escalated", at(AGENT_IDLE, Escalated, 60), vec![]),
            ("not other keys", at(CI_FAILED, Pending, 60), vec![]),
        ];
        for (rule, reaction, expected) in cases {
            assert_eq!(summaries(&plan_timers(&[reaction], UnixMicros(0))), expected, "{rule}");
        }
    }
}
