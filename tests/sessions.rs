//! Sessions (SPEC §6) through the real server: the seed's five end-to-end
//! stories, then the rules around them.

mod common;

use bosun::pb::{
    self, ActivityState, Check, CheckStatus, Comment, DisplayStatus, EventFilter, Harness,
    ProcessProbeResult, Project, PullRequest, PullRequestCiState, PullRequestState, ReactionStatus,
    ReactionTarget, ReviewDecision, RuntimeProbeResult, SessionState, TerminationReason,
    WatchRequest, event::Payload,
};
use bosun::storage::sql::query;
use common::{TestServer, assert_error, bad_fields};
use futures::future::join_all;
use tonic::Code;

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

async fn register(server: &TestServer, id: &str) -> Project {
    let project = Project {
        id: id.into(),
        origin_url: format!("https://github.com/acme/{id}.git"),
        ..Project::default()
    };
    server
        .sessions_client()
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(project),
        })
        .await
        .expect("register")
        .into_inner()
}

async fn spawn(server: &TestServer, project: &str) -> pb::Session {
    server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: project.into(),
            harness: Harness::ClaudeCode.into(),
            branch: "feature/ORCH-1".into(),
            prompt: "fix the flaky test".into(),
            ..Default::default()
        })
        .await
        .expect("spawn")
        .into_inner()
}

async fn complete(server: &TestServer, id: &str) -> pb::Session {
    server
        .sessions_client()
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: id.into(),
            runtime_handle_id: "tmux:%3".into(),
            runtime_name: "tmux".into(),
            workspace_path: "/work/mer-1".into(),
            agent_session_id: "claude-abc".into(),
            ..Default::default()
        })
        .await
        .expect("complete spawn")
        .into_inner()
}

/// A started session in a fresh project.
async fn started(server: &TestServer, project: &str) -> pb::Session {
    register(server, project).await;
    let session = spawn(server, project).await;
    complete(server, &session.id).await
}

fn check(name: &str, sha: &str, status: CheckStatus, log_tail: &str) -> Check {
    Check {
        name: name.into(),
        commit_sha: sha.into(),
        status: status.into(),
        log_tail: log_tail.into(),
        ..Check::default()
    }
}

fn pull_request(
    head: &str,
    ci: PullRequestCiState,
    review: ReviewDecision,
    checks: Vec<Check>,
) -> PullRequest {
    PullRequest {
        url: "https://github.com/acme/mer/pull/7".into(),
        number: 7,
        state: PullRequestState::Open.into(),
        review_decision: review.into(),
        ci_state: ci.into(),
        head_sha: head.into(),
        branch: "feature/ORCH-1".into(),
        checks,
        ..PullRequest::default()
    }
}

async fn report(server: &TestServer, session: &str, pull_request: PullRequest) -> pb::Session {
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: session.into(),
            fetched: true,
            pull_request: Some(pull_request),
            ..Default::default()
        })
        .await
        .expect("report pull request")
        .into_inner()
        .session
        .unwrap()
}

async fn probe(
    server: &TestServer,
    session: &str,
    runtime: RuntimeProbeResult,
    process: ProcessProbeResult,
    evidence: &str,
) -> pb::Session {
    server
        .sessions_client()
        .report_runtime_probe(pb::ReportRuntimeProbeRequest {
            session_id: session.into(),
            runtime: runtime.into(),
            process: process.into(),
            evidence: evidence.into(),
            ..Default::default()
        })
        .await
        .expect("probe")
        .into_inner()
}

async fn activity(server: &TestServer, session: &str, state: ActivityState) -> pb::Session {
    server
        .sessions_client()
        .report_activity(pb::ReportActivityRequest {
            session_id: session.into(),
            state: state.into(),
            ..Default::default()
        })
        .await
        .expect("activity")
        .into_inner()
}

