use serde_json::json;

use super::messages::{MAX_MESSAGE_BYTES, TRUNCATED};
use super::*;
use CheckStatus::{Failed, Passed};
use CiState::{Failing, Passing};
use PullRequestState::{Closed, Merged, Open};
use ReactionStatus::{Escalated, Pending};
use SessionState::{Done, Idle, NeedsInput, Stuck, Terminated, Working};

const HEAD: &str = "c3";
const MINUTE: i64 = 60_000_000;

/// Fixtures in their stored (JSON) shape; unset options are left out.
fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid fixture")
}

/// One row's facts, owned.
struct World {
    session: Session,
    pr: Option<PullRequest>,
    checks: Vec<Check>,
    comments: Vec<Comment>,
}

fn world(state: SessionState) -> World {
    let session = from_json(json!({"id": "mer-1", "project_id": "mer", "state": state,
        "harness": "claude-code", "is_alive": true, "detecting_attempts": 0, "create_time": 0}));
    let (pr, checks, comments) = (None, vec![], vec![]);
    World {
        session,
        pr,
        checks,
        comments,
    }
}

impl World {
    fn pr(mut self, state: PullRequestState, ci: Option<CiState>) -> Self {
        self.pr = Some(from_json(
            json!({"session_id": "mer-1", "project_id": "mer",
            "url": "https://forge/pr/7", "number": 7, "state": state, "ci_state": ci,
            "draft": false, "head_sha": HEAD, "create_time": 0}),
        ));
        self
    }
    fn edit(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }
    /// Check runs, oldest first: (name, commit, status).
    fn runs(mut self, runs: &[(&str, &str, CheckStatus)]) -> Self {
        for (id, &(name, sha, status)) in (1..).zip(runs) {
            let log_tail = format!("{name} log on {sha}");
            self.checks
                .push(from_json(json!({"id": id, "session_id": "mer-1",
                "project_id": "mer", "pull_request_number": 7, "name": name,
                "commit_sha": sha, "status": status, "log_tail": log_tail, "create_time": id})));
        }
        self
    }
    fn comments(mut self, comments: &[(&str, bool)]) -> Self {
        self.comments = comments
            .iter()
            .map(|&(id, done)| comment(id, done))
            .collect();
        self
    }
    fn facts(&self) -> Facts<'_> {
        let (session, pull_request) = (&self.session, self.pr.as_ref());
        let (checks, comments, now) = (&self.checks[..], &self.comments[..], UnixMicros(0));
        Facts {
            session,
            pull_request,
            checks,
            comments,
            now,
        }
    }
}

fn comment(id: &str, resolved: bool) -> Comment {
    from_json(
        json!({"id": id, "author": "ana", "body": format!("fix {id}"),
        "path": "src/lib.rs", "line": 3, "resolved": resolved}),
    )
}

fn digest(ids: &[&str]) -> String {
    let comments: Vec<Comment> = ids.iter().map(|id| comment(id, false)).collect();
    comment_set_digest(&comments.iter().collect::<Vec<_>>())
}

/// An open reaction; with no nudges or escalated it is a human one.
fn reaction(
    id: i64,
    key: &str,
    status: ReactionStatus,
    nudges: u32,
    dedup: Option<&str>,
) -> Reaction {
    let human = status == Escalated || nudges == 0;
    let (target, priority) = [("agent", "action"), ("human", "urgent")][usize::from(human)];
    from_json(
        json!({"id": id, "session_id": "mer-1", "project_id": "mer", "key": key,
        "priority": priority, "target": target, "status": status, "message": "",
        "nudge_count": nudges, "dedup_key": dedup, "create_time": 0}),
    )
}

fn summaries(changes: &[Change]) -> Vec<String> {
    let summary = |change: &Change| match change {
        Change::Open {
            key,
            priority,
            target,
            ..
        } => {
            format!("open {key} {}/{}", target.as_str(), priority.as_str())
        }
        Change::Nudge { id, .. } => format!("nudge {id}"),
        Change::Escalate { id, .. } => format!("escalate {id}"),
        Change::Clear { id } => format!("clear {id}"),
    };
    changes.iter().map(summary).collect()
}

/// What the service does with a plan.
fn apply(mut open: Vec<Reaction>, changes: Vec<Change>) -> Vec<Reaction> {
    for change in changes {
        match change {
            Change::Open {
                key,
                target,
                dedup_key,
                ..
            } => {
                let nudges = u32::from(target == ReactionTarget::Agent);
                let id = 100 + open.len() as i64;
                open.push(reaction(id, key, Pending, nudges, dedup_key.as_deref()));
            }
            Change::Nudge { id, dedup_key, .. } => {
                open.iter_mut().filter(|r| r.id == id).for_each(|r| {
                    (r.nudge_count, r.dedup_key) = (r.nudge_count + 1, dedup_key.clone());
                })
            }
            Change::Escalate { id, .. } => open.iter_mut().filter(|r| r.id == id).for_each(|r| {
                (r.status, r.target, r.priority) =
                    (Escalated, ReactionTarget::Human, ReactionPriority::Urgent);
            }),
            Change::Clear { id } => open.retain(|r| r.id != id),
        }
    }
    open
}

