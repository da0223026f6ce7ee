//! Tables for the session deciders: activity, probes, display status.

use super::*;
use crate::sessions::Harness;
use ActivityState as A;
use ProcessProbe as P;
use RuntimeProbe as R;
use SessionState as S;

const NOW: UnixMicros = UnixMicros(1_800_000_000_000_000);

fn ago(secs: u64) -> UnixMicros {
    NOW.minus(Duration::from_secs(secs))
}

fn session(state: SessionState) -> Session {
    let terminated = state == S::Terminated;
    Session {
        id: "mer-1".into(),
        project_id: "mer".into(),
        task_id: None,
        role: None,
        issue_id: None,
        harness: Harness::ClaudeCode,
        state,
        termination_reason: terminated.then_some(TerminationReason::ManuallyKilled),
        termination_detail: None,
        is_alive: !state.is_terminal(),
        activity_state: None,
        activity_source: None,
        activity_time: None,
        detecting_attempts: 0,
        detecting_start_time: None,
        detecting_evidence_hash: None,
        detecting_last_evidence: None,
        branch: None,
        workspace_path: None,
        runtime_handle_id: None,
        runtime_name: None,
        agent_session_id: None,
        prompt: None,
        create_time: ago(3600),
        update_time: None,
        start_time: None,
        end_time: None,
        restore_time: None,
    }
}

/// A session in `state` whose quarantine began `since` seconds ago.
fn quarantined(state: SessionState, attempts: u32, since: u64, evidence: &str) -> Session {
    Session {
        detecting_attempts: attempts,
        detecting_start_time: Some(ago(since)),
        detecting_evidence_hash: Some(evidence_hash(evidence)),
        detecting_last_evidence: Some(evidence.into()),
        ..session(state)
    }
}

fn signalled(state: SessionState, secs_ago: u64) -> Session {
    let activity_time = Some(ago(secs_ago));
    Session {
        activity_time,
        ..session(state)
    }
}

fn not_alive(state: SessionState) -> Session {
    Session {
        is_alive: false,
        ..session(state)
    }
}

#[test]
fn apply_activity_table() {
    #[rustfmt::skip]
    let cases = [
        ("active works", session(S::Idle), A::Active, S::Working),
        ("ready idles", session(S::Working), A::Ready, S::Idle),
        ("idle idles", session(S::Working), A::Idle, S::Idle),
        ("waiting needs input", session(S::Working), A::WaitingInput, S::NeedsInput),
        ("blocked sticks", session(S::Working), A::Blocked, S::Stuck),
        ("exited changes no state", session(S::Working), A::Exited, S::Working),
        ("exited keeps memory", quarantined(S::Detecting, 2, 10, "x"), A::Exited, S::Detecting),
        ("exited keeps not alive", not_alive(S::Idle), A::Exited, S::Idle),
        ("active ends detecting", quarantined(S::Detecting, 2, 10, "x"), A::Active, S::Working),
        ("idle ends quarantine", quarantined(S::Stuck, 3, 10, "x"), A::Idle, S::Idle),
        ("marks alive", not_alive(S::Working), A::Active, S::Working),
        ("not started like live", session(S::NotStarted), A::Active, S::Working),
        ("done unchanged", session(S::Done), A::Active, S::Done),
        ("terminated unchanged", session(S::Terminated), A::Active, S::Terminated),
        ("terminated exited", session(S::Terminated), A::Exited, S::Terminated),
    ];
    for (name, before, signal, want) in cases {
        let after = apply_activity(&before, signal, ActivitySource::Hook, NOW);
        if before.state.is_terminal() {
            assert_eq!(after, before, "{name}");
            continue;
        }
        assert_eq!(after.state, want, "{name}");
        let recorded = (
            after.activity_state,
            after.activity_source,
            after.activity_time,
        );
        assert_eq!(
            recorded,
            (Some(signal), Some(ActivitySource::Hook), Some(NOW)),
            "{name}"
        );
        assert_eq!(after.update_time, Some(NOW), "{name}");
        if signal == A::Exited {
            assert_eq!(
                after.detecting_attempts, before.detecting_attempts,
                "{name}"
            );
            assert_eq!(after.is_alive, before.is_alive, "{name}");
        } else {
            assert!(!after.is_detecting_remembered(), "{name}");
            assert_eq!(after.detecting_attempts, 0, "{name}");
            assert!(after.is_alive, "{name}");
        }
    }
}

