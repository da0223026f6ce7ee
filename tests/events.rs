//! Events.GetHead and Events.ListEvents over the trigger-fed change log.

mod common;

use bosun::pb::{
    self, EventFilter, GetHeadRequest, GetLessonRequest, Lesson, ListEventsRequest,
    UpdateLessonRequest, event::Payload,
};
use bosun::storage::sql::query;
use common::{TestServer, assert_error, bad_fields, error_metadata};
use tonic::Code;

async fn record(server: &TestServer, lesson_type: &str, session_id: &str, task_id: i64) -> Lesson {
    let lesson = Lesson {
        lesson_type: lesson_type.into(),
        session_id: session_id.into(),
        task_id,
        ..Lesson::default()
    };
    server.record(lesson).await.lesson.unwrap()
}

async fn list(
    server: &TestServer,
    request: ListEventsRequest,
) -> Result<pb::ListEventsResponse, tonic::Status> {
    server
        .events()
        .list_events(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn every_change_appends_one_event_with_the_entity_as_it_was_after_it() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .events()
            .get_head(GetHeadRequest {})
            .await
            .unwrap()
            .into_inner(),
        pb::GetHeadResponse {
            head_seq: 0,
            oldest_seq: 0
        }
    );
    let created = record(&server, "gate_failure", "mer-1", 7).await;
    let updated = server
        .lessons()
        .update_lesson(UpdateLessonRequest {
            lesson: Some(Lesson {
                id: created.id,
                root_cause: "flaky test".into(),
                ..Lesson::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["root_cause".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();

    let page = list(&server, ListEventsRequest::default()).await.unwrap();
    assert_eq!(page.head_seq, 2);
    assert!(page.next_page_token.is_empty());
    let kinds: Vec<(i64, &str, &str, &str, &str, i64)> = page
        .events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.event_type.as_str(),
                e.entity_kind.as_str(),
                e.entity_id.as_str(),
                e.session_id.as_str(),
                e.task_id,
            )
        })
        .collect();
    let id = created.id.to_string();
    assert_eq!(
        kinds,
        [
            (1, "lesson.created", "lesson", id.as_str(), "mer-1", 7),
            (2, "lesson.updated", "lesson", id.as_str(), "mer-1", 7),
        ]
    );
    assert_eq!(
        page.events[0].payload,
        Some(Payload::Lesson(created)),
        "typed payload, as created"
    );
    assert_eq!(
        page.events[1].payload,
        Some(Payload::Lesson(updated.clone())),
        "typed payload, as updated"
    );
    let stored = server
        .lessons()
        .get_lesson(GetLessonRequest { id: updated.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(Some(Payload::Lesson(stored)), page.events[1].payload);
    assert!(page.events.iter().all(|e| e.create_time.is_some()));
    assert_eq!(
        server
            .events()
            .get_head(GetHeadRequest {})
            .await
            .unwrap()
            .into_inner(),
        pb::GetHeadResponse {
            head_seq: 2,
            oldest_seq: 1
        }
    );
}

#[tokio::test]
async fn list_events_filters_pages_and_resumes_after_a_seq() {
    let server = TestServer::start().await;
    for i in 0..30 {
        record(
            &server,
            if i % 2 == 0 {
                "gate_failure"
            } else {
                "merge_hold"
            },
            &format!("mer-{}", i % 3),
            i % 5 + 1,
        )
        .await;
    }
    // Pages of 7 walk the whole log in order, each seq once.
    let mut seqs = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &server,
            ListEventsRequest {
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(page.events.len() <= 7);
        seqs.extend(page.events.iter().map(|e| e.seq));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());

    let after = list(
        &server,
        ListEventsRequest {
            after_seq: 25,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        after.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [26, 27, 28, 29, 30]
    );

    let filtered = |filter: EventFilter| {
        let server = &server;
        async move {
            list(
                server,
                ListEventsRequest {
                    filter: Some(filter),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filtered(EventFilter {
            event_type_prefixes: vec!["lesson.".into()],
            ..Default::default()
        })
        .await
        .len(),
        30
    );
    assert!(
        filtered(EventFilter {
            event_type_prefixes: vec!["session.".into()],
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        filtered(EventFilter {
            event_type_prefixes: vec!["session.".into(), "lesson.cr".into()],
            ..Default::default()
        })
        .await
        .len(),
        30,
        "any prefix may match"
    );
    assert_eq!(
        filtered(EventFilter {
            session_id: "mer-1".into(),
            ..Default::default()
        })
        .await,
        (2..=30).step_by(3).collect::<Vec<_>>()
    );
    assert_eq!(
        filtered(EventFilter {
            task_id: 5,
            ..Default::default()
        })
        .await,
        (5..=30).step_by(5).collect::<Vec<_>>()
    );
    assert_eq!(
        filtered(EventFilter {
            session_id: "mer-0".into(),
            task_id: 1,
            ..Default::default()
        })
        .await,
        [1, 16]
    );
    assert!(
        filtered(EventFilter {
            project_id: "mer".into(),
            ..Default::default()
        })
        .await
        .is_empty(),
        "lessons have no project"
    );
}

#[tokio::test]
async fn bad_requests_and_compacted_cursors_are_refused() {
    let server = TestServer::start().await;
    for _ in 0..5 {
        record(&server, "gate_failure", "", 0).await;
    }
    for (request, fields) in [
        (
            ListEventsRequest {
                after_seq: -1,
                ..Default::default()
            },
            vec!["after_seq"],
        ),
        (
            ListEventsRequest {
                page_size: -5,
                ..Default::default()
            },
            vec!["page_size"],
        ),
        (
            ListEventsRequest {
                page_token: "nope".into(),
                ..Default::default()
            },
            vec!["page_token"],
        ),
        (
            ListEventsRequest {
                filter: Some(EventFilter {
                    event_type_prefixes: vec!["Lesson*".into(), String::new()],
                    task_id: -2,
                    ..Default::default()
                }),
                ..Default::default()
            },
            vec![
                "filter.event_type_prefixes",
                "filter.event_type_prefixes",
                "filter.task_id",
            ],
        ),
    ] {
        let status = list(&server, request).await.unwrap_err();
        assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&status), fields);
    }

    // History before seq 4 compacted (as the retention job does).
    let mut db = server.direct().await;
    query("DELETE FROM change_log WHERE seq < 4")
        .execute(&mut db.conn())
        .await
        .unwrap();
    let status = list(
        &server,
        ListEventsRequest {
            after_seq: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_error(&status, Code::OutOfRange, "CURSOR_COMPACTED");
    assert_eq!(error_metadata(&status, "oldest_seq").as_deref(), Some("4"));
    // A cursor right before the oldest kept event continues exactly.
    let exact = list(
        &server,
        ListEventsRequest {
            after_seq: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        exact.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [4, 5]
    );
    let from_oldest = list(&server, ListEventsRequest::default()).await.unwrap();
    assert_eq!(
        from_oldest.events.first().map(|e| e.seq),
        Some(4),
        "0 means from the oldest kept"
    );
}
