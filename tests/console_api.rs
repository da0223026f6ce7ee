//! The API additions of the operator console through the real server:
//! ListSessions' filters (pull request number, branch, issue id, free-text
//! search) and orders, ListTasks' orders, and ListAttention.

mod common;

use bosun::pb::{
    self, ActivityState, AttentionReason, CheckStatus, Harness, ListSessionsRequest,
    PullRequestCiState, PullRequestState, ReviewDecision, SessionOrder, Stage, TaskOrder,
};
use common::pipeline::SHA_A;
use common::{TestServer, bad_fields};
use tonic::Code;

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";

async fn spawn(server: &TestServer, project: &str, branch: &str, issue: &str) -> String {
    server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: project.into(),
            harness: Harness::ClaudeCode.into(),
            branch: branch.into(),
            issue_id: issue.into(),
            prompt: "work".into(),
            ..Default::default()
        })
        .await
        .expect("spawn")
        .into_inner()
        .id
}

async fn start(server: &TestServer, id: &str) {
    server
        .sessions_client()
        .complete_spawn(pb::CompleteSpawnRequest {
            session_id: id.into(),
            runtime_handle_id: format!("tmux:{id}"),
            ..Default::default()
        })
        .await
        .expect("complete spawn");
}

async fn activity(server: &TestServer, id: &str, state: ActivityState) {
    server
        .sessions_client()
        .report_activity(pb::ReportActivityRequest {
            session_id: id.into(),
            state: state.into(),
            ..Default::default()
        })
        .await
        .expect("report activity");
}

async fn report(server: &TestServer, id: &str, pull_request: pb::PullRequest) {
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: id.into(),
            fetched: true,
            pull_request: Some(pull_request),
            ..Default::default()
        })
        .await
        .expect("report pull request");
}

fn open_pr(number: i64, title: &str, head: &str) -> pb::PullRequest {
    pb::PullRequest {
        url: format!("https://github.com/acme/shop/pull/{number}"),
        number,
        state: PullRequestState::Open.into(),
        head_sha: head.into(),
        title: title.into(),
        ..Default::default()
    }
}

async fn list(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    server
        .sessions_client()
        .list_sessions(request)
        .await
        .expect("list sessions")
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn list_err(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    let status = server
        .sessions_client()
        .list_sessions(request)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    bad_fields(&status)
}

/// Every page of a listing, following next_page_token.
async fn all_pages(server: &TestServer, request: ListSessionsRequest) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .sessions_client()
            .list_sessions(ListSessionsRequest {
                page_token: token,
                ..request.clone()
            })
            .await
            .expect("page")
            .into_inner();
        ids.extend(page.sessions.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

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

#[tokio::test]
async fn tasks_list_newest_or_last_updated_first() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let older = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let newer = server
        .start_task("shop", "i-2", "SHOP-2")
        .await
        .task
        .unwrap();
    server.walk_to(older.id, Stage::Development).await;

    let pages = |order: TaskOrder| {
        let server = &server;
        async move {
            let mut ids = Vec::new();
            let mut token = String::new();
            loop {
                let page = server
                    .tasks()
                    .list_tasks(pb::ListTasksRequest {
                        page_size: 1,
                        page_token: token,
                        order_by: order.into(),
                        ..Default::default()
                    })
                    .await
                    .expect("list tasks")
                    .into_inner();
                ids.extend(page.tasks.iter().map(|t| t.id));
                if page.next_page_token.is_empty() {
                    return ids;
                }
                token = page.next_page_token;
            }
        }
    };
    assert_eq!(
        pages(TaskOrder::Unspecified).await,
        vec![newer.id, older.id]
    );
    assert_eq!(pages(TaskOrder::CreateTime).await, vec![newer.id, older.id]);
    assert_eq!(pages(TaskOrder::UpdateTime).await, vec![older.id, newer.id]);

    let status = server
        .tasks()
        .list_tasks(pb::ListTasksRequest {
            order_by: 7,
            ..Default::default()
        })
        .await
        .expect_err("unknown order");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), vec!["order_by".to_string()]);
}

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
