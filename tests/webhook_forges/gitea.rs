//! Gitea: pull request actions, deliveries about other heads and
//! repositories, reviews, and commit statuses on the task's head only.

use super::*;

#[tokio::test]
async fn gitea_pull_request_actions_set_the_sessions_pull_request() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let deliver = |id: &'static str, body: Value| {
        let server = &server;
        async move { server.deliver(&gitea("pull_request", id, &body)).await }
    };

    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    assert_eq!(
        outcome(&deliver("g-1", opened.clone()).await),
        (200, "processed")
    );
    let pr = pull_request(&server, &session.id).await;
    assert_eq!(
        (
            pr.number,
            pr.state,
            pr.head_sha.as_str(),
            pr.branch.as_str()
        ),
        (
            3,
            pb::PullRequestState::Open as i32,
            GITEA_HEAD,
            GITEA_BRANCH
        )
    );
    assert_eq!(pr.mergeability, pb::Mergeability::Mergeable as i32);

    let edited = gitea_pr("edited", GITEA_HEAD, false, "2024-06-11T15:10:00Z");
    assert_eq!(outcome(&deliver("g-2", edited).await), (200, "processed"));
    let synced = gitea_pr("synchronized", NEXT_HEAD, false, "2024-06-11T15:20:00Z");
    assert_eq!(
        outcome(&deliver("g-3", synced.clone()).await),
        (200, "processed")
    );
    assert_eq!(pull_request(&server, &session.id).await.head_sha, NEXT_HEAD);

    // Gitea redelivers with the same X-Gitea-Delivery.
    let head = server.head().await;
    assert_eq!(outcome(&deliver("g-3", synced).await), (200, "duplicate"));
    // The opening, older than the push, arrives again (another id).
    assert_eq!(outcome(&deliver("g-4", opened).await), (200, "stale"));
    assert_eq!(server.head().await, head, "nothing written");
    assert_eq!(pull_request(&server, &session.id).await.head_sha, NEXT_HEAD);

    let closed = gitea_pr("closed", NEXT_HEAD, false, "2024-06-11T16:00:00Z");
    assert_eq!(outcome(&deliver("g-5", closed).await), (200, "processed"));
    assert_eq!(
        pull_request(&server, &session.id).await.state,
        pb::PullRequestState::Closed as i32
    );
    let reopened = gitea_pr("reopened", NEXT_HEAD, false, "2024-06-11T16:30:00Z");
    assert_eq!(outcome(&deliver("g-6", reopened).await), (200, "processed"));
    assert_eq!(
        pull_request(&server, &session.id).await.state,
        pb::PullRequestState::Open as i32
    );

    let merged = gitea_pr("closed", NEXT_HEAD, true, "2024-06-12T09:00:00Z");
    assert_eq!(outcome(&deliver("g-7", merged).await), (200, "processed"));
    let now = server.session(&session.id).await;
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
}

#[tokio::test]
async fn gitea_deliveries_about_other_heads_and_repositories_change_nothing() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    let answer = server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    assert_eq!(outcome(&answer), (200, "processed"));
    let head = server.head().await;

    // A fork's pull request on a branch of the same name, then its merge.
    for (id, action, merged) in [("g-2", "synchronized", false), ("g-3", "closed", true)] {
        let fork = gitea_from_fork(
            gitea_pr(action, NEXT_HEAD, merged, "2024-06-12T00:00:00Z"),
            "mallory",
        );
        let answer = server.deliver(&gitea("pull_request", id, &fork)).await;
        assert_eq!(outcome(&answer), (202, "ignored"), "{action}: {answer:?}");
    }
    // The same pull request number in another repository of the instance.
    let mut elsewhere = gitea_pr("closed", NEXT_HEAD, true, "2024-06-12T00:00:00Z");
    for pointer in [
        "/repository",
        "/pull_request/base/repo",
        "/pull_request/head/repo",
    ] {
        let repo = elsewhere.pointer_mut(pointer).expect("a repository");
        repo["full_name"] = json!("gitea/other");
        repo["name"] = json!("other");
        repo["id"] = json!(141);
    }
    let answer = server
        .deliver(&gitea("pull_request", "g-4", &elsewhere))
        .await;
    assert_eq!(outcome(&answer), (202, "ignored"), "{answer:?}");
    let mut status = gitea_status("success", NEXT_HEAD, "2024-06-12T00:00:00Z");
    status["repository"]["full_name"] = json!("gitea/other");
    let answer = server.deliver(&gitea("status", "g-5", &status)).await;
    assert_eq!(outcome(&answer), (202, "ignored"), "{answer:?}");

    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert_eq!(now.termination_reason, 0, "still alive");
    let pr = now.pull_request.unwrap();
    assert_eq!(
        (pr.state, pr.head_sha.as_str()),
        (pb::PullRequestState::Open as i32, GITEA_HEAD)
    );
}

