use super::*;
use crate::time::UnixMicros;
use AttentionReason as A;
use DisplayStatus as D;
use ReactionPriority as P;
use ReactionStatus as S;
use ReactionTarget as T;

fn reaction(key: &str, target: T, priority: P, status: S) -> Reaction {
    Reaction {
        id: 1,
        session_id: "mer-1".into(),
        project_id: "mer".into(),
        key: key.into(),
        priority,
        target,
        status,
        message: String::new(),
        nudge_count: 0,
        dedup_key: None,
        create_time: UnixMicros(1),
        update_time: None,
        nudge_time: None,
        escalate_time: None,
        clear_time: None,
    }
}

#[test]
fn attention_table() {
    let ci_nudge = reaction("ci-failed", T::Agent, P::Action, S::Pending);
    let ci_braked = reaction("ci-failed", T::Human, P::Urgent, S::Escalated);
    let ci_cleared = reaction("ci-failed", T::Human, P::Urgent, S::Cleared);
    let green = reaction("approved-and-green", T::Human, P::Action, S::Pending);
    let stuck = reaction("agent-stuck", T::Human, P::Urgent, S::Pending);
    let input = reaction("agent-needs-input", T::Human, P::Action, S::Pending);
    let exited = reaction("agent-exited", T::Human, P::Action, S::Pending);
    let merged = reaction("pr-merged", T::Human, P::Info, S::Pending);
    let closed = reaction("pr-closed", T::Human, P::Info, S::Pending);
    let comments_escalated = reaction("review-comments", T::Human, P::Urgent, S::Escalated);
    let idle_nudge = reaction("agent-idle", T::Agent, P::Action, S::Pending);
    let idle_escalated = reaction("agent-idle", T::Human, P::Urgent, S::Escalated);
    let future_key = reaction("deploy-slow", T::Human, P::Action, S::Pending);

    /// Name, display status, reactions, task hold, expected reasons.
    type Row<'a> = (&'a str, D, Vec<&'a Reaction>, Option<TaskHold>, Vec<A>);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("working, nothing open", D::Working, vec![], None, vec![]),
        ("needs input by status", D::NeedsInput, vec![], None, vec![A::NeedsInput]),
        ("stuck by status", D::Stuck, vec![], None, vec![A::Stuck]),
        ("stuck status and reaction count once", D::Stuck, vec![&stuck], None, vec![A::Stuck]),
        ("needs-input reaction alone", D::Working, vec![&input], None, vec![A::NeedsInput]),
        ("ci failing, agent still nudged", D::CiFailed, vec![&ci_nudge], None, vec![]),
        ("ci failing past the brake", D::CiFailed, vec![&ci_braked], None, vec![A::CiFailed]),
        ("ci failed reaction cleared", D::Working, vec![&ci_cleared], None, vec![]),
        ("approved and green", D::Mergeable, vec![&green], None, vec![A::ApprovedAndGreen]),
        ("mergeable status alone is no notice", D::Mergeable, vec![], None, vec![]),
        ("agent exited", D::Killed, vec![&exited], None, vec![A::AgentExited]),
        ("merged notice is for the record", D::Merged, vec![&merged], None, vec![]),
        ("closed notice is for the record", D::Working, vec![&closed], None, vec![]),
        ("review comments escalated", D::ChangesRequested, vec![&comments_escalated], None, vec![A::Escalated]),
        ("idle nudge is the agent's", D::Idle, vec![&idle_nudge], None, vec![]),
        ("idle escalated", D::Idle, vec![&idle_escalated], None, vec![A::Escalated]),
        ("an unknown key for a person", D::Working, vec![&future_key], None, vec![A::Escalated]),
        ("merge held", D::Done, vec![], Some(TaskHold::MergeUnverified), vec![A::MergeHeld]),
        ("task held otherwise", D::Working, vec![], Some(TaskHold::Other), vec![A::TaskHeld]),
        (
            "several, most urgent first",
            D::NeedsInput,
            vec![&green, &ci_braked, &comments_escalated],
            Some(TaskHold::MergeUnverified),
            vec![A::NeedsInput, A::CiFailed, A::MergeHeld, A::Escalated, A::ApprovedAndGreen],
        ),
    ];
    for (name, display, reactions, hold, want) in rows {
        let reactions: Vec<Reaction> = reactions.into_iter().cloned().collect();
        assert_eq!(attention_reasons(display, &reactions, hold), want, "{name}");
    }
}

#[test]
fn only_open_reactions_for_a_person_are_shown() {
    assert!(is_for_a_person(&reaction(
        "agent-stuck",
        T::Human,
        P::Urgent,
        S::Pending
    )));
    assert!(is_for_a_person(&reaction(
        "ci-failed",
        T::Human,
        P::Urgent,
        S::Escalated
    )));
    assert!(!is_for_a_person(&reaction(
        "ci-failed",
        T::Agent,
        P::Action,
        S::Pending
    )));
    assert!(!is_for_a_person(&reaction(
        "agent-stuck",
        T::Human,
        P::Urgent,
        S::Cleared
    )));
    assert!(!is_for_a_person(&reaction(
        "pr-merged",
        T::Human,
        P::Info,
        S::Pending
    )));
}
