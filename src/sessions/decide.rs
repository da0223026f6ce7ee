//! Pure rules of a session's life: activity signals, runtime probes with the
//! detecting quarantine, and the derived display status. Plain functions over
//! plain values, tested as tables.
//!
//! The quarantine keeps a dead-looking session out of `terminated` until the
//! evidence is conclusive: doubtful probes count attempts against a hash of
//! their evidence (timestamps removed) and escalate to `stuck`, never to dead.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    ActivitySource, ActivityState, CiState, DisplayStatus, Mergeability, ProcessProbe, PullRequest,
    PullRequestState, ReviewDecision, RuntimeProbe, Session, SessionState, TerminationReason,
};
use crate::time::UnixMicros;

/// When the detecting quarantine escalates, and what counts as recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineLimits {
    /// Escalate to stuck at this many attempts (default 3).
    pub max_attempts: u32,
    /// ... or this long after the quarantine started (default 5 minutes).
    pub max_duration: Duration,
    /// An activity signal this recent keeps a dead-looking runtime in
    /// detecting (default 60 s).
    pub recent_activity: Duration,
}

impl Default for QuarantineLimits {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_duration: Duration::from_secs(5 * 60),
            recent_activity: Duration::from_secs(60),
        }
    }
}

/// What a runner's probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub runtime: RuntimeProbe,
    pub process: ProcessProbe,
    pub evidence: String,
}

/// The session after an activity signal received at `now`.
pub fn apply_activity(
    session: &Session,
    state: ActivityState,
    source: ActivitySource,
    now: UnixMicros,
) -> Session {
    if session.state.is_terminal() {
        return session.clone();
    }
    let mut next = session.clone();
    next.activity_state = Some(state);
    next.activity_source = Some(source);
    next.activity_time = Some(now);
    // Exited is only recorded: a probe, not the agent, concludes death.
    let target = match state {
        ActivityState::Active => Some(SessionState::Working),
        ActivityState::Ready | ActivityState::Idle => Some(SessionState::Idle),
        ActivityState::WaitingInput => Some(SessionState::NeedsInput),
        ActivityState::Blocked => Some(SessionState::Stuck),
        ActivityState::Exited => None,
    };
    if let Some(target) = target {
        next.state = target;
        next.clear_detecting();
        next.is_alive = true;
    }
    stamped(session, next, now)
}

/// The session after a runtime probe received at `now`.
///
/// Any activity signal (exited included) within `limits.recent_activity`,
/// bounds included, counts as recent.
pub fn apply_probe(
    session: &Session,
    probe: &Probe,
    now: UnixMicros,
    limits: &QuarantineLimits,
) -> Session {
    if session.state.is_terminal() {
        return session.clone();
    }
    let recent_activity = session
        .activity_time
        .is_some_and(|time| time >= now.minus(limits.recent_activity));
    let mut next = session.clone();
    match (probe.runtime, probe.process) {
        (RuntimeProbe::ProbeFailed, _) | (RuntimeProbe::Alive, ProcessProbe::Dead) => {
            quarantine(&mut next, &probe.evidence, now, limits)
        }
        (RuntimeProbe::Alive, _) => {
            // Only a state the quarantine set is undone; signalled states stay.
            if next.state == SessionState::Detecting
                || (next.state == SessionState::Stuck && next.is_detecting_remembered())
            {
                next.state = SessionState::Working;
            }
            next.clear_detecting();
            next.is_alive = true;
        }
        (RuntimeProbe::Dead, ProcessProbe::Dead) if !recent_activity => {
            // Death is concluded, so the quarantine is over and forgotten.
            next.state = SessionState::Terminated;
            next.termination_reason = Some(TerminationReason::RuntimeLost);
            next.is_alive = false;
            next.end_time = Some(now);
            next.clear_detecting();
        }
        (RuntimeProbe::Dead, _) => quarantine(&mut next, &probe.evidence, now, limits),
    }
    stamped(session, next, now)
}

/// One detecting outcome: count it against the evidence, then escalate to
/// stuck at the limits. Stuck (by quarantine or by a Blocked signal) never
/// falls back to detecting; it keeps counting.
fn quarantine(session: &mut Session, evidence: &str, now: UnixMicros, limits: &QuarantineLimits) {
    let hash = evidence_hash(evidence);
    let start_time = session.detecting_start_time.unwrap_or(now);
    let same_evidence = session.detecting_evidence_hash.as_deref() == Some(hash.as_str());
    session.detecting_attempts = if same_evidence {
        session.detecting_attempts.saturating_add(1)
    } else {
        1
    };
    session.detecting_start_time = Some(start_time);
    session.detecting_evidence_hash = Some(hash);
    session.detecting_last_evidence = Some(evidence.to_owned());
    let escalate = session.detecting_attempts >= limits.max_attempts
        || start_time <= now.minus(limits.max_duration);
    session.state = if escalate || session.state == SessionState::Stuck {
        SessionState::Stuck
    } else {
        SessionState::Detecting
    };
    session.is_alive = true;
}

/// `next`, with update_time stamped when it differs from `before`.
fn stamped(before: &Session, mut next: Session, now: UnixMicros) -> Session {
    if next != *before {
        next.update_time = Some(now);
    }
    next
}