async fn get(server: &TestServer, session: &str) -> pb::Session {
    server
        .sessions_client()
        .get_session(pb::GetSessionRequest {
            session_id: session.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn reactions(server: &TestServer, session: &str) -> Vec<pb::Reaction> {
    server
        .sessions_client()
        .list_reactions(pb::ListReactionsRequest {
            session_id: session.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reactions
}

fn open_reaction<'a>(reactions: &'a [pb::Reaction], key: &str) -> Option<&'a pb::Reaction> {
    reactions
        .iter()
        .find(|r| r.key == key && r.status() != ReactionStatus::Cleared)
}

async fn event_types(server: &TestServer, session: &str) -> Vec<String> {
    let filter = EventFilter {
        session_id: session.into(),
        ..Default::default()
    };
    server
        .list_events(0, filter)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[tokio::test]
async fn story_happy_path_spawn_pr_open_with_ci_passing_then_kill() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let spawned = spawn(&server, "mer").await;
    assert_eq!(spawned.id, "mer-1");
    assert_eq!(
        (spawned.state(), spawned.display_status()),
        (SessionState::NotStarted, DisplayStatus::Spawning)
    );
    assert!(!spawned.is_alive);

    let working = complete(&server, "mer-1").await;
    assert_eq!(
        (working.state(), working.is_alive),
        (SessionState::Working, true)
    );
    assert_eq!(
        (
            working.runtime_handle_id.as_str(),
            working.agent_session_id.as_str()
        ),
        ("tmux:%3", "claude-abc")
    );
    assert!(working.start_time.is_some());

    let checks = vec![
        check("build", SHA1, CheckStatus::Passed, ""),
        check("test", SHA1, CheckStatus::Passed, ""),
    ];
    let with_pr = report(
        &server,
        "mer-1",
        pull_request(
            SHA1,
            PullRequestCiState::Passing,
            ReviewDecision::ReviewRequired,
            checks,
        ),
    )
    .await;
    assert_eq!(with_pr.display_status(), DisplayStatus::ReviewPending);
    let pr = with_pr.pull_request.unwrap();
    assert_eq!(
        (pr.number, pr.checks.len()),
        (7, 2),
        "PR row and its checks written together"
    );

    let killed = server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!killed.already_terminal);
    let session = killed.session.unwrap();
    assert_eq!(
        (session.state(), session.termination_reason()),
        (SessionState::Terminated, TerminationReason::ManuallyKilled)
    );
    assert_eq!(
        (session.is_alive, session.display_status()),
        (false, DisplayStatus::Killed)
    );
    assert!(session.end_time.is_some());

    let types = event_types(&server, "mer-1").await;
    for expected in [
        "session.created",
        "session.updated",
        "pull_request.created",
        "check.recorded",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} in {types:?}"
        );
    }
    assert_eq!(
        types.last().map(String::as_str),
        Some("session.updated"),
        "the kill is the last change"
    );

    // Killing again changes nothing and says so.
    let again = server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_terminal);
    assert_eq!(event_types(&server, "mer-1").await, types, "no new event");
}

#[tokio::test]
async fn story_restore_after_a_full_stop_and_start_keeps_the_metadata() {
    let mut server = TestServer::start().await;
    started(&server, "mer").await;
    server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            reason: TerminationReason::RuntimeLost.into(),
            detail: "host rebooted".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    server.restart().await;

    let restored = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.state(), SessionState::NotStarted);
    assert_eq!(
        restored.termination_reason(),
        TerminationReason::Unspecified
    );
    assert!(
        restored.termination_detail.is_empty()
            && restored.end_time.is_none()
            && restored.restore_time.is_some()
    );
    for (field, value, expected) in [
        ("agent_session_id", &restored.agent_session_id, "claude-abc"),
        ("workspace_path", &restored.workspace_path, "/work/mer-1"),
        ("branch", &restored.branch, "feature/ORCH-1"),
        ("prompt", &restored.prompt, "fix the flaky test"),
        ("runtime_handle_id", &restored.runtime_handle_id, "tmux:%3"),
    ] {
        assert_eq!(value, expected, "{field} survives the restart");
    }
    assert_eq!(
        complete(&server, "mer-1").await.state(),
        SessionState::Working,
        "a runner relaunches it"
    );

    // Restore only leaves terminal states.
    let status = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_TERMINAL");
}

