//! Tables for the merge rules of [`super::pull_request_report`] and the CI
//! state they compute.

use super::*;
use crate::pb::{Mergeability, ReviewDecision};
use crate::webhooks::forge::{PullRequestEvent, PullRequestFacts, PullRequestRef, Repo};

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";

fn repo() -> Repo {
    Repo {
        full_name: "acme/shop".into(),
        html_url: "https://github.com/acme/shop".into(),
    }
}

fn known(head: &str, checks: &[(&str, &str, CheckStatus)]) -> Known {
    pb::PullRequest {
        url: "https://github.com/acme/shop/pull/7".into(),
        number: 7,
        state: PullRequestState::Open as i32,
        review_decision: ReviewDecision::Approved as i32,
        ci_state: PullRequestCiState::Passing as i32,
        mergeability: Mergeability::Mergeable as i32,
        draft: false,
        head_sha: head.into(),
        branch: "feature/x".into(),
        checks: checks
            .iter()
            .map(|(name, sha, status)| pb::Check {
                name: (*name).into(),
                commit_sha: (*sha).into(),
                status: *status as i32,
                ..Default::default()
            })
            .collect(),
        comments: vec![pb::Comment {
            id: "c1".into(),
            body: "please rename".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn pr_event(head: &str, review: Review) -> ForgeEvent {
    ForgeEvent::PullRequest(PullRequestEvent {
        repo: repo(),
        pull_request: PullRequestFacts {
            number: 7,
            url: "https://github.com/acme/shop/pull/7".into(),
            state: PullRequestState::Open,
            draft: Some(true),
            head_sha: head.into(),
            branch: "feature/x".into(),
            title: "Add the x feature".into(),
            mergeability: Some(Mergeability::Unknown),
            from_fork: false,
        },
        review,
        position: None,
    })
}

fn ci_event(name: &str, sha: &str, status: CheckStatus, pr: Option<(i64, &str)>) -> ForgeEvent {
    ForgeEvent::Ci(CiEvent {
        repo: repo(),
        name: name.into(),
        sha: sha.into(),
        check: status,
        ci: pb::CiStatusState::Failure,
        url: "https://ci/run/1".into(),
        description: String::new(),
        log: "boom".into(),
        branch: Some("feature/x".into()),
        pull_requests: pr
            .map(|(number, head)| PullRequestRef {
                number,
                branch: "feature/x".into(),
                head_sha: head.into(),
                from_fork: false,
            })
            .into_iter()
            .collect(),
        branch_heads: Vec::new(),
        containing_branches: Vec::new(),
        position: None,
    })
}

fn report(event: &ForgeEvent, known: Option<&Known>) -> Option<pb::PullRequest> {
    let target = targets(event).into_iter().next().expect("a target");
    pull_request_report(Source::GitHub, event, &target, known)
}

#[test]
fn pull_request_events_overlay_the_prs_own_fields_and_keep_the_rest() {
    use PullRequestCiState as Ci;
    use ReviewDecision as R;
    let approve = Review::Approved {
        author: "a".into(),
        body: String::new(),
    };
    let cases = [
        (
            "same head keeps review and CI",
            pr_event(OLD, Review::None),
            R::Approved,
            Ci::Passing,
        ),
        (
            "new head resets CI to none",
            pr_event(NEW, Review::None),
            R::Approved,
            Ci::None,
        ),
        (
            "a comment-only review decides nothing",
            pr_event(OLD, Review::Commented),
            R::Approved,
            Ci::Passing,
        ),
        (
            "a dismissal clears the decision",
            pr_event(OLD, Review::Dismissed),
            R::Unspecified,
            Ci::Passing,
        ),
        (
            "an approval sets it",
            pr_event(OLD, approve),
            R::Approved,
            Ci::Passing,
        ),
        (
            "a change request sets it",
            pr_event(
                OLD,
                Review::ChangesRequested {
                    author: "a".into(),
                    body: "no".into(),
                },
            ),
            R::ChangesRequested,
            Ci::Passing,
        ),
    ];
    let stored = known(OLD, &[("lint", OLD, CheckStatus::Passed)]);
    for (name, event, review, ci) in cases {
        let got = report(&event, Some(&stored)).expect(name);
        assert_eq!(got.review_decision, review as i32, "{name}");
        assert_eq!(got.ci_state, ci as i32, "{name}");
        assert_eq!(got.comments, stored.comments, "{name}: comments kept");
        assert!(got.draft, "{name}: draft from the event");
        assert_eq!(got.mergeability, Mergeability::Unknown as i32, "{name}");
        assert!(got.checks.is_empty(), "{name}");
    }
}

#[test]
fn ci_events_recompute_ci_from_the_head_commits_checks() {
    use CheckStatus::{Failed, Passed, Pending};
    use PullRequestCiState as Ci;
    // (name, what bosun has, the delivery, the head and CI state reported)
    type Case = (
        &'static str,
        Option<Known>,
        ForgeEvent,
        Option<(&'static str, Ci)>,
    );
    let cases: Vec<Case> = vec![
        (
            "a failure on the head fails it",
            Some(known(OLD, &[("lint", OLD, Passed)])),
            ci_event("test", OLD, Failed, Some((7, OLD))),
            Some((OLD, Ci::Failing)),
        ),
        (
            "the same check passing again replaces its failure",
            Some(known(OLD, &[("test", OLD, Failed), ("lint", OLD, Passed)])),
            ci_event("test", OLD, Passed, Some((7, OLD))),
            Some((OLD, Ci::Passing)),
        ),
        (
            "another check still running keeps it pending",
            Some(known(OLD, &[("lint", OLD, Pending)])),
            ci_event("test", OLD, Passed, Some((7, OLD))),
            Some((OLD, Ci::Pending)),
        ),
        (
            "a new head forgets the old head's checks",
            Some(known(OLD, &[("lint", OLD, Failed)])),
            ci_event("test", NEW, Passed, Some((7, NEW))),
            Some((NEW, Ci::Passing)),
        ),
        (
            "a late run on an old commit is kept but decides nothing",
            Some(known(NEW, &[("lint", NEW, Passed)])),
            ci_event("test", OLD, Failed, Some((7, NEW))),
            Some((NEW, Ci::Passing)),
        ),
        (
            "no PR known: the payload's PR is enough",
            None,
            ci_event("test", OLD, Failed, Some((7, OLD))),
            Some((OLD, Ci::Failing)),
        ),
        (
            "no PR known or named: nothing to report",
            None,
            ci_event("test", OLD, Failed, None),
            None,
        ),
        (
            "a branch-only event updates the known PR",
            Some(known(OLD, &[])),
            ci_event("test", OLD, Failed, None),
            Some((OLD, Ci::Failing)),
        ),
        (
            "a newer PR on the branch starts afresh",
            Some(known(OLD, &[("test", OLD, Failed)])),
            ci_event("lint", OLD, Passed, Some((8, OLD))),
            Some((OLD, Ci::Passing)),
        ),
    ];
    for (name, stored, event, expected) in cases {
        let got = report(&event, stored.as_ref());
        match (got, expected) {
            (None, None) => {}
            (Some(got), Some((head, ci))) => {
                assert_eq!(got.head_sha, head, "{name}");
                assert_eq!(got.ci_state, ci as i32, "{name}");
                assert_eq!(got.checks.len(), 1, "{name}: the event's check");
                assert_eq!(got.checks[0].log_tail, "boom", "{name}");
            }
            (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn a_ci_report_without_a_known_pr_builds_its_url_and_keeps_nothing_else() {
    let event = ci_event("test", OLD, CheckStatus::Failed, Some((2, OLD)));
    let got = report(&event, None).unwrap();
    assert_eq!(got.url, "https://github.com/acme/shop/pull/2");
    assert_eq!(got.number, 2);
    assert_eq!(got.state, PullRequestState::Open as i32);
    assert_eq!(got.review_decision, 0);
    assert!(got.comments.is_empty());
}

#[test]
fn combined_ci_table() {
    use CheckStatus::*;
    use PullRequestCiState as Ci;
    let cases: [(&[CheckStatus], Ci); 6] = [
        (&[], Ci::None),
        (&[Passed, Skipped], Ci::Passing),
        (&[Passed, Pending], Ci::Pending),
        (&[Pending, Failed], Ci::Failing),
        (&[Passed, Cancelled], Ci::Failing),
        (&[Unspecified], Ci::Pending),
    ];
    for (statuses, expected) in cases {
        let got = combined_ci(statuses.iter().map(|s| *s as i32));
        assert_eq!(got, expected, "{statuses:?}");
    }
}

#[test]
fn targets_prefer_named_prs_then_branch_heads_then_the_branch() {
    let with_pr = ci_event("t", OLD, CheckStatus::Passed, Some((7, OLD)));
    assert_eq!(targets(&with_pr)[0].number, Some(7));
    let ForgeEvent::Ci(mut status) = ci_event("t", OLD, CheckStatus::Passed, None) else {
        unreachable!()
    };
    status.branch_heads = vec!["main".into(), "feature/x".into(), "main".into()];
    let got = targets(&ForgeEvent::Ci(status.clone()));
    let branches: Vec<&str> = got.iter().map(|t| t.branch.as_str()).collect();
    assert_eq!(branches, ["main", "feature/x"]);
    assert!(got.iter().all(|t| t.head_sha.as_deref() == Some(OLD)));
    status.branch_heads.clear();
    status.branch = None;
    assert!(targets(&ForgeEvent::Ci(status)).is_empty());
}

#[test]
fn requests_fit_bosuns_limits() {
    let ForgeEvent::Ci(mut e) = ci_event("t", OLD, CheckStatus::Failed, None) else {
        unreachable!()
    };
    e.name = format!("{}\nmore", "n".repeat(300));
    e.url = format!("https://ci/{}", "u".repeat(300));
    e.description = "line one\nline two".into();
    e.log = format!("{}\u{7}end", "x".repeat(20_000));
    let request = ci_status_request("gh:d:ci".into(), &e, None);
    assert_eq!(request.context.chars().count(), 256);
    assert_eq!(request.description, "line one line two");
    assert!(!request.target_url.is_empty(), "fits 2048");
    assert_eq!(request.branch, "feature/x");
    let check = check(&e);
    assert!(
        check.url.is_empty(),
        "a URL too long for a check is dropped"
    );
    assert_eq!(check.log_tail.chars().count(), 16 * 1024);
    assert!(check.log_tail.ends_with("xend"));
    let approve = Review::Approved {
        author: "octocat".into(),
        body: "ship it".into(),
    };
    assert!(
        verdict_request("r".into(), &approve, 0).is_none(),
        "no task"
    );
    assert!(verdict_request("r".into(), &Review::Commented, 3).is_none());
    let verdict = verdict_request("r".into(), &approve, 3).unwrap();
    assert_eq!(verdict.decision, pb::VerdictDecision::Approved as i32);
    assert_eq!(verdict.source, pb::VerdictSource::PrReview as i32);
}

#[test]
fn deliveries_about_forks_concern_no_session() {
    let fork_pr = |from_fork| {
        let mut event = pr_event(NEW, Review::None);
        if let ForgeEvent::PullRequest(e) = &mut event {
            e.pull_request.from_fork = from_fork;
        }
        event
    };
    let ci_refs = |forks: &[bool]| {
        let mut event = ci_event("ci", NEW, CheckStatus::Passed, None);
        if let ForgeEvent::Ci(e) = &mut event {
            e.pull_requests = forks
                .iter()
                .enumerate()
                .map(|(i, from_fork)| PullRequestRef {
                    number: i as i64 + 1,
                    branch: "feature/x".into(),
                    head_sha: NEW.into(),
                    from_fork: *from_fork,
                })
                .collect();
        }
        event
    };
    let cases = [
        (fork_pr(false), false),
        (fork_pr(true), true),
        (ci_refs(&[]), false),
        (ci_refs(&[true]), true),
        (ci_refs(&[true, false]), false),
    ];
    for (event, foreign_expected) in cases {
        assert_eq!(foreign(&event).is_some(), foreign_expected, "{event:?}");
    }
    assert_eq!(
        targets(&ci_refs(&[true, false]))
            .iter()
            .map(|t| t.number)
            .collect::<Vec<_>>(),
        [Some(2)],
        "a fork's pull request is no target"
    );
}
