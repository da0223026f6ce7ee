//! Gitea's deliveries follow the same rules; a report older than the
//! applied one is stale, from runners and from webhooks alike.

use super::*;

#[tokio::test]
async fn gitea_deliveries_follow_the_same_rules() {
    let server = server().await;
    let session = server
        .session_on(
            "passkey",
            "http://localhost:3000/Gitea/WebHooks.git",
            "feature/passkey",
        )
        .await;
    let opened = gitea_pull_request("open", false, "2024-06-11T15:02:40Z");
    let answer = server.deliver(&gitea("pull_request", "g-1", &opened)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let head = server.head().await;

    let fork = gitea_from_fork(
        gitea_pull_request("closed", true, "2024-06-12T00:00:00Z"),
        "mallory",
    );
    let answer = server.deliver(&gitea("pull_request", "g-2", &fork)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "{answer:?}"
    );
    let mut elsewhere = gitea_example("status.failure");
    elsewhere["repository"]["full_name"] = json!("gitea/other");
    let answer = server.deliver(&gitea("status", "g-3", &elsewhere)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (202, "ignored"),
        "{answer:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");

    let failed = gitea_example("status.failure");
    let answer = server.deliver(&gitea("status", "g-4", &failed)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let stale = server
        .deliver(&gitea("status", "g-5", &{
            let mut older = failed.clone();
            older["state"] = json!("pending");
            older["updated_at"] = json!("2024-06-11T15:00:00Z");
            older
        }))
        .await;
    assert_eq!(
        (stale.status, stale.outcome.as_str()),
        (200, "stale"),
        "{stale:?}"
    );
    assert_eq!(
        server.session(&session.id).await.display_status,
        pb::DisplayStatus::CiFailed as i32
    );

    let merged = gitea_pull_request("closed", true, "2024-06-12T00:00:00Z");
    let answer = server.deliver(&gitea("pull_request", "g-6", &merged)).await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "processed"),
        "{answer:?}"
    );
    let late = server.deliver(&gitea("pull_request", "g-7", &opened)).await;
    assert_eq!(
        (late.status, late.outcome.as_str()),
        (200, "stale"),
        "{late:?}"
    );
    let now = server.session(&session.id).await;
    assert_eq!(
        now.termination_reason,
        pb::TerminationReason::PrMerged as i32
    );
    assert_eq!(
        now.pull_request.unwrap().state,
        pb::PullRequestState::Merged as i32
    );
}

#[tokio::test]
async fn a_report_older_than_the_applied_one_is_stale_from_runners_and_webhooks() {
    let server = server().await;
    let session = server.session_on("hello", HELLO_WORLD, HELLO_BRANCH).await;
    let at = |seconds: i64| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let report = |head: &str, observed_time| pb::ReportPullRequestRequest {
        session_id: session.id.clone(),
        fetched: true,
        pull_request: Some(pb::PullRequest {
            url: "https://github.com/Codertocat/Hello-World/pull/2".into(),
            number: 2,
            state: pb::PullRequestState::Open.into(),
            head_sha: head.into(),
            branch: HELLO_BRANCH.into(),
            ..Default::default()
        }),
        observed_time,
        ..Default::default()
    };
    let other = "cccccccccccccccccccccccccccccccccccccccc";
    // 2019-05-15T15:30:00Z: after every published pull request example.
    let newest = 1_557_934_200;
    let mut sessions = server.sessions_client();
    let first = sessions
        .report_pull_request(report(HELLO_HEAD, at(newest)))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.stale);
    let head = server.head().await;
    let older = sessions
        .report_pull_request(report(other, at(newest - 60)))
        .await
        .unwrap()
        .into_inner();
    assert!(older.stale && !older.dropped, "{older:?}");
    assert_eq!(server.head().await, head, "nothing written");
    assert_eq!(
        older.session.unwrap().pull_request.unwrap().head_sha,
        HELLO_HEAD
    );

    // A webhook older than the runner's report: stale by bosun's guard.
    let opened = pull_request(HELLO_BRANCH, other, "open", false, "2019-05-15T15:20:33Z");
    let answer = server
        .deliver(&github("pull_request", "w-1", &opened))
        .await;
    assert_eq!(
        (answer.status, answer.outcome.as_str()),
        (200, "stale"),
        "{answer:?}"
    );
    assert_eq!(server.head().await, head, "nothing written");

    // A report without a time is a fresh fetch: applied.
    let fresh = sessions
        .report_pull_request(report(other, None))
        .await
        .unwrap()
        .into_inner();
    assert!(!fresh.stale);
    assert_eq!(fresh.session.unwrap().pull_request.unwrap().head_sha, other);
}