#[tokio::test]
async fn restore_needs_an_agent_session_id_or_a_prompt() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let bare = server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: Harness::Codex.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    server
        .sessions_client()
        .fail_spawn(pb::FailSpawnRequest {
            session_id: bare.id.clone(),
            error: "no tmux".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = server
        .sessions_client()
        .restore_session(pb::RestoreSessionRequest {
            session_id: bare.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_RESTORABLE");
    let failed = get(&server, &bare.id).await;
    assert_eq!(
        (
            failed.termination_reason(),
            failed.termination_detail.as_str()
        ),
        (TerminationReason::ErrorInProcess, "no tmux")
    );
    assert_eq!(failed.display_status(), DisplayStatus::Errored);
}

#[tokio::test]
async fn story_ci_failure_nudges_with_the_log_tail_then_green_clears_and_approved_notifies() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    let failing = vec![
        check("build", SHA1, CheckStatus::Passed, ""),
        check(
            "test",
            SHA1,
            CheckStatus::Failed,
            "assertion failed: left == right\n  left: 3\n right: 4",
        ),
    ];
    let session = report(
        &server,
        "mer-1",
        pull_request(
            SHA1,
            PullRequestCiState::Failing,
            ReviewDecision::ReviewRequired,
            failing,
        ),
    )
    .await;
    assert_eq!(session.display_status(), DisplayStatus::CiFailed);
    let all = reactions(&server, "mer-1").await;
    let nudge = open_reaction(&all, "ci-failed").expect("a ci-failed nudge");
    assert_eq!(
        (nudge.target(), nudge.status(), nudge.nudge_count),
        (ReactionTarget::Agent, ReactionStatus::Pending, 1)
    );
    assert!(
        nudge.message.contains("left: 3"),
        "the log tail is in the nudge: {}",
        nudge.message
    );
    assert_eq!(nudge.dedup_key, SHA1);

    // The same failing commit reported again: no second nudge.
    let failing = vec![check(
        "test",
        SHA1,
        CheckStatus::Failed,
        "assertion failed: left == right\n  left: 3\n right: 4",
    )];
    report(
        &server,
        "mer-1",
        pull_request(
            SHA1,
            PullRequestCiState::Failing,
            ReviewDecision::ReviewRequired,
            failing,
        ),
    )
    .await;
    let again = reactions(&server, "mer-1").await;
    assert_eq!(
        open_reaction(&again, "ci-failed").unwrap().nudge_count,
        1,
        "deduplicated per failing commit"
    );

    // Green and approved: the nudge clears, a person is told it can merge.
    let green = vec![
        check("build", SHA2, CheckStatus::Passed, ""),
        check("test", SHA2, CheckStatus::Passed, ""),
    ];
    let session = report(
        &server,
        "mer-1",
        pull_request(
            SHA2,
            PullRequestCiState::Passing,
            ReviewDecision::Approved,
            green,
        ),
    )
    .await;
    assert_eq!(session.display_status(), DisplayStatus::Approved);
    let after = reactions(&server, "mer-1").await;
    assert!(
        open_reaction(&after, "ci-failed").is_none(),
        "green CI clears the nudge"
    );
    assert!(after.iter().any(|r| r.key == "ci-failed"
        && r.status() == ReactionStatus::Cleared
        && r.clear_time.is_some()));
    let notice = open_reaction(&after, "approved-and-green").expect("approved-and-green notice");
    assert_eq!(notice.target(), ReactionTarget::Human);

    let types = event_types(&server, "mer-1").await;
    assert!(
        types.iter().filter(|t| *t == "reaction.ci-failed").count() >= 2,
        "opened and cleared: {types:?}"
    );
    assert!(types.iter().any(|t| t == "reaction.approved-and-green"));
}

#[tokio::test]
async fn ci_failing_three_runs_in_a_row_escalates_to_a_person() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    for sha in ["a".repeat(40), "b".repeat(40), "c".repeat(40)] {
        let checks = vec![check("test", &sha, CheckStatus::Failed, "boom")];
        report(
            &server,
            "mer-1",
            pull_request(
                &sha,
                PullRequestCiState::Failing,
                ReviewDecision::ReviewRequired,
                checks,
            ),
        )
        .await;
    }
    let all = reactions(&server, "mer-1").await;
    let reaction = open_reaction(&all, "ci-failed").unwrap();
    assert_eq!(
        (reaction.status(), reaction.target()),
        (ReactionStatus::Escalated, ReactionTarget::Human)
    );
    assert_eq!(reaction.priority(), pb::ReactionPriority::Urgent);
}

#[tokio::test]
async fn story_detecting_memory_survives_a_restart_and_clears_on_a_healthy_probe() {
    let mut server = TestServer::start().await;
    started(&server, "mer").await;
    let first = probe(
        &server,
        "mer-1",
        RuntimeProbeResult::Dead,
        ProcessProbeResult::Unknown,
        "pane %3 gone at 2026-11-21T01:00:00Z",
    )
    .await;
    assert_eq!(first.state(), SessionState::Detecting);
    let memory = first.detecting.clone().unwrap();
    assert_eq!(memory.attempts, 1);

    server.restart().await;
    let second = probe(
        &server,
        "mer-1",
        RuntimeProbeResult::Dead,
        ProcessProbeResult::Unknown,
        "pane %3 gone at 2026-11-21T01:00:30Z",
    )
    .await;
    let after = second.detecting.clone().unwrap();
    assert_eq!(
        after.attempts, 2,
        "same evidence (timestamps aside) counts on after a restart"
    );
    assert_eq!(
        (after.start_time, after.evidence_hash),
        (memory.start_time, memory.evidence_hash)
    );

    let healthy = probe(
        &server,
        "mer-1",
        RuntimeProbeResult::Alive,
        ProcessProbeResult::Alive,
        "",
    )
    .await;
    assert_eq!(healthy.state(), SessionState::Working);
    assert!(
        healthy.detecting.is_none(),
        "a healthy probe clears the memory"
    );
    assert!(healthy.is_alive);
}

#[tokio::test]
async fn the_quarantine_escalates_to_stuck_and_a_dead_runtime_terminates() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            probe(
                &server,
                "mer-1",
                RuntimeProbeResult::ProbeFailed,
                ProcessProbeResult::Unknown,
                "timeout",
            )
            .await,
        );
    }
    let stuck = last.unwrap();
    assert_eq!(
        (stuck.state(), stuck.is_alive),
        (SessionState::Stuck, true),
        "3 attempts escalate, still alive"
    );
    let all = reactions(&server, "mer-1").await;
    assert!(
        open_reaction(&all, "agent-stuck").is_some(),
        "a person is told"
    );

    started(&server, "two").await;
    let dead = probe(
        &server,
        "two-1",
        RuntimeProbeResult::Dead,
        ProcessProbeResult::Dead,
        "",
    )
    .await;
    assert_eq!(
        (dead.state(), dead.termination_reason()),
        (SessionState::Terminated, TerminationReason::RuntimeLost)
    );
    assert!(!dead.is_alive);
}

