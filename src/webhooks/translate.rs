//! From forge facts to bosun requests, as pure functions.
//!
//! `ReportPullRequest` replaces the pull request row whole (state, review
//! decision, CI state, mergeability, draft, head, comments); only checks are
//! upserted one by one. A delivery knows a slice of that: a pull_request
//! event knows the PR's own fields but not its review decision, comments or
//! CI; a check run knows one check and the PR's number and head. So the shim
//! reads what bosun has ([`Known`]) and overlays what the delivery says:
//!
//! - pull request events set url, number, state, draft, head, branch and
//!   mergeability; a review sets (approve, request changes) or clears
//!   (dismiss) the review decision; everything else is kept. A new head
//!   commit resets the CI state to NONE (no check has reported on it yet).
//! - CI events upsert their check and recompute the CI state from the
//!   newest run of each check on the head commit; everything else is kept.
//!   A CI event for a branch with no known pull request and no PR named in
//!   the payload reports nothing (a PR needs a number and a URL).
//!
//! Comments are never invented: webhooks carry one comment at a time, never
//! the complete list ReportPullRequest wants, so the stored list is sent
//! back unchanged.

use crate::pb::{self, CheckStatus, PullRequestCiState, PullRequestState};

use super::Source;
use super::forge::{CiEvent, ForgeEvent, Review};
use super::forge_json::pull_request_url;

/// Longest single-line text bosun takes (names, URLs of checks).
const MAX_LINE: usize = 256;
/// Longest check log bosun keeps.
const MAX_LOG: usize = 16 * 1024;
/// Longest CI target URL bosun takes.
const MAX_TARGET_URL: usize = 2048;

/// What bosun has for the session's pull request.
pub type Known = pb::PullRequest;

/// A (repo, branch) a delivery may concern: the session bosun resolves on
/// that branch gets the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub branch: String,
    /// The pull request's number, when the payload names it.
    pub number: Option<i64>,
    /// The branch's head commit, when the payload says (authoritative).
    pub head_sha: Option<String>,
}

/// The branches a delivery may concern, without repeats.
pub fn targets(event: &ForgeEvent) -> Vec<Target> {
    let mut targets: Vec<Target> = match event {
        ForgeEvent::PullRequest(e) => vec![Target {
            branch: e.pull_request.branch.clone(),
            number: Some(e.pull_request.number),
            head_sha: Some(e.pull_request.head_sha.clone()),
        }],
        ForgeEvent::Ci(e) if !e.pull_requests.is_empty() => e
            .pull_requests
            .iter()
            .filter(|pr| !pr.from_fork)
            .map(|pr| Target {
                branch: pr.branch.clone(),
                number: Some(pr.number),
                head_sha: Some(pr.head_sha.clone()),
            })
            .collect(),
        ForgeEvent::Ci(e) if !e.branch_heads.is_empty() => e
            .branch_heads
            .iter()
            .map(|branch| Target {
                branch: branch.clone(),
                number: None,
                head_sha: Some(e.sha.clone()),
            })
            .collect(),
        ForgeEvent::Ci(e) => e
            .branch
            .iter()
            .map(|branch| Target {
                branch: branch.clone(),
                number: None,
                head_sha: None,
            })
            .collect(),
    };
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| !t.branch.is_empty() && seen.insert(t.branch.clone()));
    targets
}

/// Why a delivery concerns no session of the repository, if it does not: a
/// pull request whose head is a fork (its branch name says nothing about
/// the agent's branch of the same name), or a CI result that names only
/// such pull requests.
pub fn foreign(event: &ForgeEvent) -> Option<String> {
    match event {
        ForgeEvent::PullRequest(e) if e.pull_request.from_fork => Some(format!(
            "pull request #{} comes from a fork of {}",
            e.pull_request.number, e.repo.full_name
        )),
        ForgeEvent::Ci(e)
            if !e.pull_requests.is_empty() && e.pull_requests.iter().all(|pr| pr.from_fork) =>
        {
            Some(format!(
                "{} reports only on pull requests from forks of {}",
                e.name, e.repo.full_name
            ))
        }
        _ => None,
    }
}

