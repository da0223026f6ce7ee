//! Activity reports and runtime probes: the detecting state, the
//! quarantine, and what a watcher sees of them.

use super::*;

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
