//! Every row of the gate table, as a table: facts in, status out.

use super::*;
use crate::tasks::{CiStatus, DeployFreeze, DeployStatus, PullRequestFacts, TestReport, Verdict};

const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_SHA: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ENTER: UnixMicros = UnixMicros(1_000);

fn ci(context: &str, state: CiState) -> CiStatus {
    CiStatus {
        repo: "acme/app".into(),
        sha: SHA.into(),
        branch: None,
        context: context.into(),
        state,
        target_url: None,
        description: None,
        create_time: ENTER,
        update_time: ENTER,
    }
}

fn verdict(id: i64, source: VerdictSource, decision: Decision) -> Verdict {
    Verdict {
        id,
        task_id: 1,
        decision,
        source,
        author: None,
        comment: None,
        stage: Stage::Review,
        create_time: UnixMicros(ENTER.0 + id),
    }
}

fn report(passed: bool, coverage_percent: f64) -> TestReport {
    TestReport {
        id: 1,
        task_id: 1,
        passed,
        coverage_percent,
        sha: None,
        summary: None,
        create_time: ENTER,
    }
}

fn deploy(health: DeployHealth) -> DeployStatus {
    DeployStatus {
        id: 1,
        task_id: 1,
        health,
        detail: Some("error rate 7%".into()),
        create_time: ENTER,
    }
}

fn pr(merged: bool, review_decision: Option<ReviewDecision>, at: i64) -> PullRequestFacts {
    PullRequestFacts {
        number: 42,
        merged,
        review_decision,
        report_time: UnixMicros(at),
    }
}

fn facts() -> Facts {
    Facts {
        stage_enter_time: ENTER,
        ..Facts::default()
    }
}

use Decision::{Approved, Rejected};
use GateStatus::{Failed, Passed, Pending};
use VerdictSource::{PrReview, Tracker};

fn status(stage: Stage, facts: &Facts, head: Option<&str>) -> GateStatus {
    evaluate(stage, facts, head, ENTER)
        .map(|g| g.status)
        .unwrap()
}

#[test]
fn every_stage_but_done_has_one_gate() {
    for stage in Stage::ALL {
        assert_eq!(gate(*stage).is_some(), *stage != Stage::Done, "{stage:?}");
    }
    assert!(evaluate(Stage::Done, &facts(), None, ENTER).is_none());
}

#[test]
fn analysis_waits_for_a_tracker_approval_and_is_never_red() {
    let rows: &[(&[(VerdictSource, Decision)], GateStatus)] = &[
        (&[], Pending),
        (&[(Tracker, Approved)], Passed),
        (&[(Tracker, Rejected)], Pending),
        (&[(Tracker, Approved), (Tracker, Rejected)], Pending),
        (&[(Tracker, Rejected), (Tracker, Approved)], Passed),
        (&[(PrReview, Approved)], Pending),
    ];
    for (verdicts, expected) in rows {
        let facts = Facts {
            verdicts: verdicts
                .iter()
                .enumerate()
                .map(|(i, (source, decision))| verdict(i as i64 + 1, *source, *decision))
                .collect(),
            ..facts()
        };
        assert_eq!(
            status(Stage::Analysis, &facts, None),
            *expected,
            "{verdicts:?}"
        );
    }
}

#[test]
fn development_needs_every_required_context_green_on_the_head_commit() {
    use CiState::*;
    let rows: &[(Option<&str>, &[&str], &[(&str, CiState)], GateStatus)] = &[
        (None, &[], &[("ci/test", Success)], GateStatus::Pending),
        (Some(SHA), &[], &[], GateStatus::Pending),
        (Some(SHA), &[], &[("ci/test", Success)], Passed),
        (
            Some(SHA),
            &[],
            &[("ci/test", Success), ("lint", Failure)],
            Failed,
        ),
        (Some(SHA), &[], &[("ci/test", Error)], Failed),
        (
            Some(SHA),
            &[],
            &[("ci/test", Pending), ("lint", Success)],
            GateStatus::Pending,
        ),
        (
            Some(SHA),
            &["ci/test", "lint"],
            &[("ci/test", Success)],
            GateStatus::Pending,
        ),
        (
            Some(SHA),
            &["ci/test"],
            &[("ci/test", Success), ("optional", Failure)],
            Passed,
        ),
        (
            Some(SHA),
            &["ci/test", "lint"],
            &[("ci/test", Success), ("lint", Pending)],
            GateStatus::Pending,
        ),
        (
            Some(SHA),
            &["ci/test", "lint"],
            &[("ci/test", Pending), ("lint", Failure)],
            Failed,
        ),
        (
            Some(OTHER_SHA),
            &[],
            &[("ci/test", Success)],
            GateStatus::Pending,
        ),
    ];
    for (head, required, statuses, expected) in rows {
        let facts = Facts {
            required_ci_contexts: required.iter().map(|c| c.to_string()).collect(),
            ci_statuses: statuses.iter().map(|(c, s)| ci(c, *s)).collect(),
            ..facts()
        };
        assert_eq!(
            status(Stage::Development, &facts, *head),
            *expected,
            "head {head:?} required {required:?} statuses {statuses:?}"
        );
    }
}

