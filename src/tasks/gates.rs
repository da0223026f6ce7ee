//! The gate table: for each stage, the gate that leaves it and its checks,
//! in order. A check is a pure function of the recorded [`Facts`]; a gate is
//! PASSED when every check passed, FAILED when one failed, else PENDING.

use super::{
    CiState, Decision, DeployHealth, Facts, GateCheck, GateResult, GateStatus, Stage, VerdictSource,
};
use crate::sessions::ReviewDecision;
use crate::time::UnixMicros;

/// One check: a stable name and its rule.
pub struct Check {
    pub name: &'static str,
    pub rule: fn(&Facts, Option<&str>) -> (GateStatus, String),
}

/// The gate that leaves one stage.
pub struct Gate {
    pub stage: Stage,
    pub name: &'static str,
    pub checks: &'static [Check],
}

/// Every gate; done has none.
pub const GATES: &[Gate] = &[
    Gate {
        stage: Stage::Analysis,
        name: "analysis_approved",
        checks: &[Check {
            name: "verdict_approved",
            rule: analysis_verdict,
        }],
    },
    Gate {
        stage: Stage::Development,
        name: "ci_green",
        checks: &[Check {
            name: "ci_green",
            rule: ci_green,
        }],
    },
    Gate {
        stage: Stage::Review,
        name: "review_approved",
        checks: &[Check {
            name: "verdict_approved",
            rule: review_verdict,
        }],
    },
    Gate {
        stage: Stage::Testing,
        name: "tests_passed",
        checks: &[
            Check {
                name: "tests_passed",
                rule: tests_passed,
            },
            Check {
                name: "coverage_threshold",
                rule: coverage_threshold,
            },
            Check {
                name: "deploys_not_frozen",
                rule: deploys_not_frozen,
            },
        ],
    },
    Gate {
        stage: Stage::Deploy,
        name: "deploy_verified",
        checks: &[
            Check {
                name: "pr_merged",
                rule: pr_merged,
            },
            Check {
                name: "deploy_not_degraded",
                rule: deploy_not_degraded,
            },
        ],
    },
];

/// The check names of the deploy gate that decide which hold a red deploy
/// gate means.
pub const PR_MERGED: &str = "pr_merged";
pub const DEPLOY_NOT_DEGRADED: &str = "deploy_not_degraded";

pub fn gate(stage: Stage) -> Option<&'static Gate> {
    GATES.iter().find(|gate| gate.stage == stage)
}

/// Evaluates the gate that leaves `stage`; `None` for done.
pub fn evaluate(
    stage: Stage,
    facts: &Facts,
    head_sha: Option<&str>,
    now: UnixMicros,
) -> Option<GateResult> {
    let gate = gate(stage)?;
    let checks: Vec<GateCheck> = gate
        .checks
        .iter()
        .map(|check| {
            let (status, reason) = (check.rule)(facts, head_sha);
            GateCheck {
                name: check.name.to_string(),
                status,
                reason,
            }
        })
        .collect();
    let status = if checks.iter().any(|c| c.status == GateStatus::Failed) {
        GateStatus::Failed
    } else if checks.iter().all(|c| c.status == GateStatus::Passed) {
        GateStatus::Passed
    } else {
        GateStatus::Pending
    };
    Some(GateResult {
        stage,
        gate: gate.name.to_string(),
        status,
        checks,
        head_sha: head_sha.map(str::to_string),
        evaluate_time: now,
    })
}

fn newest_verdict(facts: &Facts, source: VerdictSource) -> Option<(Decision, UnixMicros)> {
    facts
        .verdicts
        .iter()
        .filter(|v| v.source == source)
        .max_by_key(|v| (v.create_time, v.id))
        .map(|v| (v.decision, v.create_time))
}

/// A human gate: only an approval moves it; a rejection waits for the next.
fn analysis_verdict(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    match newest_verdict(facts, VerdictSource::Tracker) {
        Some((Decision::Approved, _)) => (GateStatus::Passed, "approved in the tracker".into()),
        Some((Decision::Rejected, _)) => (
            GateStatus::Pending,
            "rejected in the tracker; waiting for an approval".into(),
        ),
        None => (
            GateStatus::Pending,
            "waiting for a verdict in the tracker".into(),
        ),
    }
}

