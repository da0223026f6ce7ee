//! Pull requests: one from a fork never reaches the agent's session, a
//! review keeps the mergeability it does not carry, another spelling of the
//! repository reaches the session, and a delivery older than the merge
//! changes nothing.

use super::*;

#[tokio::test]
async fn a_pull_request_from_a_fork_never_reaches_the_agents_session() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let ours = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "open",
        false,
        "2019-05-15T15:20:33Z",
    );
    let answer = server.deliver(&github("pull_request", "f-1", &ours)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let head = server.head().await;

    let fork_head = "abababababababababababababababababababab";
    let deliveries = [
        (
            "pull_request",
            from_fork(
                pull_request(
                    HELLO_BRANCH,
                    fork_head,
                    "open",
                    false,
                    "2019-05-16T00:00:00Z",
                ),
                "mallory",
            ),
        ),
        (
            "pull_request",
            from_fork(
                pull_request(
                    HELLO_BRANCH,
                    fork_head,
                    "closed",
                    true,
                    "2019-05-17T00:00:00Z",
                ),
                "mallory",
            ),
        ),
        (
            "check_run",
            from_fork(
                check_run("check_run.completed.failure", HELLO_BRANCH, fork_head),
                "mallory",
            ),
        ),
    ];
    for (i, (event, body)) in deliveries.iter().enumerate() {
        let answer = server
            .deliver(&github(event, &format!("f-{}", i + 2), body))
            .await;
        assert_eq!(
            (answer.status, answer.outcome.as_str()),
            (202, "ignored"),
            "{event}"
        );
        assert!(answer.detail.contains("fork"), "{answer:?}");
    }
    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert!(now.termination_reason == pb::TerminationReason::Unspecified as i32);
    assert_eq!(now.pull_request.unwrap().head_sha, HELLO_HEAD);
}

#[tokio::test]
async fn a_review_keeps_the_mergeability_it_does_not_carry() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let conflicting = mergeable(
        pull_request(
            HELLO_BRANCH,
            HELLO_HEAD,
            "open",
            false,
            "2019-05-15T15:20:33Z",
        ),
        false,
        "dirty",
    );
    let answer = server
        .deliver(&github("pull_request", "m-1", &conflicting))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let before = server.session(&session.id).await;
    assert_eq!(
        before.pull_request.as_ref().unwrap().mergeability,
        pb::Mergeability::Conflicting as i32
    );
    let pending = |reactions: &[pb::Reaction]| {
        reactions
            .iter()
            .filter(|r| r.status == pb::ReactionStatus::Pending as i32)
            .count()
    };
    assert_eq!(
        pending(&server.reactions(&session.id, "merge-conflicts").await),
        1
    );

    for (i, state) in ["commented", "approved"].iter().enumerate() {
        let mut review = example("pull_request_review.submitted");
        review["review"]["state"] = json!(state);
        let answer = server
            .deliver(&github(
                "pull_request_review",
                &format!("m-{}", i + 2),
                &review,
            ))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let after = server.session(&session.id).await;
        let pr = after.pull_request.unwrap();
        assert_eq!(
            pr.mergeability,
            pb::Mergeability::Conflicting as i32,
            "{state}"
        );
        assert_eq!(
            pending(&server.reactions(&session.id, "merge-conflicts").await),
            1,
            "{state}"
        );
        if *state == "commented" {
            assert_eq!(after.display_status, before.display_status);
        } else {
            assert_eq!(pr.review_decision, pb::ReviewDecision::Approved as i32);
        }
    }
}

#[tokio::test]
async fn another_spelling_of_the_repository_reaches_the_session() {
    let server = server().await;
    let session = server
        .session_on(
            "hello",
            "git@github.com:CODERTOCAT/hello-world.git",
            HELLO_BRANCH,
        )
        .await;
    let body = on_repo(
        pull_request(
            HELLO_BRANCH,
            HELLO_HEAD,
            "open",
            false,
            "2019-05-15T15:20:33Z",
        ),
        "codertocat/HELLO-world",
    );
    let answer = server.deliver(&github("pull_request", "r-1", &body)).await;
    assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    let pr = server.session(&session.id).await.pull_request.unwrap();
    assert_eq!((pr.number, pr.head_sha.as_str()), (2, HELLO_HEAD));
}

#[tokio::test]
async fn a_pull_request_delivery_older_than_the_merge_changes_nothing() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let opened = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "open",
        false,
        "2019-05-15T15:20:33Z",
    );
    let merged = pull_request(
        HELLO_BRANCH,
        HELLO_HEAD,
        "closed",
        true,
        "2019-05-15T15:22:00Z",
    );
    for (id, body) in [("p-1", &opened), ("p-2", &merged)] {
        let answer = server.deliver(&github("pull_request", id, body)).await;
        assert_eq!((answer.status, answer.outcome.as_str()), (200, "processed"));
    }
    let head = server.head().await;
    let late = server
        .deliver(&github("pull_request", "p-3", &opened))
        .await;
    assert_eq!(
        (late.status, late.outcome.as_str()),
        (200, "stale"),
        "{late:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");
    let now = server.session(&session.id).await;
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
    assert!(
        server
            .reactions(&session.id, "approved-and-green")
            .await
            .is_empty()
    );
}