/// When the forge last updated the pull request a pull request event is
/// about (its `updated_at`), for ReportPullRequest's stale guard; CI events
/// say nothing about the pull request's own time.
pub fn observed_time(event: &ForgeEvent) -> Option<prost_types::Timestamp> {
    match event {
        ForgeEvent::PullRequest(e) => e
            .position
            .as_ref()
            .map(|p| crate::time::UnixMicros(p.rank[0]).to_timestamp()),
        ForgeEvent::Ci(_) => None,
    }
}

/// The report for `target`: `known` overlaid with the delivery's facts (see
/// the module docs). `None` when no pull request can be named.
pub fn pull_request_report(
    source: Source,
    event: &ForgeEvent,
    target: &Target,
    known: Option<&Known>,
) -> Option<pb::PullRequest> {
    // A known PR with another number is an older PR of the branch: its
    // facts say nothing about this one.
    let known = known.filter(|k| k.number > 0 && target.number.is_none_or(|n| n == k.number));
    let known_head = known.map(|k| k.head_sha.as_str()).filter(|h| !h.is_empty());
    let kept = |field: fn(&Known) -> i32| known.map_or(0, field);
    let comments = known.map(|k| k.comments.clone()).unwrap_or_default();
    match event {
        ForgeEvent::PullRequest(e) => {
            let facts = &e.pull_request;
            let review_decision = match &e.review {
                Review::Approved { .. } => pb::ReviewDecision::Approved as i32,
                Review::ChangesRequested { .. } => pb::ReviewDecision::ChangesRequested as i32,
                Review::Dismissed => pb::ReviewDecision::Unspecified as i32,
                Review::None | Review::Commented => kept(|k| k.review_decision),
            };
            let ci_state = match known_head {
                Some(head) if head != facts.head_sha => PullRequestCiState::None as i32,
                _ => kept(|k| k.ci_state),
            };
            Some(pb::PullRequest {
                url: fit_line(&facts.url),
                number: facts.number,
                state: facts.state as i32,
                review_decision,
                ci_state,
                mergeability: facts
                    .mergeability
                    .map_or_else(|| kept(|k| k.mergeability), |m| m as i32),
                draft: facts.draft.unwrap_or(known.is_some_and(|k| k.draft)),
                head_sha: facts.head_sha.clone(),
                branch: facts.branch.clone(),
                title: fit_line(&facts.title),
                comments,
                ..Default::default()
            })
        }
        ForgeEvent::Ci(e) => {
            let number = target.number.or(known.map(|k| k.number))?;
            let head = target
                .head_sha
                .clone()
                .or(known_head.map(str::to_string))
                .unwrap_or_else(|| e.sha.clone());
            let mut on_head: Vec<(String, i32)> = match known {
                Some(k) if known_head == Some(head.as_str()) => k
                    .checks
                    .iter()
                    .filter(|c| c.commit_sha == head)
                    .map(|c| (c.name.clone(), c.status))
                    .collect(),
                _ => Vec::new(),
            };
            let check = check(e);
            if e.sha == head {
                on_head.retain(|(name, _)| *name != check.name);
                on_head.push((check.name.clone(), check.status));
            }
            let url = known
                .map(|k| k.url.clone())
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| fit_line(&pull_request_url(source, &e.repo, number)));
            Some(pb::PullRequest {
                url,
                number,
                state: known.map_or(PullRequestState::Open as i32, |k| k.state),
                review_decision: kept(|k| k.review_decision),
                ci_state: combined_ci(on_head.iter().map(|(_, status)| *status)) as i32,
                mergeability: kept(|k| k.mergeability),
                draft: known.is_some_and(|k| k.draft),
                head_sha: head,
                branch: target.branch.clone(),
                checks: vec![check],
                comments,
                ..Default::default()
            })
        }
    }
}