#[tokio::test]
async fn gitea_reviews_set_the_decision_and_keep_what_they_do_not_carry() {
    let server = server().await;
    let session = server
        .session_on("passkey", GITEA_ORIGIN, GITEA_BRANCH)
        .await;
    let opened = gitea_pr("opened", GITEA_HEAD, false, "2024-06-11T15:02:40Z");
    server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    let cases = [
        (
            "pull_request_rejected",
            "2024-06-11T15:30:00Z",
            pb::ReviewDecision::ChangesRequested,
        ),
        (
            "pull_request_comment",
            "2024-06-11T15:40:00Z",
            pb::ReviewDecision::ChangesRequested,
        ),
        (
            "pull_request_approved",
            "2024-06-11T15:50:00Z",
            pb::ReviewDecision::Approved,
        ),
    ];
    for (n, (event, at, decision)) in cases.into_iter().enumerate() {
        let mut review = gitea_review(event, at);
        // Gitea's review payloads carry the pull request without a
        // computed mergeability: it must not erase the known one.
        review["pull_request"]["mergeable"] = json!(false);
        let answer = server
            .deliver(&gitea(event, &format!("r-{n}"), &review))
            .await;
        assert_eq!(outcome(&answer), (200, "processed"), "{event}: {answer:?}");
        let pr = pull_request(&server, &session.id).await;
        assert_eq!(pr.review_decision, decision as i32, "{event}");
        assert_eq!(
            pr.mergeability,
            pb::Mergeability::Mergeable as i32,
            "{event} keeps the mergeability"
        );
    }
}

/// Project "passkey" on Gitea and a task on the PR branch, in development
/// with its pull request's head at GITEA_HEAD.
async fn gitea_task(server: &TestServer, origin: &str) -> pb::Task {
    server
        .task_on_head(
            "passkey",
            origin,
            ("issue-3", "PASS-3"),
            GITEA_BRANCH,
            GITEA_HEAD,
        )
        .await
}

#[tokio::test]
async fn gitea_statuses_reach_the_task_on_its_head_only() {
    let server = server().await;
    // The operator spelled the repository another way.
    let task = gitea_task(&server, "http://localhost:3000/Gitea/WebHooks.git").await;
    let deliver = |id: &'static str, body: Value| {
        let server = &server;
        async move { server.deliver(&gitea("status", id, &body)).await }
    };

    // A status on a commit that is not the task's head: history only.
    let other = gitea_status("success", NEXT_HEAD, "2024-06-11T15:03:00Z");
    deliver("s-1", other).await;
    assert_eq!(server.task(task.id).await.head_sha, GITEA_HEAD);
    let facts = common::pipeline::facts(&server, task.id).await;
    assert!(
        facts.ci_statuses.iter().all(|s| s.sha != GITEA_HEAD),
        "{:?}",
        facts.ci_statuses
    );

    let pending = gitea_status("pending", GITEA_HEAD, "2024-06-11T15:04:00Z");
    assert_eq!(outcome(&deliver("s-2", pending).await), (200, "processed"));
    // A partial status: no commit object, no sender, no link.
    let mut success = gitea_status("success", GITEA_HEAD, "2024-06-11T15:09:00Z");
    success["commit"] = Value::Null;
    success["sender"] = Value::Null;
    success["target_url"] = json!("");
    success["description"] = json!("");
    assert_eq!(
        outcome(&deliver("s-3", success.clone()).await),
        (200, "processed")
    );
    // Redelivered, and the older pending one again with another id.
    let head = server.head().await;
    assert_eq!(outcome(&deliver("s-3", success).await), (200, "duplicate"));
    let late = gitea_status("pending", GITEA_HEAD, "2024-06-11T15:04:00Z");
    assert_eq!(outcome(&deliver("s-4", late).await), (200, "stale"));
    assert_eq!(server.head().await, head, "nothing written");

    let facts = common::pipeline::facts(&server, task.id).await;
    let on_head: Vec<_> = facts
        .ci_statuses
        .iter()
        .filter(|s| s.sha == GITEA_HEAD)
        .collect();
    assert_eq!(on_head.len(), 1, "{on_head:?}");
    assert_eq!(on_head[0].state, pb::CiStatusState::Success as i32);
    assert_eq!(on_head[0].repo, "gitea/webhooks", "one repository identity");
    assert_eq!(facts.head_sha, GITEA_HEAD);
}
