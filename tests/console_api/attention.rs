//! ListAttention: every session that needs a person, with its reasons.

use super::*;

#[tokio::test]
async fn attention_lists_every_session_that_needs_a_person_with_its_reasons() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    server
        .project("mer", |p| {
            p.origin_url = "https://github.com/acme/mer.git".into()
        })
        .await;

    let waiting = spawn(&server, "mer", "b-wait", "").await;
    start(&server, &waiting).await;
    activity(&server, &waiting, ActivityState::WaitingInput).await;

    let blocked = spawn(&server, "mer", "b-block", "").await;
    start(&server, &blocked).await;
    activity(&server, &blocked, ActivityState::Blocked).await;

    let green = spawn(&server, "mer", "b-green", "").await;
    start(&server, &green).await;
    report(
        &server,
        &green,
        pb::PullRequest {
            review_decision: ReviewDecision::Approved.into(),
            ci_state: PullRequestCiState::Passing.into(),
            mergeability: pb::Mergeability::Mergeable.into(),
            ..open_pr(3, "ready", SHA1)
        },
    )
    .await;

    // CI fails on three commits in a row: past the nudge brake.
    let failing = spawn(&server, "mer", "b-red", "").await;
    start(&server, &failing).await;
    for sha in [SHA1, SHA2, SHA3] {
        let check = pb::Check {
            name: "test".into(),
            commit_sha: sha.into(),
            status: CheckStatus::Failed.into(),
            log_tail: "assertion failed".into(),
            ..Default::default()
        };
        report(
            &server,
            &failing,
            pb::PullRequest {
                ci_state: PullRequestCiState::Failing.into(),
                checks: vec![check],
                ..open_pr(4, "red", sha)
            },
        )
        .await;
    }

    // CI failed once: the agent is nudged, no person needed yet.
    let nudged = spawn(&server, "mer", "b-nudged", "").await;
    start(&server, &nudged).await;
    report(
        &server,
        &nudged,
        pb::PullRequest {
            ci_state: PullRequestCiState::Failing.into(),
            checks: vec![pb::Check {
                name: "test".into(),
                commit_sha: SHA1.into(),
                status: CheckStatus::Failed.into(),
                ..Default::default()
            }],
            ..open_pr(5, "nudged", SHA1)
        },
    )
    .await;

    let working = spawn(&server, "mer", "b-work", "").await;
    start(&server, &working).await;

    // A task held on deploy because its merge could not be verified.
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, Stage::Deploy).await;
    server
        .pull_request(task.id, PullRequestState::Open, SHA_A)
        .await;
    server.finish_stage(task.id).await;
    let held = server.task(task.id).await;
    assert!(held.held);

    let items = server
        .sessions_client()
        .list_attention(pb::ListAttentionRequest::default())
        .await
        .expect("list attention")
        .into_inner()
        .items;
    let got: Vec<(String, Vec<AttentionReason>)> = items
        .iter()
        .map(|item| {
            let session = item.session.as_ref().unwrap();
            let reasons = item
                .reasons
                .iter()
                .map(|r| AttentionReason::try_from(*r).unwrap())
                .collect();
            (session.id.clone(), reasons)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (blocked.clone(), vec![AttentionReason::Stuck]),
            (waiting.clone(), vec![AttentionReason::NeedsInput]),
            (failing.clone(), vec![AttentionReason::CiFailed]),
            (
                held.stage_session_id.clone(),
                vec![AttentionReason::MergeHeld]
            ),
            (green.clone(), vec![AttentionReason::ApprovedAndGreen]),
        ]
    );
    assert!(!got.iter().any(|(id, _)| id == &working || id == &nudged));

    let by_id = |id: &str| {
        items
            .iter()
            .find(|item| item.session.as_ref().unwrap().id == id)
            .unwrap()
    };
    let keys =
        |id: &str| -> Vec<String> { by_id(id).reactions.iter().map(|r| r.key.clone()).collect() };
    assert_eq!(keys(&blocked), vec!["agent-stuck"]);
    assert_eq!(keys(&waiting), vec!["agent-needs-input"]);
    assert_eq!(keys(&failing), vec!["ci-failed"]);
    assert_eq!(keys(&green), vec!["approved-and-green"]);
    let merge_held = by_id(&held.stage_session_id);
    assert_eq!(merge_held.held_task_id, task.id);
    assert_eq!(merge_held.hold_detail, held.hold_detail);
    assert_eq!(
        by_id(&green).session.as_ref().unwrap().display_status,
        pb::DisplayStatus::Mergeable as i32,
        "the session comes as GetSession shows it"
    );

    // One project only.
    let shop = server
        .sessions_client()
        .list_attention(pb::ListAttentionRequest {
            project_id: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(shop.len(), 1);
    assert_eq!(shop[0].session.as_ref().unwrap().id, held.stage_session_id);

    // Answering the agent takes the session off the list.
    activity(&server, &waiting, ActivityState::Active).await;
    let after = server
        .sessions_client()
        .list_attention(pb::ListAttentionRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(
        !after
            .iter()
            .any(|item| item.session.as_ref().unwrap().id == waiting)
    );

    let status = server
        .sessions_client()
        .list_attention(pb::ListAttentionRequest {
            project_id: "Not A Project".into(),
        })
        .await
        .expect_err("bad project id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), vec!["project_id".to_string()]);
}