#[tokio::test]
async fn activity_signals_set_the_state_and_exited_changes_none() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    for (signal, state, display) in [
        (
            ActivityState::Ready,
            SessionState::Idle,
            DisplayStatus::Idle,
        ),
        (
            ActivityState::WaitingInput,
            SessionState::NeedsInput,
            DisplayStatus::NeedsInput,
        ),
        (
            ActivityState::Blocked,
            SessionState::Stuck,
            DisplayStatus::Stuck,
        ),
        (ActivityState::Idle, SessionState::Idle, DisplayStatus::Idle),
        (
            ActivityState::Active,
            SessionState::Working,
            DisplayStatus::Working,
        ),
        (
            ActivityState::Exited,
            SessionState::Working,
            DisplayStatus::Working,
        ),
    ] {
        let session = activity(&server, "mer-1", signal).await;
        assert_eq!(
            (session.state(), session.display_status()),
            (state, display),
            "{signal:?}"
        );
        assert_eq!(session.activity.unwrap().state(), signal);
    }
    let all = reactions(&server, "mer-1").await;
    assert!(
        open_reaction(&all, "agent-exited").is_some(),
        "an exited agent is a notice"
    );
}

#[tokio::test]
async fn story_a_watcher_receives_every_stage_in_order() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let filter = EventFilter {
        project_id: "mer".into(),
        ..Default::default()
    };
    let mut stream = server
        .events()
        .watch(WatchRequest {
            after_seq: 0,
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner();
    spawn(&server, "mer").await;
    complete(&server, "mer-1").await;
    let failing = vec![check("test", SHA1, CheckStatus::Failed, "boom")];
    report(
        &server,
        "mer-1",
        pull_request(
            SHA1,
            PullRequestCiState::Failing,
            ReviewDecision::ReviewRequired,
            failing,
        ),
    )
    .await;
    server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut events = Vec::new();
    while !events.iter().any(|e: &pb::Event| matches!(&e.payload, Some(Payload::Session(s)) if s.state() == SessionState::Terminated)) {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message()).await.unwrap().unwrap().unwrap();
        events.extend(message.events);
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let position = |t: &str| {
        types
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} missing from {types:?}"))
    };
    assert!(position("project.created") < position("session.created"));
    assert!(position("session.created") < position("pull_request.created"));
    assert!(position("pull_request.created") < position("reaction.ci-failed"));
    assert!(
        events.iter().all(|e| e.payload.is_some()),
        "typed payloads for every kind"
    );
}