#[test]
fn apply_probe_table() {
    let since = Some(ago(30));
    // (name, before, runtime, process, evidence, state, attempts, quarantine start)
    #[rustfmt::skip]
    let cases = [
        ("kill requested", session(S::Terminated), R::ProbeFailed, P::Unknown, "e", S::Terminated, 0, None),
        ("done", session(S::Done), R::Dead, P::Dead, "e", S::Done, 0, None),
        ("failed probe detects", session(S::Working), R::ProbeFailed, P::Alive, "e", S::Detecting, 1, Some(NOW)),
        ("process dead detects", session(S::Working), R::Alive, P::Dead, "e", S::Detecting, 1, Some(NOW)),
        ("healthy keeps working", session(S::Working), R::Alive, P::Alive, "e", S::Working, 0, None),
        ("healthy, process unknown", session(S::Idle), R::Alive, P::Unknown, "e", S::Idle, 0, None),
        ("healthy keeps needs input", session(S::NeedsInput), R::Alive, P::Alive, "e", S::NeedsInput, 0, None),
        ("healthy keeps blocked", session(S::Stuck), R::Alive, P::Alive, "e", S::Stuck, 0, None),
        ("healthy ends detecting", quarantined(S::Detecting, 2, 30, "e"), R::Alive, P::Alive, "e", S::Working, 0, None),
        ("healthy ends quarantine stuck", quarantined(S::Stuck, 3, 30, "e"), R::Alive, P::Alive, "e", S::Working, 0, None),
        ("healthy clears memory", quarantined(S::Idle, 1, 30, "e"), R::Alive, P::Alive, "e", S::Idle, 0, None),
        ("healthy marks alive", not_alive(S::Working), R::Alive, P::Alive, "e", S::Working, 0, None),
        ("dead runtime, live process", session(S::Working), R::Dead, P::Alive, "e", S::Detecting, 1, Some(NOW)),
        ("dead, recent activity", signalled(S::Idle, 30), R::Dead, P::Dead, "e", S::Detecting, 1, Some(NOW)),
        ("recent is inclusive", signalled(S::Idle, 60), R::Dead, P::Dead, "e", S::Detecting, 1, Some(NOW)),
        ("dead, stale activity", signalled(S::Idle, 61), R::Dead, P::Dead, "e", S::Terminated, 0, None),
        ("dead, no activity", session(S::Working), R::Dead, P::Dead, "e", S::Terminated, 0, None),
        ("death clears memory", quarantined(S::Detecting, 2, 30, "e"), R::Dead, P::Dead, "e", S::Terminated, 0, None),
        ("dead, process unknown", session(S::Working), R::Dead, P::Unknown, "e", S::Detecting, 1, Some(NOW)),
        ("same evidence counts", quarantined(S::Detecting, 1, 30, "e"), R::ProbeFailed, P::Unknown, "e", S::Detecting, 2, since),
        ("third attempt sticks", quarantined(S::Detecting, 2, 30, "e"), R::ProbeFailed, P::Unknown, "e", S::Stuck, 3, since),
        ("new evidence restarts", quarantined(S::Detecting, 2, 30, "e"), R::ProbeFailed, P::Unknown, "f", S::Detecting, 1, since),
        ("timestamps ignored", quarantined(S::Detecting, 1, 30, "at 10:00:00"), R::Dead, P::Unknown, "at 10:00:05", S::Detecting, 2, since),
        ("five minutes sticks", quarantined(S::Detecting, 1, 300, "e"), R::ProbeFailed, P::Unknown, "f", S::Stuck, 1, Some(ago(300))),
        ("stuck keeps counting", quarantined(S::Stuck, 3, 30, "e"), R::ProbeFailed, P::Unknown, "e", S::Stuck, 4, since),
        ("stuck, new evidence", quarantined(S::Stuck, 3, 30, "e"), R::Alive, P::Dead, "f", S::Stuck, 1, since),
        ("blocked stays stuck", session(S::Stuck), R::ProbeFailed, P::Unknown, "e", S::Stuck, 1, Some(NOW)),
        ("idle detects", session(S::Idle), R::ProbeFailed, P::Unknown, "e", S::Detecting, 1, Some(NOW)),
    ];
    let limits = QuarantineLimits::default();
    for (name, before, runtime, process, evidence, state, attempts, start) in cases {
        let probe = Probe {
            runtime,
            process,
            evidence: evidence.into(),
        };
        let after = apply_probe(&before, &probe, NOW, &limits);
        if before.state.is_terminal() {
            assert_eq!(after, before, "{name}");
            continue;
        }
        assert_eq!(after.state, state, "{name}");
        assert_eq!(after.detecting_attempts, attempts, "{name}");
        assert_eq!(after.detecting_start_time, start, "{name}");
        let remembered = (attempts > 0).then(|| (evidence_hash(evidence), evidence.to_owned()));
        let memory = after
            .detecting_evidence_hash
            .clone()
            .zip(after.detecting_last_evidence.clone());
        assert_eq!(memory, remembered, "{name}");
        let stamped = after.update_time == Some(NOW);
        assert_eq!(stamped, before != after, "{name}: update_time");
        if state == S::Terminated {
            assert_eq!(
                after.termination_reason,
                Some(TerminationReason::RuntimeLost),
                "{name}"
            );
            assert_eq!(after.end_time, Some(NOW), "{name}");
            assert!(!after.is_alive, "{name}");
        } else {
            assert!(after.is_alive, "{name}");
        }
    }
}