type Row = (&'static str, World, Vec<Reaction>, Vec<&'static str>);

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let failing = || world(Working).pr(Open, Some(Failing));
    let three_failed = [("test", "c1", Failed), ("test", "c2", Failed), ("test", HEAD, Failed)];
    let ci = |status, dedup| vec![reaction(1, CI_FAILED, status, 1, dedup)];
    let review = |nudges, ids: &[&str]| vec![reaction(1, REVIEW_COMMENTS, Pending, nudges, Some(&digest(ids)))];
    let commented = |ids: &[(&str, bool)]| world(Working).pr(Open, None).comments(ids);
    let conflicting = || world(Working).pr(Open, None).edit(|w| w.pr.as_mut().unwrap().mergeability = Some(Mergeability::Conflicting));
    let approved = |ci| world(Working).pr(Open, Some(ci)).edit(|w| w.pr.as_mut().unwrap().review_decision = Some(ReviewDecision::Approved));
    let ended = |reason| world(Terminated).edit(|w| w.session.termination_reason = Some(reason));
    let exited = |state| world(state).edit(|w| w.session.activity_state = Some(ActivityState::Exited));
    let done = |w: World| w.edit(|w| w.session.state = Done);
    let held = |key, status| vec![reaction(1, key, status, u32::from(status == Pending), None)];
    let notice = |key| vec![reaction(1, key, Pending, 0, None)];
    vec![
        ("a quiet working session raises nothing", world(Working), vec![], vec![]),
        ("ci-failed opens for the agent", failing().runs(&[("test", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
        ("ci-failed stays quiet on the same commit", failing(), ci(Pending, Some(HEAD)), vec![]),
        ("ci-failed nudges on a new failing commit", failing(), ci(Pending, Some("c2")), vec!["nudge 1"]),
        ("ci-failed escalates after 3 failed runs", failing().runs(&three_failed), ci(Pending, Some("c2")), vec!["escalate 1"]),
        ("ci-failed opens for a person when the brake holds", failing().runs(&three_failed), vec![], vec!["open ci-failed human/urgent"]),
        ("ci-failed brake counts commits, not re-runs", failing().runs(&[("t", "c2", Failed), ("t", HEAD, Failed), ("t", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
        ("ci-failed brake reads each commit's newest run", failing().runs(&[("t", "c1", Failed), ("t", "c2", Failed), ("t", "c2", Passed), ("t", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
        ("ci-failed brake is per check", failing().runs(&[("a", "c1", Failed), ("b", "c2", Failed), ("a", HEAD, Failed)]), vec![], vec!["open ci-failed agent/action"]),
        ("ci-failed escalated stays quiet", failing().runs(&three_failed), ci(Escalated, Some("c2")), vec![]),
        ("ci-failed is kept while CI is pending", world(Working).pr(Open, Some(CiState::Pending)), ci(Pending, Some("c2")), vec![]),
        ("ci-failed clears when CI passes", world(Working).pr(Open, Some(Passing)), ci(Pending, Some(HEAD)), vec!["clear 1"]),
        ("ci-failed clears when CI reports none", world(Working).pr(Open, Some(CiState::None)), ci(Escalated, Some(HEAD)), vec!["clear 1"]),
        ("ci-failed clears when the pull request closes", world(Working).pr(Closed, Some(Failing)), ci(Pending, Some(HEAD)), vec!["clear 1", "open pr-closed human/info"]),
        ("review-comments opens on an unresolved comment", commented(&[("a", false), ("b", true)]), vec![], vec!["open review-comments agent/action"]),
        ("review-comments same set stays quiet", commented(&[("a", false), ("b", true)]), review(1, &["a"]), vec![]),
        ("review-comments nudges on a new set", commented(&[("c", false), ("a", false)]), review(2, &["a"]), vec!["nudge 1"]),
        ("review-comments escalates after 3 nudges", commented(&[("c", false)]), review(3, &["a"]), vec!["escalate 1"]),
        ("review-comments clears when all are resolved", commented(&[("a", true)]), review(1, &["a"]), vec!["clear 1"]),
        ("review-comments clears when the pull request merges", commented(&[("a", false)]).edit(|w| w.pr.as_mut().unwrap().state = Merged), review(1, &["a"]), vec!["clear 1", "open pr-merged human/info"]),
        ("merge-conflicts opens when conflicting", conflicting(), vec![], vec!["open merge-conflicts agent/action"]),
        ("merge-conflicts holds quietly", conflicting(), held(MERGE_CONFLICTS, Pending), vec![]),
        ("merge-conflicts clears when resolved", world(Working).pr(Open, None), held(MERGE_CONFLICTS, Pending), vec!["clear 1"]),
        ("agent-idle opens when idle", world(Idle), vec![], vec!["open agent-idle agent/action"]),
        ("agent-idle clears when working", world(Working), held(AGENT_IDLE, Escalated), vec!["clear 1"]),
        ("approved-and-green notifies a person", approved(Passing), vec![], vec!["open approved-and-green human/action"]),
        ("approved-and-green clears when CI runs again", approved(CiState::Pending), notice("approved-and-green"), vec!["clear 1"]),
        ("agent-stuck is urgent for a person", world(Stuck), vec![], vec!["open agent-stuck human/urgent"]),
        ("agent-stuck clears when the agent moves on", world(Working), notice("agent-stuck"), vec!["clear 1"]),
        ("agent-needs-input notifies a person", world(NeedsInput), vec![], vec!["open agent-needs-input human/action"]),
        ("agent-exited on an exited signal", exited(Working), vec![], vec!["open agent-exited human/action"]),
        ("agent-exited not on an exited signal once done", exited(Done), vec![], vec![]),
        ("agent-exited on runtime lost", ended(TerminationReason::RuntimeLost), vec![], vec!["open agent-exited human/action"]),
        ("agent-exited on the agent process exiting", ended(TerminationReason::AgentProcessExited), vec![], vec!["open agent-exited human/action"]),
        ("agent-exited not on a manual kill", ended(TerminationReason::ManuallyKilled), notice("agent-exited"), vec!["clear 1"]),
        ("pr-merged notifies a person", world(Working).pr(Merged, None), vec![], vec!["open pr-merged human/info"]),
        ("terminal clears pending nudges", done(failing()), ci(Pending, Some(HEAD)), vec!["clear 1"]),
        ("terminal keeps escalated ones that hold", done(failing()), ci(Escalated, Some(HEAD)), vec![]),
        ("terminal opens no nudges", done(conflicting().comments(&[("a", false)])).edit(|w| w.pr.as_mut().unwrap().ci_state = Some(Failing)), vec![], vec![]),
        ("terminal clears escalated ones that stop holding", done(world(Working).pr(Merged, Some(Failing))), ci(Escalated, Some(HEAD)), vec!["clear 1", "open pr-merged human/info"]),
    ]
}

#[test]
fn plans_each_rule() {
    for (rule, world, open, expected) in rows() {
        assert_eq!(summaries(&plan(&world.facts(), &open)), expected, "{rule}");
    }
}

#[test]
fn a_plan_applied_needs_no_second_plan() {
    for (rule, world, open, _) in rows() {
        let first = plan(&world.facts(), &open);
        let open = apply(open, first);
        assert_eq!(plan(&world.facts(), &open), vec![], "{rule}");
    }
}

#[test]
#[rustfmt::skip]
fn messages_say_what_and_why() {
    let working = || world(Working).pr(Open, Some(Failing));
    let on_head = working().runs(&[("lint", HEAD, Failed), ("unit", HEAD, Passed), ("e2e", "c2", Failed)]);
    let braked = working().runs(&[("unit", "c1", Failed), ("unit", "c2", Failed), ("unit", HEAD, Failed)]);
    let commented = world(Working).pr(Open, None).comments(&[("b", false)]);
    let old = |key| reaction(1, key, Pending, 3, Some("old"));
    let cases = [
        ("ci-failed lists failed checks on the head with logs", plan(&on_head.facts(), &[]), &["lint", "lint log on c3"][..], &["unit", "e2e"][..]),
        ("ci-failed escalation names the check", plan(&braked.facts(), &[]), &["CI failed 3 runs in a row on unit", "unit log on c3"], &[]),
        ("review-comments lists author, place and body", plan(&commented.facts(), &[]), &["ana on src/lib.rs:3: fix b"], &[]),
        ("review-comments escalation says nudges ran out", plan(&commented.facts(), &[old(REVIEW_COMMENTS)]), &["3 nudges did not resolve review comments", "fix b"], &[]),
        ("timers say how long", plan_timers(&[old(AGENT_IDLE)], UnixMicros(15 * MINUTE)), &["the idle agent unresolved for 15 minutes"], &[]),
    ];
    for (rule, changes, present, absent) in cases {
        let [Change::Open { message, .. } | Change::Escalate { message, .. }] = &changes[..] else { panic!("{rule}: {changes:?}") };
        present.iter().for_each(|text| assert!(message.contains(text), "{rule}: {message}"));
        absent.iter().for_each(|text| assert!(!message.contains(text), "{rule}: {message}"));
    }
}

#[test]
fn ci_failed_message_is_cut_to_16_kib() {
    let mut failing = world(Working)
        .pr(Open, Some(Failing))
        .runs(&[("unit", HEAD, Failed)]);
    failing.checks[0].log_tail = Some("é".repeat(20 * 1024));
    let changes = plan(&failing.facts(), &[]);
    let [Change::Open { message, .. }] = &changes[..] else {
        panic!("{changes:?}")
    };
    assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
    assert!(message.ends_with(TRUNCATED));
}

#[test]
fn comment_digest_is_the_sorted_set() {
    assert_eq!(digest(&["b", "a"]), digest(&["a", "b"]));
    assert_ne!(digest(&["a"]), digest(&["a", "b"]));
    assert_ne!(digest(&["ab"]), digest(&["a", "b"]));
}

#[test]
#[rustfmt::skip]
fn timers_escalate_only_long_open_pending_nudges() {
    let at = |key, status, minutes_ago: i64| Reaction { create_time: UnixMicros(-minutes_ago * MINUTE), ..reaction(1, key, status, 1, None) };
    let cases = [
        ("merge-conflicts after 15 minutes", at(MERGE_CONFLICTS, Pending, 15), vec!["escalate 1"]),
        ("agent-idle after 20 minutes", at(AGENT_IDLE, Pending, 20), vec!["escalate 1"]),
        ("agent-idle not before 15 minutes", at(AGENT_IDLE, Pending, 14), vec![]),
        ("not when already escalated", at(AGENT_IDLE, Escalated, 60), vec![]),
        ("not other keys", at(CI_FAILED, Pending, 60), vec![]),
    ];
    for (rule, reaction, expected) in cases {
        assert_eq!(summaries(&plan_timers(&[reaction], UnixMicros(0))), expected, "{rule}");
    }
}

/// Every session field `plan` does not read, changed.
fn with_unread_fields_changed(mut session: Session) -> Session {
    session.task_id = Some(9);
    session.role = Some(crate::sessions::Role::Reviewer);
    session.issue_id = Some("ISS-9".into());
    session.termination_detail = Some("detail".into());
    session.is_alive = !session.is_alive;
    session.activity_source = Some(crate::sessions::ActivitySource::Hook);
    session.activity_time = Some(UnixMicros(7));
    session.detecting_attempts += 2;
    session.detecting_start_time = Some(UnixMicros(8));
    session.detecting_evidence_hash = Some("hash".into());
    session.detecting_last_evidence = Some("evidence".into());
    session.branch = Some("feat/x".into());
    session.workspace_path = Some("/w".into());
    session.runtime_handle_id = Some("h".into());
    session.runtime_name = Some("tmux".into());
    session.agent_session_id = Some("a".into());
    session.prompt = Some("p".into());
    session.update_time = Some(UnixMicros(9));
    session.start_time = Some(UnixMicros(10));
    session.end_time = Some(UnixMicros(11));
    session.restore_time = Some(UnixMicros(12));
    session
}

#[test]
fn fields_the_planner_does_not_read_change_no_plan() {
    for (rule, world, open, _) in rows() {
        let before = plan(&world.facts(), &open);
        let session = with_unread_fields_changed(world.session.clone());
        assert!(!session_facts_changed(&world.session, &session), "{rule}");
        let world = world.edit(|w| w.session = session);
        assert_eq!(plan(&world.facts(), &open), before, "{rule}");
    }
}

#[test]
#[rustfmt::skip]
fn session_facts_changed_names_what_the_planner_reads() {
    let base = world(Working).session;
    let edited = |edit: fn(&mut Session)| { let mut s = base.clone(); edit(&mut s); s };
    let cases: [(&str, Session, bool); 6] = [
        ("nothing", base.clone(), false),
        ("only the activity time", edited(|s| s.activity_time = Some(UnixMicros(5))), false),
        ("the state", edited(|s| s.state = Idle), true),
        ("the termination reason", edited(|s| s.termination_reason = Some(TerminationReason::RuntimeLost)), true),
        ("the activity state", edited(|s| s.activity_state = Some(ActivityState::Exited)), true),
        ("every unread field", with_unread_fields_changed(base.clone()), false),
    ];
    for (what, after, expected) in cases {
        assert_eq!(session_facts_changed(&base, &after), expected, "{what}");
    }
}
