//! What a gate result or a transient failure does to a task: pure decisions,
//! applied by the service in one transaction.

use super::gates::{DEPLOY_NOT_DEGRADED, PR_MERGED};
use super::{GateResult, GateStatus, HoldReason, Stage, pipeline};
use crate::lessons::lesson_types;

/// The pipeline's budgets (configuration `[tasks]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rollbacks to development before a red gate holds the task instead.
    pub rollback_limit: u32,
    /// Transient failures retried in one stage before the task is held.
    pub retry_budget: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rollback_limit: 3,
            retry_budget: 3,
        }
    }
}

/// One move of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Green: enter `to` (with a session for its role, if it has one).
    Advance { to: Stage },
    /// Red: back to development with a new developer session, counted.
    RollBack { lesson: &'static str },
    /// Stop the task until an operator releases it.
    Hold {
        reason: HoldReason,
        lesson: &'static str,
    },
    /// A new session for the same stage.
    Retry,
    /// Pending: nothing moves.
    Wait,
}

/// The move a gate result means for a task in `stage` that has been rolled
/// back `rollback_count` times. A held task is never decided on.
pub fn on_gate(stage: Stage, rollback_count: u32, gate: &GateResult, limits: Limits) -> Move {
    match gate.status {
        GateStatus::Pending => Move::Wait,
        GateStatus::Passed => match pipeline::next(stage) {
            Some(to) => Move::Advance { to },
            None => Move::Wait,
        },
        GateStatus::Failed if stage == Stage::Deploy => {
            let degraded = gate
                .check(DEPLOY_NOT_DEGRADED)
                .is_some_and(|c| c.status == GateStatus::Failed);
            let unmerged = gate
                .check(PR_MERGED)
                .is_some_and(|c| c.status == GateStatus::Failed);
            if degraded && !unmerged {
                Move::Hold {
                    reason: HoldReason::DeployDegraded,
                    lesson: lesson_types::DEPLOY_DEGRADED,
                }
            } else {
                Move::Hold {
                    reason: HoldReason::MergeUnverified,
                    lesson: lesson_types::MERGE_HOLD,
                }
            }
        }
        GateStatus::Failed if rollback_count >= limits.rollback_limit => Move::Hold {
            reason: HoldReason::RollbackLimit,
            lesson: lesson_types::GATE_FAILURE,
        },
        GateStatus::Failed => Move::RollBack {
            lesson: lesson_types::GATE_FAILURE,
        },
    }
}

/// The move a transiently failed stage session means, `retries` having been
/// spent in this stage already.
pub fn on_transient_failure(retries: u32, limits: Limits) -> Move {
    if retries < limits.retry_budget {
        Move::Retry
    } else {
        Move::Hold {
            reason: HoldReason::RetryBudgetExhausted,
            lesson: lesson_types::TRANSIENT_RETRY,
        }
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests spell their rows inline
mod tests {
    use super::*;
    use crate::tasks::GateCheck;
    use crate::time::UnixMicros;

    fn gate(stage: Stage, status: GateStatus, checks: &[(&str, GateStatus)]) -> GateResult {
        GateResult {
            stage,
            gate: "g".into(),
            status,
            checks: checks
                .iter()
                .map(|(name, status)| GateCheck {
                    name: name.to_string(),
                    status: *status,
                    reason: String::new(),
                })
                .collect(),
            head_sha: None,
            evaluate_time: UnixMicros(0),
        }
    }

    const LIMITS: Limits = Limits {
        rollback_limit: 3,
        retry_budget: 3,
    };

    #[test]
    fn gate_results_as_a_table() {
        use GateStatus::{Failed, Passed, Pending};
        use Stage::*;
        let hold = |reason, lesson| Move::Hold { reason, lesson };
        let back = Move::RollBack {
            lesson: lesson_types::GATE_FAILURE,
        };
        let rows: &[(Stage, u32, GateStatus, &[(&str, GateStatus)], Move)] = &[
            (Analysis, 0, Passed, &[], Move::Advance { to: Development }),
            (Analysis, 0, Pending, &[], Move::Wait),
            (Development, 0, Passed, &[], Move::Advance { to: Review }),
            (Review, 0, Passed, &[], Move::Advance { to: Testing }),
            (Testing, 0, Passed, &[], Move::Advance { to: Deploy }),
            (Deploy, 0, Passed, &[], Move::Advance { to: Done }),
            (Development, 0, Pending, &[], Move::Wait),
            (Testing, 3, Pending, &[], Move::Wait),
            (Development, 0, Failed, &[], back),
            (Review, 0, Failed, &[], back),
            (Testing, 2, Failed, &[], back),
            (
                Testing,
                3,
                Failed,
                &[],
                hold(HoldReason::RollbackLimit, lesson_types::GATE_FAILURE),
            ),
            (
                Review,
                7,
                Failed,
                &[],
                hold(HoldReason::RollbackLimit, lesson_types::GATE_FAILURE),
            ),
            (
                Deploy,
                0,
                Failed,
                &[(PR_MERGED, Failed), (DEPLOY_NOT_DEGRADED, Passed)],
                hold(HoldReason::MergeUnverified, lesson_types::MERGE_HOLD),
            ),
            (
                Deploy,
                0,
                Failed,
                &[(PR_MERGED, Passed), (DEPLOY_NOT_DEGRADED, Failed)],
                hold(HoldReason::DeployDegraded, lesson_types::DEPLOY_DEGRADED),
            ),
            (
                Deploy,
                0,
                Failed,
                &[(PR_MERGED, Failed), (DEPLOY_NOT_DEGRADED, Failed)],
                hold(HoldReason::MergeUnverified, lesson_types::MERGE_HOLD),
            ),
            // A red deploy gate never rolls back, whatever the count.
            (
                Deploy,
                9,
                Failed,
                &[(PR_MERGED, Failed), (DEPLOY_NOT_DEGRADED, Passed)],
                hold(HoldReason::MergeUnverified, lesson_types::MERGE_HOLD),
            ),
        ];
        for (stage, rollbacks, status, checks, expected) in rows {
            let result = gate(*stage, *status, checks);
            assert_eq!(
                on_gate(*stage, *rollbacks, &result, LIMITS),
                *expected,
                "{stage:?} rollbacks {rollbacks} {status:?} {checks:?}"
            );
        }
    }

    #[test]
    fn transient_failures_retry_within_the_budget_then_hold() {
        let rows = [
            (0, 3, Move::Retry),
            (2, 3, Move::Retry),
            (
                3,
                3,
                Move::Hold {
                    reason: HoldReason::RetryBudgetExhausted,
                    lesson: lesson_types::TRANSIENT_RETRY,
                },
            ),
            (
                0,
                0,
                Move::Hold {
                    reason: HoldReason::RetryBudgetExhausted,
                    lesson: lesson_types::TRANSIENT_RETRY,
                },
            ),
        ];
        for (retries, budget, expected) in rows {
            let limits = Limits {
                retry_budget: budget,
                ..LIMITS
            };
            assert_eq!(
                on_transient_failure(retries, limits),
                expected,
                "{retries}/{budget}"
            );
        }
    }
}