/// The CI state of a head commit from the newest run of each of its checks:
/// a failed or cancelled check fails it, else one still running keeps it
/// pending, else it passes; no check at all is NONE.
pub fn combined_ci(statuses: impl IntoIterator<Item = i32>) -> PullRequestCiState {
    let mut any = false;
    let mut pending = false;
    for status in statuses {
        any = true;
        match CheckStatus::try_from(status) {
            Ok(CheckStatus::Failed | CheckStatus::Cancelled) => return PullRequestCiState::Failing,
            Ok(CheckStatus::Passed | CheckStatus::Skipped) => {}
            _ => pending = true,
        }
    }
    match (any, pending) {
        (false, _) => PullRequestCiState::None,
        (true, true) => PullRequestCiState::Pending,
        (true, false) => PullRequestCiState::Passing,
    }
}

/// The check a CI event reports.
pub fn check(e: &CiEvent) -> pb::Check {
    pb::Check {
        name: clip(&e.name, MAX_LINE),
        commit_sha: e.sha.clone(),
        status: e.check as i32,
        url: fit_line(&e.url),
        log_tail: tail(&e.log, MAX_LOG),
        ..Default::default()
    }
}

/// RecordCiStatus for a CI event; `branch` is the branch that named a
/// session, if any (the most specific hint for resolving the task).
pub fn ci_status_request(
    request_id: String,
    e: &CiEvent,
    branch: Option<&str>,
) -> pb::RecordCiStatusRequest {
    // Any branch the result names, most specific first: a result naming a
    // branch never falls back to the repo's single development task.
    let branch = branch
        .map(str::to_string)
        .or_else(|| e.pull_requests.first().map(|pr| pr.branch.clone()))
        .or_else(|| e.branch.clone())
        .or_else(|| e.branch_heads.first().cloned())
        .or_else(|| e.containing_branches.first().cloned())
        .unwrap_or_default();
    pb::RecordCiStatusRequest {
        request_id,
        repo: e.repo.full_name.clone(),
        sha: e.sha.clone(),
        branch: clip(&branch, MAX_LINE),
        context: clip(&e.name, MAX_LINE),
        state: e.ci as i32,
        target_url: if e.url.chars().count() <= MAX_TARGET_URL {
            one_line(&e.url)
        } else {
            String::new()
        },
        description: clip(&e.description, MAX_LINE),
    }
}

/// RecordVerdict (source PR_REVIEW) for a review that decides, on the task
/// of the reviewed session.
pub fn verdict_request(
    request_id: String,
    review: &Review,
    task_id: i64,
) -> Option<pb::RecordVerdictRequest> {
    let (decision, author, body) = match review {
        Review::Approved { author, body } => (pb::VerdictDecision::Approved, author, body),
        Review::ChangesRequested { author, body } => (pb::VerdictDecision::Rejected, author, body),
        _ => return None,
    };
    (task_id > 0).then(|| pb::RecordVerdictRequest {
        request_id,
        task_ref: Some(pb::record_verdict_request::TaskRef::TaskId(task_id)),
        decision: decision as i32,
        source: pb::VerdictSource::PrReview as i32,
        author: clip(author, MAX_LINE),
        comment: tail(body, MAX_LOG),
    })
}

/// One line of at most `max` characters, control characters blanked.
pub fn clip(text: &str, max: usize) -> String {
    one_line(text)
        .chars()
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// A single-line value that fits, else nothing (a cut URL is a wrong URL).
fn fit_line(text: &str) -> String {
    if text.chars().count() <= MAX_LINE {
        one_line(text)
    } else {
        String::new()
    }
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The last `max` characters of a multi-line text (newlines and tabs kept,
/// other control characters dropped).
pub fn tail(text: &str, max: usize) -> String {
    let kept: Vec<char> = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect();
    kept[kept.len().saturating_sub(max)..].iter().collect()
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