/// A digest of probe evidence with timestamps removed, so the same symptom
/// seen at different times hashes the same.
///
/// Removed when they stand as whole words: date-times such as
/// `2026-11-21T01:54:14.428Z` (`T` or space separator, optional fraction,
/// `Z` or `±hh:mm`/`±hhmm` zone), bare dates `2026-11-21`, times
/// `12:34:56(.123)`, and unix seconds or millis (runs of 10 to 13 digits,
/// optionally with a `.fff` fraction).
/// Whitespace runs then collapse to one space. Hex SHA-256.
pub fn evidence_hash(evidence: &str) -> String {
    let bytes = evidence.as_bytes();
    let mut kept = String::with_capacity(evidence.len());
    let mut at = 0;
    // Timestamps are ASCII, so `at` always stays on a char boundary.
    while let Some(ch) = evidence[at..].chars().next() {
        let word_start = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let timestamp = timestamp_len(&bytes[at..]).filter(|len| {
            word_start
                && bytes
                    .get(at + len)
                    .is_none_or(|b| !b.is_ascii_alphanumeric())
        });
        if let Some(len) = timestamp {
            kept.push(' ');
            at += len;
        } else {
            kept.push(ch);
            at += ch.len_utf8();
        }
    }
    let normalized = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{:x}", Sha256::digest(normalized.as_bytes()))
}

/// The length of the timestamp at the start of `bytes`, if one is there.
fn timestamp_len(bytes: &[u8]) -> Option<usize> {
    if shape(bytes, b"dddd-dd-dd") {
        let time = match bytes.get(10) {
            Some(b'T' | b't' | b' ') => time_len(&bytes[11..]).map_or(0, |len| 1 + len),
            _ => 0,
        };
        return Some(10 + time);
    }
    if let Some(len) = time_len(bytes) {
        return Some(len);
    }
    // Unix seconds or millis, with an optional `.fff` fraction.
    let digits = digits_len(bytes);
    (10..=13)
        .contains(&digits)
        .then(|| digits + fraction_len(&bytes[digits..], b"."))
}

/// `hh:mm:ss`, an optional `.fff` or `,fff` fraction and an optional zone.
fn time_len(bytes: &[u8]) -> Option<usize> {
    if !shape(bytes, b"dd:dd:dd") {
        return None;
    }
    let len = 8 + fraction_len(&bytes[8..], b".,");
    let zone = &bytes[len..];
    let zone_len = if matches!(zone.first(), Some(b'Z' | b'z')) {
        1
    } else if shape(zone, b"+dd:dd") || shape(zone, b"-dd:dd") {
        6
    } else if shape(zone, b"+dddd") || shape(zone, b"-dddd") {
        5
    } else {
        0
    };
    Some(len + zone_len)
}

/// A separator from `separators` followed by digits, or nothing.
fn fraction_len(bytes: &[u8], separators: &[u8]) -> usize {
    match bytes.split_first() {
        Some((separator, rest)) if separators.contains(separator) && digits_len(rest) > 0 => {
            1 + digits_len(rest)
        }
        _ => 0,
    }
}

fn digits_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Whether `bytes` starts with `pattern`, where `d` stands for any digit.
fn shape(bytes: &[u8], pattern: &[u8]) -> bool {
    bytes.len() >= pattern.len()
        && pattern.iter().zip(bytes).all(|(want, got)| match want {
            b'd' => got.is_ascii_digit(),
            _ => want == got,
        })
}

/// The display status of a session with its current pull request (if any).
pub fn display_status(session: &Session, pull_request: Option<&PullRequest>) -> DisplayStatus {
    use TerminationReason as Reason;
    match session.state {
        SessionState::Done => return DisplayStatus::Done,
        // Terminated always carries a reason; without one, show the kill
        // default rather than hide the session.
        SessionState::Terminated => {
            return match session.termination_reason {
                Some(Reason::AutoCleanup | Reason::PrMerged) => DisplayStatus::Cleanup,
                Some(Reason::ErrorInProcess | Reason::ProbeFailure) => DisplayStatus::Errored,
                Some(Reason::ManuallyKilled | Reason::RuntimeLost | Reason::AgentProcessExited)
                | None => DisplayStatus::Killed,
            };
        }
        SessionState::NeedsInput => return DisplayStatus::NeedsInput,
        SessionState::Stuck => return DisplayStatus::Stuck,
        SessionState::Detecting => return DisplayStatus::Detecting,
        SessionState::NotStarted => return DisplayStatus::Spawning,
        SessionState::Working | SessionState::Idle => {}
    }
    if let Some(status) = pull_request.and_then(pull_request_status) {
        return status;
    }
    if session.state == SessionState::Idle {
        DisplayStatus::Idle
    } else {
        DisplayStatus::Working
    }
}

/// What a pull request says of its session: merged, or the facts of an open
/// one; nothing for a closed one.
fn pull_request_status(pr: &PullRequest) -> Option<DisplayStatus> {
    match pr.state {
        PullRequestState::Merged => return Some(DisplayStatus::Merged),
        PullRequestState::Closed => return None,
        PullRequestState::Open => {}
    }
    let review = pr.review_decision;
    let approved = review == Some(ReviewDecision::Approved);
    let ci_green = matches!(pr.ci_state, None | Some(CiState::None | CiState::Passing));
    let status = if pr.ci_state == Some(CiState::Failing) {
        DisplayStatus::CiFailed
    } else if pr.draft {
        DisplayStatus::Draft
    } else if review == Some(ReviewDecision::ChangesRequested) {
        DisplayStatus::ChangesRequested
    } else if approved && ci_green && pr.mergeability == Some(Mergeability::Mergeable) {
        DisplayStatus::Mergeable
    } else if approved {
        DisplayStatus::Approved
    } else if review == Some(ReviewDecision::ReviewRequired) {
        DisplayStatus::ReviewPending
    } else {
        DisplayStatus::PrOpen
    };
    Some(status)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
