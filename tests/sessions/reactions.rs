//! Reactions to CI, reviews, merge conflicts and merges: nudges to the
//! agent, escalations to a person.

use super::*;

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

/// An idle report opens agent-idle and a working one clears it: each
/// report's session event comes right before its reaction's, gapless, the
/// session with its new state and the reaction with its new status (on
/// PostgreSQL one statement writes both rows).
#[tokio::test]
async fn an_activity_report_appends_its_session_event_then_its_reactions() {
    let server = TestServer::start().await;
    started(&server, "idl").await;
    let all = server.list_events(0, EventFilter::default()).await;
    let start = all.last().map_or(0, |event| event.seq);
    activity(&server, "idl-1", ActivityState::Ready).await;
    activity(&server, "idl-1", ActivityState::Active).await;

    let events = server.list_events(start, EventFilter::default()).await;
    let seen: Vec<(i64, &str, &str)> = events
        .iter()
        .map(|event| {
            let what = match &event.payload {
                Some(Payload::Session(session)) => session.state().as_str_name(),
                Some(Payload::Reaction(reaction)) => reaction.status().as_str_name(),
                _ => "other",
            };
            (event.seq - start, event.event_type.as_str(), what)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "session.updated", "SESSION_STATE_IDLE"),
            (2, "reaction.agent-idle", "REACTION_STATUS_PENDING"),
            (3, "session.updated", "SESSION_STATE_WORKING"),
            (4, "reaction.agent-idle", "REACTION_STATUS_CLEARED"),
        ]
    );
    let reaction = reactions(&server, "idl-1").await.remove(0);
    assert_eq!(reaction.status(), ReactionStatus::Cleared);
    assert!(reaction.clear_time.is_some() && reaction.nudge_count == 1);
}