#[test]
fn evidence_hash_table() {
    #[rustfmt::skip]
    let cases = [
        ("iso z", "pane dead at 2026-11-21T01:54:14Z", "pane dead at 2026-11-22T09:00:00Z", true),
        ("iso millis", "x 2026-11-21T01:54:14.428Z y", "x 2027-01-01T00:00:00.001Z y", true),
        ("space and offset", "at 2026-11-21 01:54:14+01:00.", "at 2026-11-21 23:59:59-0500.", true),
        ("bare date", "log of 2026-11-21", "log of 2026-11-22", true),
        ("time with fraction", "[12:34:56.123] exit", "[01:02:03] exit", true),
        ("log comma fraction", "12:34:56,789 ERROR", "23:00:00,001 ERROR", true),
        ("epoch seconds", "ts=1763690054 gone", "ts=1763699999 gone", true),
        ("epoch millis", "ts=1763690054428 gone", "ts=1700000000000 gone", true),
        ("epoch fraction", "at 1763690054.428571 gone", "at 1763699999.1 gone", true),
        ("whitespace runs", "pane  dead\n\tnow ", "pane dead now", true),
        ("blank is empty", "", " \n ", true),
        ("different symptom", "pane dead", "process gone", false),
        ("9 digits kept", "pid 123456789", "pid 987654321", false),
        ("14 digits kept", "id 12345678901234", "id 98765432109876", false),
        ("digits inside words kept", "sha abc1234567890", "sha abc0987654321", false),
        ("hh:mm kept", "at 12:34", "at 12:35", false),
        ("non-ascii kept", "état mort 12:00:00", "état vivant 12:00:00", false),
    ];
    for (name, left, right, same) in cases {
        let (left, right) = (evidence_hash(left), evidence_hash(right));
        assert_eq!(left == right, same, "{name}");
        assert_eq!(left.len(), 64, "{name}");
        assert!(
            left.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{name}"
        );
    }
}

