//! ListSessions: found by pull request number, branch, issue id and
//! search; bad filters name their field; ordered by latest activity.

use super::*;

#[tokio::test]
async fn sessions_are_found_by_pull_request_branch_issue_and_search() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let a = spawn(&server, "shop", "feature/login", "ORCH-1").await;
    let b = spawn(&server, "shop", "fix/flaky_test", "ORCH-7").await;
    let c = spawn(&server, "shop", "feature/cart", "").await;
    report(&server, &b, open_pr(1189, "Fix the FLAKY login test", SHA1)).await;
    report(&server, &c, open_pr(12, "Cart: 100% coverage", SHA2)).await;
    // A later report without a title keeps the stored one.
    report(&server, &b, open_pr(1189, "", SHA2)).await;

    let by = |change: fn(&mut ListSessionsRequest)| {
        let mut request = ListSessionsRequest::default();
        change(&mut request);
        request
    };
    let cases: Vec<(&str, ListSessionsRequest, Vec<&str>)> = vec![
        ("pr number", by(|r| r.pull_request_number = 1189), vec![&b]),
        ("pr number, none", by(|r| r.pull_request_number = 5), vec![]),
        ("branch", by(|r| r.branch = "feature/cart".into()), vec![&c]),
        (
            "branch is exact",
            by(|r| r.branch = "feature".into()),
            vec![],
        ),
        ("issue id", by(|r| r.issue_id = "ORCH-7".into()), vec![&b]),
        (
            "search title, other case",
            by(|r| r.search = "flaky LOGIN".into()),
            vec![&b],
        ),
        ("search id", by(|r| r.search = "shop-3".into()), vec![&c]),
        (
            "search issue, other case",
            by(|r| r.search = "orch-1".into()),
            vec![&a],
        ),
        (
            "search branch",
            by(|r| r.search = "feature/".into()),
            vec![&c, &a],
        ),
        (
            "search % is literal",
            by(|r| r.search = "100%".into()),
            vec![&c],
        ),
        (
            "search _ is literal",
            by(|r| r.search = "y_t".into()),
            vec![&b],
        ),
        (
            "search matches nothing",
            by(|r| r.search = "%%".into()),
            vec![],
        ),
        (
            "filters combine",
            by(|r| {
                r.search = "feature".into();
                r.pull_request_number = 12;
            }),
            vec![&c],
        ),
    ];
    for (name, request, want) in cases {
        assert_eq!(list(&server, request).await, want, "{name}");
    }

    server
        .sessions_client()
        .kill_session(pb::KillSessionRequest {
            session_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("kill");
    let finished = |finished| ListSessionsRequest {
        finished: Some(finished),
        ..Default::default()
    };
    assert_eq!(list(&server, finished(true)).await, vec![a.clone()]);
    assert_eq!(
        list(&server, finished(false)).await,
        vec![c.clone(), b.clone()]
    );

    let got = server
        .sessions_client()
        .get_session(pb::GetSessionRequest {
            session_id: b.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.pull_request.unwrap().title, "Fix the FLAKY login test");
}

#[tokio::test]
async fn bad_session_filters_name_their_field() {
    let server = TestServer::start().await;
    let cases: Vec<(ListSessionsRequest, &str)> = vec![
        (
            ListSessionsRequest {
                pull_request_number: -1,
                ..Default::default()
            },
            "pull_request_number",
        ),
        (
            ListSessionsRequest {
                search: "x".repeat(257),
                ..Default::default()
            },
            "search",
        ),
        (
            ListSessionsRequest {
                branch: "a\u{7}b".into(),
                ..Default::default()
            },
            "branch",
        ),
        (
            ListSessionsRequest {
                issue_id: "y".repeat(300),
                ..Default::default()
            },
            "issue_id",
        ),
        (
            ListSessionsRequest {
                order_by: 99,
                ..Default::default()
            },
            "order_by",
        ),
    ];
    for (request, field) in cases {
        assert_eq!(list_err(&server, request).await, vec![field.to_string()]);
    }
}

#[tokio::test]
async fn sessions_list_by_latest_activity_across_pages() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let first = spawn(&server, "shop", "b1", "").await;
    let second = spawn(&server, "shop", "b2", "").await;
    let third = spawn(&server, "shop", "b3", "").await;
    start(&server, &first).await;
    activity(&server, &first, ActivityState::Active).await;

    let newest = ListSessionsRequest {
        page_size: 1,
        ..Default::default()
    };
    let by_activity = ListSessionsRequest {
        page_size: 1,
        order_by: SessionOrder::LastActivity.into(),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&server, newest.clone()).await,
        vec![third.clone(), second.clone(), first.clone()]
    );
    let explicit = ListSessionsRequest {
        order_by: SessionOrder::CreateTime.into(),
        ..newest.clone()
    };
    assert_eq!(
        all_pages(&server, explicit).await,
        vec![third.clone(), second.clone(), first.clone()]
    );
    assert_eq!(
        all_pages(&server, by_activity.clone()).await,
        vec![first.clone(), third.clone(), second.clone()]
    );

    let sessions = server
        .sessions_client()
        .list_sessions(ListSessionsRequest {
            order_by: SessionOrder::LastActivity.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let times: Vec<_> = sessions
        .iter()
        .map(|s| {
            let t = s.last_activity_time.unwrap();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let touched = &sessions[0];
    assert_eq!(
        touched.last_activity_time,
        touched.activity.as_ref().unwrap().report_time
    );

    // A token of one order is refused by the other.
    let token = server
        .sessions_client()
        .list_sessions(by_activity)
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let fields = list_err(
        &server,
        ListSessionsRequest {
            page_token: token,
            ..newest
        },
    )
    .await;
    assert_eq!(fields, vec!["page_token".to_string()]);
}
