//! Whether a session needs a person, and why: the pure rule behind
//! ListAttention. A session needs a person when its display status says the
//! agent cannot go on without one (stuck, needs input), when one of its open
//! reactions targets a person (an escalation past the nudge brake, approved
//! and green, the agent exited), or when its task is held. Notices of
//! priority info (pr-closed, pr-merged) are for the record and need no one.

use super::{DisplayStatus, Reaction, ReactionPriority, ReactionStatus, ReactionTarget};

/// Why a session needs a person. The order is the urgency rank: the
/// listing puts sessions whose first reason ranks higher first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttentionReason {
    Stuck,
    NeedsInput,
    CiFailed,
    MergeHeld,
    TaskHeld,
    Escalated,
    AgentExited,
    ApprovedAndGreen,
}

/// Why the session's task is held, as far as attention cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskHold {
    /// The deploy gate could not verify the merge.
    MergeUnverified,
    /// Any other hold (rollback limit, retry budget, degraded deploy).
    Other,
}

/// The reasons a session needs a person, most urgent first and each once;
/// empty when it needs no one. `reactions` are the session's reactions (any
/// status: closed ones and ones for the agent are ignored).
pub fn attention_reasons(
    display_status: DisplayStatus,
    reactions: &[Reaction],
    hold: Option<TaskHold>,
) -> Vec<AttentionReason> {
    let mut reasons = Vec::new();
    match display_status {
        DisplayStatus::Stuck => reasons.push(AttentionReason::Stuck),
        DisplayStatus::NeedsInput => reasons.push(AttentionReason::NeedsInput),
        _ => {}
    }
    reasons.extend(reactions.iter().filter_map(reaction_reason));
    reasons.extend(hold.map(|hold| match hold {
        TaskHold::MergeUnverified => AttentionReason::MergeHeld,
        TaskHold::Other => AttentionReason::TaskHeld,
    }));
    reasons.sort();
    reasons.dedup();
    reasons
}

/// Whether a reaction is an open one for a person (what ListAttention
/// returns with the session).
pub fn is_for_a_person(reaction: &Reaction) -> bool {
    reaction.status != ReactionStatus::Cleared
        && reaction.target == ReactionTarget::Human
        && reaction.priority != ReactionPriority::Info
}

fn reaction_reason(reaction: &Reaction) -> Option<AttentionReason> {
    if !is_for_a_person(reaction) {
        return None;
    }
    Some(match reaction.key.as_str() {
        "agent-stuck" => AttentionReason::Stuck,
        "agent-needs-input" => AttentionReason::NeedsInput,
        "ci-failed" => AttentionReason::CiFailed,
        "agent-exited" => AttentionReason::AgentExited,
        "approved-and-green" => AttentionReason::ApprovedAndGreen,
        // review-comments, merge-conflicts, agent-idle, and keys added later:
        // open for a person means escalated.
        _ => AttentionReason::Escalated,
    })
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