#[test]
fn review_takes_an_approval_from_the_tracker_or_the_pull_request() {
    let before = ENTER.0 - 1;
    let after = ENTER.0 + 100;
    let rows: &[(
        &[(VerdictSource, Decision)],
        Option<PullRequestFacts>,
        GateStatus,
    )] = &[
        (&[], None, Pending),
        (&[(Tracker, Approved)], None, Passed),
        (&[(Tracker, Rejected)], None, Failed),
        (&[(PrReview, Approved)], None, Passed),
        (&[(PrReview, Rejected)], None, Failed),
        (&[(PrReview, Rejected), (PrReview, Approved)], None, Passed),
        (&[(PrReview, Approved), (PrReview, Rejected)], None, Failed),
        (&[(Tracker, Approved), (PrReview, Rejected)], None, Passed),
        (&[(Tracker, Rejected), (PrReview, Approved)], None, Passed),
        (
            &[],
            Some(pr(false, Some(ReviewDecision::Approved), after)),
            Passed,
        ),
        (
            &[],
            Some(pr(false, Some(ReviewDecision::ChangesRequested), after)),
            Failed,
        ),
        (
            &[],
            Some(pr(false, Some(ReviewDecision::ReviewRequired), after)),
            Pending,
        ),
        // A decision reported before the task entered review does not count.
        (
            &[],
            Some(pr(false, Some(ReviewDecision::ChangesRequested), before)),
            Pending,
        ),
        // The newer of the PR review verdict and the PR's decision wins.
        (
            &[(PrReview, Rejected)],
            Some(pr(false, Some(ReviewDecision::Approved), after)),
            Passed,
        ),
    ];
    for (verdicts, pull_request, expected) in rows {
        let facts = Facts {
            verdicts: verdicts
                .iter()
                .enumerate()
                .map(|(i, (source, decision))| verdict(i as i64 + 1, *source, *decision))
                .collect(),
            pull_request: pull_request.clone(),
            ..facts()
        };
        assert_eq!(
            status(Stage::Review, &facts, None),
            *expected,
            "{verdicts:?} {pull_request:?}"
        );
    }
}

#[test]
fn testing_needs_passing_tests_enough_coverage_and_no_freeze() {
    let freeze = DeployFreeze {
        repo: "acme/app".into(),
        task_id: 9,
        detail: None,
        create_time: ENTER,
    };
    let rows: &[(Option<(bool, f64)>, f64, bool, GateStatus)] = &[
        (None, 0.0, false, Pending),
        (Some((true, 0.0)), 0.0, false, Passed),
        (Some((true, 80.0)), 80.0, false, Passed),
        (Some((true, 79.9)), 80.0, false, Failed),
        (Some((false, 95.0)), 80.0, false, Failed),
        (Some((true, 0.0)), 1.0, false, Failed),
        (Some((true, 95.0)), 80.0, true, Pending),
        (Some((false, 95.0)), 80.0, true, Failed),
    ];
    for (newest, threshold, frozen, expected) in rows {
        let facts = Facts {
            test_reports: newest
                .iter()
                .map(|(passed, coverage)| report(*passed, *coverage))
                .collect(),
            coverage_threshold: *threshold,
            deploy_freeze: frozen.then(|| freeze.clone()),
            ..facts()
        };
        assert_eq!(
            status(Stage::Testing, &facts, None),
            *expected,
            "{newest:?} threshold {threshold} frozen {frozen}"
        );
    }
}

#[test]
fn the_newest_test_report_decides() {
    let facts = Facts {
        test_reports: vec![report(true, 90.0), report(false, 10.0)],
        coverage_threshold: 50.0,
        ..facts()
    };
    assert_eq!(status(Stage::Testing, &facts, None), Passed);
}

#[test]
fn deploy_needs_the_merge_and_no_degraded_deploy() {
    let rows: &[(
        Option<bool>,
        &[DeployHealth],
        GateStatus,
        &[(&str, GateStatus)],
    )] = &[
        (
            Some(true),
            &[],
            Passed,
            &[(PR_MERGED, Passed), (DEPLOY_NOT_DEGRADED, Passed)],
        ),
        (
            Some(true),
            &[DeployHealth::Healthy],
            Passed,
            &[(DEPLOY_NOT_DEGRADED, Passed)],
        ),
        (Some(false), &[], Failed, &[(PR_MERGED, Failed)]),
        (None, &[], Failed, &[(PR_MERGED, Failed)]),
        (
            Some(true),
            &[DeployHealth::Degraded],
            Failed,
            &[(PR_MERGED, Passed), (DEPLOY_NOT_DEGRADED, Failed)],
        ),
        (
            Some(true),
            &[DeployHealth::Healthy, DeployHealth::Degraded],
            Failed,
            &[(DEPLOY_NOT_DEGRADED, Failed)],
        ),
    ];
    for (merged, deploys, expected, checks) in rows {
        let facts = Facts {
            pull_request: merged.map(|m| pr(m, None, ENTER.0)),
            deploy_statuses: deploys.iter().map(|h| deploy(*h)).collect(),
            ..facts()
        };
        let result = evaluate(Stage::Deploy, &facts, None, ENTER).unwrap();
        assert_eq!(result.status, *expected, "{merged:?} {deploys:?}");
        for (name, status) in *checks {
            assert_eq!(result.check(name).unwrap().status, *status, "{name}");
        }
    }
}

#[test]
fn a_result_lists_every_check_in_table_order_with_reasons() {
    let facts = Facts {
        test_reports: vec![report(true, 78.5)],
        coverage_threshold: 80.0,
        ..facts()
    };
    let result = evaluate(Stage::Testing, &facts, Some(SHA), ENTER).unwrap();
    let names: Vec<&str> = result.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["tests_passed", "coverage_threshold", "deploys_not_frozen"]
    );
    assert_eq!(result.gate, "tests_passed");
    assert_eq!(result.head_sha.as_deref(), Some(SHA));
    assert_eq!(
        result.check("coverage_threshold").unwrap().reason,
        "coverage 78.5% < threshold 80%"
    );
}
