//! The reconciler's pure decisions: which idle task the gate side evaluates,
//! and what a tracker issue's state means for its task.

use std::time::Duration;

use crate::tasks::{Decision, Task};
use crate::time::UnixMicros;

/// Why the gate side leaves a task alone without evaluating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateSkip {
    /// Its stage session is pending or live: that session's end moves it.
    SessionActive,
    /// Updated within its stage's grace: the webhook may just be late.
    WithinGrace,
    /// A stage the gate side never evaluates (analysis, done) or a held task.
    NotSweepable,
}

/// Whether the gate side evaluates `task` now.
pub fn gate_candidate(
    task: &Task,
    grace: Option<Duration>,
    now: UnixMicros,
) -> Result<(), GateSkip> {
    let Some(grace) = grace else {
        return Err(GateSkip::NotSweepable);
    };
    if task.is_held() {
        return Err(GateSkip::NotSweepable);
    }
    if task.stage_session_active {
        return Err(GateSkip::SessionActive);
    }
    if task.update_time > now.minus(grace) {
        return Err(GateSkip::WithinGrace);
    }
    Ok(())
}

/// The tracker states bosun acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerState {
    InProgress,
    Approved,
    Rejected,
}

/// A replay the tracker side makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    StartTask,
    Verdict(Decision),
}

/// Why the tracker side leaves an issue alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerSkip {
    WithinGrace,
    AlreadyRecorded,
    SessionActive,
    /// A verdict for an issue that has no task: nothing to record it on.
    NoTask,
}

/// What bosun knows of the issue's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownTask {
    pub stage_session_active: bool,
    /// The newest tracker verdict and when it was recorded.
    pub newest_tracker_verdict: Option<(Decision, UnixMicros)>,
}

/// What an issue in `state`, last updated at `updated`, calls for.
pub fn tracker_replay(
    state: TrackerState,
    updated: UnixMicros,
    task: Option<KnownTask>,
    grace: Duration,
    now: UnixMicros,
) -> Result<Replay, TrackerSkip> {
    if updated > now.minus(grace) {
        return Err(TrackerSkip::WithinGrace);
    }
    let decision = match state {
        TrackerState::InProgress => {
            return match task {
                Some(_) => Err(TrackerSkip::AlreadyRecorded),
                None => Ok(Replay::StartTask),
            };
        }
        TrackerState::Approved => Decision::Approved,
        TrackerState::Rejected => Decision::Rejected,
    };
    let Some(task) = task else {
        return Err(TrackerSkip::NoTask);
    };
    if task.stage_session_active {
        return Err(TrackerSkip::SessionActive);
    }
    match task.newest_tracker_verdict {
        Some((recorded, at)) if recorded == decision && at >= updated => {
            Err(TrackerSkip::AlreadyRecorded)
        }
        _ => Ok(Replay::Verdict(decision)),
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests spell their rows inline
mod tests {
    use super::*;
    use crate::tasks::{HoldReason, Stage};

    const NOW: UnixMicros = UnixMicros(10_000_000_000);
    const MINUTE: Duration = Duration::from_secs(60);

    fn task(active: bool, held: bool, updated_ago: Duration) -> Task {
        Task {
            id: 1,
            project_id: "mer".into(),
            tracker_issue_id: "i-1".into(),
            work_item_id: "W-1".into(),
            title: String::new(),
            repo: "acme/app".into(),
            branch: "feature/W-1".into(),
            stage: Stage::Development,
            head_sha: None,
            rollback_count: 0,
            transient_retries: 0,
            hold_reason: held.then_some(HoldReason::RollbackLimit),
            hold_detail: None,
            hold_time: held.then_some(NOW),
            stage_session_id: Some("mer-1".into()),
            stage_session_finished: !active,
            stage_session_active: active,
            last_gate: None,
            create_time: UnixMicros(0),
            update_time: NOW.minus(updated_ago),
            stage_enter_time: UnixMicros(0),
        }
    }

    #[test]
    fn the_gate_side_evaluates_idle_tasks_past_their_grace() {
        let rows = [
            (false, false, 11, Some(10), Ok(())),
            (false, false, 10, Some(10), Ok(())),
            (false, false, 9, Some(10), Err(GateSkip::WithinGrace)),
            (true, false, 60, Some(10), Err(GateSkip::SessionActive)),
            (false, true, 60, Some(10), Err(GateSkip::NotSweepable)),
            (false, false, 60, None, Err(GateSkip::NotSweepable)),
            (false, false, 0, Some(0), Ok(())),
        ];
        for (active, held, ago, grace, expected) in rows {
            let task = task(active, held, MINUTE * ago);
            assert_eq!(
                gate_candidate(&task, grace.map(|m| MINUTE * m), NOW),
                expected,
                "active {active} held {held} updated {ago}m ago grace {grace:?}"
            );
        }
    }

    #[test]
    fn tracker_states_replay_what_was_missed_and_nothing_else() {
        use Decision::{Approved, Rejected};
        use TrackerState as S;
        let old = NOW.minus(MINUTE * 60);
        let fresh = NOW.minus(MINUTE);
        let idle = |verdict: Option<(Decision, UnixMicros)>| {
            Some(KnownTask {
                stage_session_active: false,
                newest_tracker_verdict: verdict,
            })
        };
        let busy = Some(KnownTask {
            stage_session_active: true,
            newest_tracker_verdict: None,
        });
        let rows: Vec<(
            S,
            UnixMicros,
            Option<KnownTask>,
            Result<Replay, TrackerSkip>,
        )> = vec![
            (S::InProgress, old, None, Ok(Replay::StartTask)),
            (S::InProgress, fresh, None, Err(TrackerSkip::WithinGrace)),
            (
                S::InProgress,
                old,
                idle(None),
                Err(TrackerSkip::AlreadyRecorded),
            ),
            (S::InProgress, old, busy, Err(TrackerSkip::AlreadyRecorded)),
            (S::Approved, old, idle(None), Ok(Replay::Verdict(Approved))),
            (S::Rejected, old, idle(None), Ok(Replay::Verdict(Rejected))),
            (
                S::Approved,
                fresh,
                idle(None),
                Err(TrackerSkip::WithinGrace),
            ),
            (S::Approved, old, None, Err(TrackerSkip::NoTask)),
            (S::Approved, old, busy, Err(TrackerSkip::SessionActive)),
            // Recorded after the issue's last update: already seen.
            (
                S::Approved,
                old,
                idle(Some((Approved, old))),
                Err(TrackerSkip::AlreadyRecorded),
            ),
            (
                S::Approved,
                old,
                idle(Some((Approved, NOW))),
                Err(TrackerSkip::AlreadyRecorded),
            ),
            // Recorded before the issue changed again: replay.
            (
                S::Approved,
                old,
                idle(Some((Approved, old.minus(MINUTE)))),
                Ok(Replay::Verdict(Approved)),
            ),
            // The tracker now says something else.
            (
                S::Rejected,
                old,
                idle(Some((Approved, NOW))),
                Ok(Replay::Verdict(Rejected)),
            ),
        ];
        for (state, updated, known, expected) in rows {
            assert_eq!(
                tracker_replay(state, updated, known, MINUTE * 2, NOW),
                expected,
                "{state:?} updated {updated:?} {known:?}"
            );
        }
    }
}