#[tokio::test]
async fn concurrent_spawns_get_distinct_numbers() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    register(&server, "two").await;
    let spawns = (0..20).map(|i| spawn(&server, if i % 4 == 0 { "two" } else { "mer" }));
    let mut ids: Vec<String> = join_all(spawns).await.into_iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let mut mer: Vec<u32> = ids
        .iter()
        .filter_map(|id| id.strip_prefix("mer-"))
        .map(|n| n.parse().unwrap())
        .collect();
    mer.sort();
    assert_eq!(
        mer,
        (1..=15).collect::<Vec<_>>(),
        "numbers count up per project"
    );
}

#[tokio::test]
async fn a_merged_pull_request_terminates_the_session_and_fetch_failures_are_dropped() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    let dropped = server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: "mer-1".into(),
            fetched: false,
            pull_request: Some(PullRequest {
                state: PullRequestState::Closed.into(),
                ..PullRequest::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(dropped.dropped);
    assert!(
        dropped.session.unwrap().pull_request.is_none(),
        "a failed fetch writes nothing"
    );

    let mut merged = pull_request(
        SHA1,
        PullRequestCiState::Passing,
        ReviewDecision::Approved,
        vec![],
    );
    merged.state = PullRequestState::Merged.into();
    // Named by repository and branch, as the webhook shim does.
    let session = server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            repo: "acme/mer".into(),
            fetched: true,
            pull_request: Some(merged),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(session.id, "mer-1");
    assert_eq!(
        (session.state(), session.termination_reason()),
        (SessionState::Terminated, TerminationReason::PrMerged)
    );
    assert_eq!(session.display_status(), DisplayStatus::Cleanup);
    let all = reactions(&server, "mer-1").await;
    assert!(open_reaction(&all, "pr-merged").is_some());
}

#[tokio::test]
async fn review_comments_nudge_per_comment_set_then_escalate() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    let comment = |id: &str| Comment {
        id: id.into(),
        author: "ana".into(),
        body: format!("please fix {id}"),
        ..Comment::default()
    };
    let with_comments = |ids: &[&str]| PullRequest {
        comments: ids.iter().map(|id| comment(id)).collect(),
        ..pull_request(
            SHA1,
            PullRequestCiState::Passing,
            ReviewDecision::ChangesRequested,
            vec![],
        )
    };
    let session = report(&server, "mer-1", with_comments(&["c1"])).await;
    assert_eq!(session.display_status(), DisplayStatus::ChangesRequested);
    report(&server, "mer-1", with_comments(&["c1"])).await;
    assert_eq!(
        open_reaction(&reactions(&server, "mer-1").await, "review-comments")
            .unwrap()
            .nudge_count,
        1
    );
    report(&server, "mer-1", with_comments(&["c1", "c2"])).await;
    report(&server, "mer-1", with_comments(&["c2", "c3"])).await;
    let nudged = reactions(&server, "mer-1").await;
    let reaction = open_reaction(&nudged, "review-comments").unwrap();
    assert_eq!(
        (reaction.nudge_count, reaction.status()),
        (3, ReactionStatus::Pending)
    );
    assert!(reaction.message.contains("please fix c3"));
    report(&server, "mer-1", with_comments(&["c4"])).await;
    let escalated = reactions(&server, "mer-1").await;
    assert_eq!(
        open_reaction(&escalated, "review-comments")
            .unwrap()
            .status(),
        ReactionStatus::Escalated,
        "after 3 nudges"
    );
}