#[test]
fn display_status_table() {
    use CiState as Ci;
    use DisplayStatus as D;
    use Mergeability as M;
    use PullRequestState as Pr;
    use ReviewDecision as Rv;
    use TerminationReason as T;
    let pr = |state, review_decision, ci_state, mergeability, draft| {
        Some(PullRequest {
            session_id: "mer-1".into(),
            project_id: "mer".into(),
            url: "https://forge.test/pr/1".into(),
            number: 1,
            state,
            review_decision,
            ci_state,
            mergeability,
            draft,
            head_sha: None,
            branch: None,
            title: None,
            create_time: NOW,
            update_time: None,
        })
    };
    let (approved, mergeable) = (Some(Rv::Approved), Some(M::Mergeable));
    let green = pr(Pr::Open, approved, Some(Ci::Passing), mergeable, false);
    #[rustfmt::skip]
    let cases = [
        ("done", S::Done, None, green.clone(), D::Done),
        ("manually killed", S::Terminated, Some(T::ManuallyKilled), None, D::Killed),
        ("runtime lost", S::Terminated, Some(T::RuntimeLost), None, D::Killed),
        ("agent exited", S::Terminated, Some(T::AgentProcessExited), None, D::Killed),
        ("no reason", S::Terminated, None, None, D::Killed),
        ("auto cleanup", S::Terminated, Some(T::AutoCleanup), None, D::Cleanup),
        ("pr merged", S::Terminated, Some(T::PrMerged), pr(Pr::Merged, None, None, None, false), D::Cleanup),
        ("error in process", S::Terminated, Some(T::ErrorInProcess), None, D::Errored),
        ("probe failure", S::Terminated, Some(T::ProbeFailure), None, D::Errored),
        ("needs input over pr", S::NeedsInput, None, green.clone(), D::NeedsInput),
        ("stuck", S::Stuck, None, green.clone(), D::Stuck),
        ("detecting", S::Detecting, None, None, D::Detecting),
        ("spawning", S::NotStarted, None, None, D::Spawning),
        ("merged", S::Idle, None, pr(Pr::Merged, None, Some(Ci::Failing), None, true), D::Merged),
        ("ci failed over draft", S::Working, None, pr(Pr::Open, None, Some(Ci::Failing), None, true), D::CiFailed),
        ("draft over changes", S::Working, None, pr(Pr::Open, Some(Rv::ChangesRequested), None, None, true), D::Draft),
        ("changes requested", S::Working, None, pr(Pr::Open, Some(Rv::ChangesRequested), None, mergeable, false), D::ChangesRequested),
        ("mergeable", S::Idle, None, green.clone(), D::Mergeable),
        ("mergeable, ci unset", S::Idle, None, pr(Pr::Open, approved, None, mergeable, false), D::Mergeable),
        ("mergeable, ci none", S::Idle, None, pr(Pr::Open, approved, Some(Ci::None), mergeable, false), D::Mergeable),
        ("approved, ci pending", S::Idle, None, pr(Pr::Open, approved, Some(Ci::Pending), mergeable, false), D::Approved),
        ("approved, conflicting", S::Idle, None, pr(Pr::Open, approved, Some(Ci::Passing), Some(M::Conflicting), false), D::Approved),
        ("review pending", S::Working, None, pr(Pr::Open, Some(Rv::ReviewRequired), None, mergeable, false), D::ReviewPending),
        ("pr open", S::Working, None, pr(Pr::Open, None, Some(Ci::Passing), mergeable, false), D::PrOpen),
        ("closed pr, idle", S::Idle, None, pr(Pr::Closed, None, Some(Ci::Failing), None, true), D::Idle),
        ("closed pr, working", S::Working, None, pr(Pr::Closed, approved, None, mergeable, false), D::Working),
        ("idle", S::Idle, None, None, D::Idle),
        ("working", S::Working, None, None, D::Working),
    ];
    for (name, state, termination_reason, pull_request, want) in cases {
        let session = Session {
            termination_reason,
            ..session(state)
        };
        assert_eq!(
            display_status(&session, pull_request.as_ref()),
            want,
            "{name}"
        );
    }
}