fn ci_green(facts: &Facts, head_sha: Option<&str>) -> (GateStatus, String) {
    let Some(sha) = head_sha else {
        return (GateStatus::Pending, "no head commit yet".into());
    };
    let on_head: Vec<_> = facts.ci_statuses.iter().filter(|s| s.sha == sha).collect();
    let contexts: Vec<&str> = if facts.required_ci_contexts.is_empty() {
        on_head.iter().map(|s| s.context.as_str()).collect()
    } else {
        facts
            .required_ci_contexts
            .iter()
            .map(String::as_str)
            .collect()
    };
    if contexts.is_empty() {
        return (GateStatus::Pending, format!("no CI status on {sha} yet"));
    }
    let state = |context: &str| {
        on_head
            .iter()
            .find(|s| s.context == context)
            .map(|s| s.state)
    };
    let red: Vec<String> = contexts
        .iter()
        .filter_map(|c| match state(c) {
            Some(s @ (CiState::Failure | CiState::Error)) => Some(format!("{c}: {}", s.as_str())),
            _ => None,
        })
        .collect();
    if !red.is_empty() {
        return (GateStatus::Failed, format!("context {}", red.join(", ")));
    }
    let waiting: Vec<String> = contexts
        .iter()
        .filter_map(|c| match state(c) {
            None => Some(format!("{c}: missing")),
            Some(CiState::Pending) => Some(format!("{c}: pending")),
            _ => None,
        })
        .collect();
    if !waiting.is_empty() {
        return (
            GateStatus::Pending,
            format!("context {}", waiting.join(", ")),
        );
    }
    (
        GateStatus::Passed,
        format!("{} context(s) green on {sha}", contexts.len()),
    )
}

/// An approval from the tracker or the pull request's review; red when
/// nothing approves and one rejects.
fn review_verdict(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    let tracker = newest_verdict(facts, VerdictSource::Tracker);
    let from_pr = facts.pull_request.as_ref().and_then(|pr| {
        let decision = match pr.review_decision? {
            ReviewDecision::Approved => Decision::Approved,
            ReviewDecision::ChangesRequested => Decision::Rejected,
            ReviewDecision::ReviewRequired => return None,
        };
        (pr.report_time >= facts.stage_enter_time).then_some((decision, pr.report_time))
    });
    let review = [newest_verdict(facts, VerdictSource::PrReview), from_pr]
        .into_iter()
        .flatten()
        .max_by_key(|(_, time)| *time);
    let decisions = [("tracker", tracker), ("pull request review", review)];
    if let Some((who, _)) = decisions
        .iter()
        .find(|(_, d)| matches!(d, Some((Decision::Approved, _))))
    {
        return (GateStatus::Passed, format!("approved by the {who}"));
    }
    if let Some((who, _)) = decisions
        .iter()
        .find(|(_, d)| matches!(d, Some((Decision::Rejected, _))))
    {
        return (GateStatus::Failed, format!("rejected by the {who}"));
    }
    (GateStatus::Pending, "waiting for a review verdict".into())
}

fn tests_passed(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    match facts.test_reports.first() {
        None => (GateStatus::Pending, "no test report yet".into()),
        Some(report) if report.passed => (GateStatus::Passed, "tests passed".into()),
        Some(_) => (GateStatus::Failed, "tests failed".into()),
    }
}

fn coverage_threshold(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    let threshold = facts.coverage_threshold;
    match facts.test_reports.first() {
        None => (GateStatus::Pending, "no test report yet".into()),
        Some(report) if report.coverage_percent >= threshold => (
            GateStatus::Passed,
            format!(
                "coverage {}% >= threshold {threshold}%",
                report.coverage_percent
            ),
        ),
        Some(report) => (
            GateStatus::Failed,
            format!(
                "coverage {}% < threshold {threshold}%",
                report.coverage_percent
            ),
        ),
    }
}

fn deploys_not_frozen(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    match &facts.deploy_freeze {
        None => (GateStatus::Passed, "deploys not frozen".into()),
        Some(freeze) => (
            GateStatus::Pending,
            format!(
                "deploys of {} frozen by task {}",
                freeze.repo, freeze.task_id
            ),
        ),
    }
}

fn pr_merged(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    match &facts.pull_request {
        None => (GateStatus::Failed, "no pull request reported".into()),
        Some(pr) if pr.merged => (
            GateStatus::Passed,
            format!("pull request #{} merged", pr.number),
        ),
        Some(pr) => (
            GateStatus::Failed,
            format!("pull request #{} is not merged", pr.number),
        ),
    }
}

fn deploy_not_degraded(facts: &Facts, _: Option<&str>) -> (GateStatus, String) {
    match facts
        .deploy_statuses
        .iter()
        .find(|s| s.health == DeployHealth::Degraded)
    {
        None => (GateStatus::Passed, "no degraded deploy reported".into()),
        Some(status) => (
            GateStatus::Failed,
            format!(
                "deploy degraded: {}",
                status.detail.as_deref().unwrap_or("no detail")
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests spell their rows inline
#[path = "gates_tests.rs"]
mod tests;