#[tokio::test]
async fn merge_conflicts_escalate_after_fifteen_minutes() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    let mut conflicting = pull_request(
        SHA1,
        PullRequestCiState::Passing,
        ReviewDecision::ReviewRequired,
        vec![],
    );
    conflicting.mergeability = pb::Mergeability::Conflicting.into();
    report(&server, "mer-1", conflicting).await;
    assert_eq!(
        server.sessions.escalate_due().await.unwrap(),
        0,
        "not yet due"
    );
    // Sixteen minutes pass.
    let mut db = server.direct().await;
    query(
        "UPDATE reactions SET create_time = create_time - 960000000 WHERE key = 'merge-conflicts'",
    )
    .execute(&mut db.conn())
    .await
    .unwrap();
    assert_eq!(server.sessions.escalate_due().await.unwrap(), 1);
    let all = reactions(&server, "mer-1").await;
    assert_eq!(
        open_reaction(&all, "merge-conflicts").unwrap().status(),
        ReactionStatus::Escalated
    );
}

#[tokio::test]
async fn list_sessions_filters_by_stored_and_derived_fields() {
    let server = TestServer::start().await;
    started(&server, "mer").await;
    spawn(&server, "mer").await;
    started(&server, "two").await;
    activity(&server, "two-1", ActivityState::WaitingInput).await;
    let list = |request: pb::ListSessionsRequest| {
        let mut client = server.sessions_client();
        async move {
            let mut ids: Vec<String> = client
                .list_sessions(request)
                .await
                .unwrap()
                .into_inner()
                .sessions
                .into_iter()
                .map(|s| s.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(Default::default()).await, ["mer-1", "mer-2", "two-1"]);
    assert_eq!(
        list(pb::ListSessionsRequest {
            project_id: "mer".into(),
            ..Default::default()
        })
        .await,
        ["mer-1", "mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            state: SessionState::NotStarted.into(),
            ..Default::default()
        })
        .await,
        ["mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            is_alive: Some(true),
            ..Default::default()
        })
        .await,
        ["mer-1", "two-1"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            is_alive: Some(false),
            ..Default::default()
        })
        .await,
        ["mer-2"]
    );
    assert_eq!(
        list(pb::ListSessionsRequest {
            display_status: DisplayStatus::NeedsInput.into(),
            ..Default::default()
        })
        .await,
        ["two-1"]
    );
    let page = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.sessions
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["two-1", "mer-2"],
        "newest first"
    );
    let rest = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rest.sessions
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["mer-1"]
    );
    assert!(rest.next_page_token.is_empty());

    // Walking the pages, with or without a display-status filter (applied
    // after reading, a page's worth of rows at a time), gives every
    // session of the single answer once, in order.
    let mut client = server.sessions_client();
    let mut statuses: Vec<i32> = client
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions
        .iter()
        .map(|s| s.display_status)
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    for display_status in std::iter::once(DisplayStatus::Unspecified as i32).chain(statuses) {
        let request = pb::ListSessionsRequest {
            display_status,
            ..Default::default()
        };
        let whole: Vec<String> = client
            .list_sessions(request.clone())
            .await
            .unwrap()
            .into_inner()
            .sessions
            .into_iter()
            .map(|s| s.id)
            .collect();
        for page_size in 1..=3 {
            let (mut walked, mut token) = (Vec::new(), String::new());
            loop {
                let page = client
                    .list_sessions(pb::ListSessionsRequest {
                        page_size,
                        page_token: token,
                        ..request.clone()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(page.sessions.len() <= page_size as usize);
                walked.extend(page.sessions.into_iter().map(|s| s.id));
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            assert_eq!(walked, whole, "{display_status:?}, pages of {page_size}");
        }
    }
}

#[tokio::test]
async fn unknown_ids_bad_enums_and_wrong_states_are_refused_cleanly() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let mut client = server.sessions_client();
    let status = client
        .get_session(pb::GetSessionRequest {
            session_id: "mer-99".into(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "SESSION_NOT_FOUND");
    let status = client
        .kill_session(pb::KillSessionRequest {
            session_id: "nope-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "SESSION_NOT_FOUND");
    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "ghost".into(),
            harness: Harness::Aider.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "PROJECT_NOT_FOUND");

    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: 99,
            role: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["role", "harness"]);
    let status = client
        .report_activity(pb::ReportActivityRequest {
            session_id: "mer-1".into(),
            state: 77,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["state"]);
    let status = client
        .report_runtime_probe(pb::ReportRuntimeProbeRequest {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["runtime", "process"]);

    let session = spawn(&server, "mer").await;
    let status = client
        .report_activity(pb::ReportActivityRequest {
            session_id: session.id.clone(),
            state: ActivityState::Active.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_STARTED");
    complete(&server, &session.id).await;
    let status = client
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: session.id.clone(),
            runtime_handle_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "SESSION_NOT_SPAWNING");
    let status = client
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(Project {
                id: "mer".into(),
                repo_path: "/r".into(),
                ..Project::default()
            }),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "PROJECT_ALREADY_EXISTS");
}

#[tokio::test]
async fn projects_register_update_archive_and_list() {
    let server = TestServer::start().await;
    let mut client = server.sessions_client();
    let status = client
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(Project {
                id: "Bad_Id".into(),
                repo_path: "relative".into(),
                coverage_threshold: 101.0,
                ..Project::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "project.id",
            "project.repo_path",
            "project.coverage_threshold"
        ]
    );
    let project = register(&server, "mer").await;
    assert_eq!(project.display_name, "mer", "defaults to the id");
    register(&server, "alpha").await;

    let updated = client
        .update_project(pb::UpdateProjectRequest {
            project: Some(Project {
                id: "mer".into(),
                coverage_threshold: 80.0,
                display_name: "Merchant".into(),
                ..Project::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["coverage_threshold".into(), "display_name".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.coverage_threshold, updated.display_name.as_str()),
        (80.0, "Merchant")
    );
    assert!(updated.update_time.is_some());

    let archived = client
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "mer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archive_time.is_some());
    let status = client
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "mer".into(),
            harness: Harness::Other.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "PROJECT_ARCHIVED");
    let active: Vec<String> = client
        .list_projects(pb::ListProjectsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(active, ["alpha"]);
    let first = client
        .list_projects(pb::ListProjectsRequest {
            include_archived: true,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.projects[0].id, "alpha");
    let second = client
        .list_projects(pb::ListProjectsRequest {
            include_archived: true,
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.projects[0].id, "mer");
    assert!(second.next_page_token.is_empty());
}

#[tokio::test]
async fn a_repeated_request_id_spawns_once() {
    let server = TestServer::start().await;
    register(&server, "mer").await;
    let request = pb::SpawnSessionRequest {
        request_id: "runner-1:spawn".into(),
        project_id: "mer".into(),
        harness: Harness::ClaudeCode.into(),
        ..Default::default()
    };
    let spawned = join_all((0..5).map(|_| {
        let mut client = server.sessions_client();
        let request = request.clone();
        async move { client.spawn_session(request).await.unwrap().into_inner() }
    }))
    .await;
    assert!(
        spawned.iter().all(|s| s.id == "mer-1"),
        "one session for one request id"
    );
    let listed = server
        .sessions_client()
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 1);
}
