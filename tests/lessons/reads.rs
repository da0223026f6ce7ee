//! GetLesson, ListLessons (every filter, newest first; pages and their
//! tokens) and GetLessonStats.

use super::*;

#[tokio::test]
async fn get_unknown_or_invalid_id() {
    let server = TestServer::start().await;
    let status = server
        .lessons()
        .get_lesson(GetLessonRequest { id: 12345 })
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "LESSON_NOT_FOUND");
    let status = server
        .lessons()
        .get_lesson(GetLessonRequest { id: 0 })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["id"]);
}

#[tokio::test]
async fn list_filters_by_every_field_newest_first() {
    let server = TestServer::start().await;
    for i in 0..5 {
        record(
            &server,
            Lesson {
                repo: "orchestrator".into(),
                ..auto("gate_failure", &format!("ORCH-{i}"), "review")
            },
        )
        .await;
    }
    let hold = record(
        &server,
        Lesson {
            work_item_id: "ORCH-X".into(),
            repo: "enduro-trails".into(),
            status: LessonStatus::Closed.into(),
            attribution: Attribution::Project.into(),
            target_domain: TargetDomain::Economy.into(),
            ..lesson("merge_hold")
        },
    )
    .await
    .lesson
    .unwrap();

    let all = list(&server, ListLessonsRequest::default()).await;
    assert!(all.enabled);
    let ids: Vec<i64> = all.lessons.iter().map(|l| l.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert_eq!(ids.len(), 6);
    assert!(all.next_page_token.is_empty());

    let by_filter = [
        (
            ListLessonsRequest {
                lesson_type: "gate_failure".into(),
                ..Default::default()
            },
            5,
        ),
        (
            ListLessonsRequest {
                status: LessonStatus::Closed.into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                status: LessonStatus::New.into(),
                ..Default::default()
            },
            5,
        ),
        (
            ListLessonsRequest {
                repo: "enduro-trails".into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                work_item_id: "ORCH-3".into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                source: LessonSource::Auto.into(),
                ..Default::default()
            },
            5,
        ),
        (
            ListLessonsRequest {
                source: LessonSource::Manual.into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                attribution: Attribution::Project.into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                target_domain: TargetDomain::Economy.into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListLessonsRequest {
                target_domain: TargetDomain::Scale.into(),
                ..Default::default()
            },
            0,
        ),
    ];
    for (request, expected) in by_filter {
        assert_eq!(
            list(&server, request.clone()).await.lessons.len(),
            expected,
            "{request:?}"
        );
    }
    let combined = list(
        &server,
        ListLessonsRequest {
            lesson_type: "merge_hold".into(),
            repo: "enduro-trails".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(combined.lessons, vec![hold]);
    let limited = list(
        &server,
        ListLessonsRequest {
            lesson_type: "gate_failure".into(),
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(limited.lessons.len(), 2);

    let status = server
        .lessons()
        .list_lessons(ListLessonsRequest {
            lesson_type: "Not A Slug".into(),
            status: 77,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["lesson_type", "status"]);
}

#[tokio::test]
async fn pagination_defaults_clamps_and_binds_tokens_to_filters() {
    let server = TestServer::start().await;
    // Concurrent records share transactions (group commit); all must land.
    let records = (0..1005).map(|i| {
        let mut client = server.lessons();
        async move {
            client
                .record_lesson(RecordLessonRequest {
                    request_id: String::new(),
                    lesson: Some(lesson(&format!("type_{}", i % 3))),
                })
                .await
                .expect("record")
                .into_inner()
                .lesson
                .unwrap()
                .id
        }
    });
    let mut ids = join_all(records).await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1005, "distinct ids");

    let first = list(&server, ListLessonsRequest::default()).await;
    assert_eq!(first.lessons.len(), 100, "default page size");
    assert!(!first.next_page_token.is_empty());
    let clamped = list(
        &server,
        ListLessonsRequest {
            page_size: 5000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(clamped.lessons.len(), 1000, "clamped to the maximum");

    // Walking every page returns each lesson once, newest first.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &server,
            ListLessonsRequest {
                page_size: 300,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        seen.extend(page.lessons.iter().map(|l| l.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // An exactly full last page ends with an empty token.
    let typed = list(
        &server,
        ListLessonsRequest {
            lesson_type: "type_0".into(),
            page_size: 335,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(typed.lessons.len(), 335);
    assert!(typed.next_page_token.is_empty(), "no empty trailing page");

    for (request, field) in [
        (
            ListLessonsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListLessonsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListLessonsRequest {
                page_token: first.next_page_token.clone(),
                lesson_type: "type_1".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let status = server.lessons().list_lessons(request).await.unwrap_err();
        assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&status), [field]);
    }
}

#[tokio::test]
async fn stats_count_by_type_and_status() {
    let server = TestServer::start().await;
    for (lesson_type, status) in [
        ("gate_failure", LessonStatus::New),
        ("gate_failure", LessonStatus::New),
        ("gate_failure", LessonStatus::Closed),
        ("merge_hold", LessonStatus::Linked),
    ] {
        record(
            &server,
            Lesson {
                status: status.into(),
                ..lesson(lesson_type)
            },
        )
        .await;
    }
    let stats = server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(stats.enabled);
    assert_eq!(stats.total, 4);
    let by_type: Vec<(String, i64)> = stats
        .by_type
        .iter()
        .map(|c| (c.lesson_type.clone(), c.count))
        .collect();
    assert_eq!(
        by_type,
        [
            ("gate_failure".to_string(), 3),
            ("merge_hold".to_string(), 1)
        ]
    );
    let by_status: Vec<(LessonStatus, i64)> = stats
        .by_status
        .iter()
        .map(|c| (c.status(), c.count))
        .collect();
    assert_eq!(
        by_status,
        [
            (LessonStatus::New, 2),
            (LessonStatus::Closed, 1),
            (LessonStatus::Linked, 1)
        ]
    );
}
