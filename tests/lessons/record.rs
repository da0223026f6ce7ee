//! RecordLesson: what it stores by default, what it refuses (naming every
//! bad field), auto-lesson dedup, a repeated request_id, and what survives
//! a restart.

use super::*;

#[tokio::test]
async fn record_defaults_to_manual_and_new_and_returns_the_stored_lesson() {
    let server = TestServer::start().await;
    let response = record(
        &server,
        Lesson {
            lesson_type: "gate_failure".into(),
            work_item_id: "ORCH-098".into(),
            task_id: 7,
            stage: "review".into(),
            agent: "reviewer".into(),
            repo: "orchestrator".into(),
            root_cause: "REQUEST_CHANGES".into(),
            ..Lesson::default()
        },
    )
    .await;
    assert_eq!(response.outcome(), RecordOutcome::Recorded);
    let recorded = response.lesson.unwrap();
    assert!(recorded.id > 0);
    assert_eq!(recorded.source(), LessonSource::Manual);
    assert_eq!(recorded.status(), LessonStatus::New);
    assert!(recorded.create_time.is_some());
    assert!(
        recorded.update_time.is_none(),
        "update_time is unset until the first update"
    );
    assert_eq!(
        recorded.attribution(),
        Attribution::Unspecified,
        "attribution starts empty"
    );
    let fetched = server
        .lessons()
        .get_lesson(GetLessonRequest { id: recorded.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, recorded);
    assert_eq!((fetched.task_id, fetched.agent.as_str()), (7, "reviewer"));

    let second = record(&server, lesson("custom_manual"))
        .await
        .lesson
        .unwrap();
    assert!(second.id > recorded.id, "ids increase");
}

#[tokio::test]
async fn bad_input_is_refused_with_every_bad_field_named_and_writes_nothing() {
    let server = TestServer::start().await;
    let cases: Vec<(Option<Lesson>, &str, Vec<&str>)> = vec![
        (None, "", vec!["lesson"]),
        (Some(lesson("")), "", vec!["lesson.lesson_type"]),
        (Some(lesson("Gate-Failure")), "", vec!["lesson.lesson_type"]),
        (
            Some(lesson(&"a".repeat(65))),
            "",
            vec!["lesson.lesson_type"],
        ),
        (
            Some(Lesson {
                repo: "r".repeat(257),
                root_cause: "x".repeat(16 * 1024 + 1),
                ..lesson("ok")
            }),
            "",
            vec!["lesson.repo", "lesson.root_cause"],
        ),
        (
            Some(Lesson {
                status: 99,
                source: -1,
                ..lesson("ok")
            }),
            "",
            vec!["lesson.status", "lesson.source"],
        ),
        (
            Some(Lesson {
                attribution: 42,
                target_domain: 9,
                ..lesson("ok")
            }),
            "",
            vec!["lesson.attribution", "lesson.target_domain"],
        ),
        (
            Some(Lesson {
                task_id: -3,
                stage: "a\u{0}b".into(),
                ..lesson("ok")
            }),
            "",
            vec!["lesson.task_id", "lesson.stage"],
        ),
        (Some(lesson("ok")), "has spaces", vec!["request_id"]),
        (
            Some(lesson("")),
            "has spaces",
            vec!["request_id", "lesson.lesson_type"],
        ),
    ];
    for (lesson, request_id, fields) in cases {
        let status = server
            .lessons()
            .record_lesson(RecordLessonRequest {
                request_id: request_id.into(),
                lesson: lesson.clone(),
            })
            .await
            .expect_err("must be refused");
        assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        let mut got = bad_fields(&status);
        let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{lesson:?}");
    }
    assert_eq!(total(&server).await, 0, "nothing was written");
    let head = server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.head_seq, 0, "no event either");
}

#[tokio::test]
async fn auto_lessons_are_deduplicated_within_the_window_and_manual_never() {
    let server = TestServer::start().await;
    let first = record(&server, auto("transient_retry", "ORCH-098", "deploy")).await;
    assert_eq!(first.outcome(), RecordOutcome::Recorded);
    let first = first.lesson.unwrap();

    let again = record(
        &server,
        Lesson {
            detail: "other detail".into(),
            ..auto("transient_retry", "ORCH-098", "deploy")
        },
    )
    .await;
    assert_eq!(again.outcome(), RecordOutcome::Deduplicated);
    assert_eq!(
        again.lesson.unwrap().id,
        first.id,
        "the existing lesson is returned"
    );

    // Any part of the key differing means a new lesson.
    for other in [
        auto("transient_retry", "ORCH-099", "deploy"),
        auto("transient_retry", "ORCH-098", "testing"),
        auto("gate_failure", "ORCH-098", "deploy"),
    ] {
        assert_eq!(
            record(&server, other).await.outcome(),
            RecordOutcome::Recorded
        );
    }

    // Manual lessons with the same key are always written.
    let manual = Lesson {
        source: LessonSource::Manual.into(),
        ..auto("transient_retry", "ORCH-098", "deploy")
    };
    let m1 = record(&server, manual.clone()).await;
    let m2 = record(&server, manual).await;
    assert_eq!(
        (m1.outcome(), m2.outcome()),
        (RecordOutcome::Recorded, RecordOutcome::Recorded)
    );
    assert_ne!(m1.lesson.unwrap().id, m2.lesson.unwrap().id);
    assert_eq!(total(&server).await, 6);

    // A lesson older than the window no longer suppresses: age it by two hours.
    let mut db = server.direct().await;
    query("UPDATE lessons SET create_time = create_time - 7200000000 WHERE id = $1")
        .bind(first.id)
        .execute(&mut db.conn())
        .await
        .unwrap();
    let after_window = record(&server, auto("transient_retry", "ORCH-098", "deploy")).await;
    assert_eq!(after_window.outcome(), RecordOutcome::Recorded);

    // A zero window disables dedup.
    let settings = set_settings(
        &server,
        LessonSettings {
            enabled: true,
            dedup_window: Some(Duration::default()),
        },
        &["dedup_window"],
    )
    .await;
    assert_eq!(settings.dedup_window.unwrap().seconds, 0);
    let no_window = record(&server, auto("transient_retry", "ORCH-098", "deploy")).await;
    assert_eq!(no_window.outcome(), RecordOutcome::Recorded);
    assert_eq!(total(&server).await, 8);
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_result_and_changes_nothing() {
    let server = TestServer::start().await;
    let request = RecordLessonRequest {
        request_id: "runner-42:attempt".into(),
        lesson: Some(lesson("gate_failure")),
    };
    let first = server
        .lessons()
        .record_lesson(request.clone())
        .await
        .unwrap()
        .into_inner();
    let head = server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_seq;

    // Retried concurrently, too: one lesson, the same answer for everyone.
    let retries = join_all((0..8).map(|_| {
        let mut client = server.lessons();
        let request = request.clone();
        async move { client.record_lesson(request).await.unwrap().into_inner() }
    }))
    .await;
    for retry in retries {
        assert_eq!(retry, first);
    }
    assert_eq!(total(&server).await, 1);
    let head_after = server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .head_seq;
    assert_eq!(head_after, head, "no new event");

    // The id reused for a different request is refused.
    let other = RecordLessonRequest {
        request_id: request.request_id.clone(),
        lesson: Some(lesson("merge_hold")),
    };
    let status = server.lessons().record_lesson(other).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "REQUEST_ID_REUSED");
    // The first answer survives a restart.
    let mut server = server;
    server.restart().await;
    let after_restart = server
        .lessons()
        .record_lesson(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after_restart, first);
    assert_eq!(total(&server).await, 1);
}

#[tokio::test]
async fn lessons_and_counters_survive_a_restart() {
    let mut server = TestServer::start().await;
    let a = record(&server, lesson("gate_failure"))
        .await
        .lesson
        .unwrap();
    let b = record(&server, auto("merge_hold", "ORCH-1", "deploy"))
        .await
        .lesson
        .unwrap();
    let stats_before = server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    let head_before = server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .unwrap()
        .into_inner();
    server.restart().await;
    assert_eq!(
        server
            .lessons()
            .get_lesson(GetLessonRequest { id: a.id })
            .await
            .unwrap()
            .into_inner(),
        a
    );
    let stats_after = server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats_after, stats_before);
    assert_eq!(
        server
            .events()
            .get_head(pb::GetHeadRequest {})
            .await
            .unwrap()
            .into_inner(),
        head_before
    );
    // Dedup memory and the id counter carry on from the stored rows.
    let again = record(&server, auto("merge_hold", "ORCH-1", "deploy")).await;
    assert_eq!(again.outcome(), RecordOutcome::Deduplicated);
    let c = record(&server, lesson("gate_failure"))
        .await
        .lesson
        .unwrap();
    assert!(c.id > b.id);
}
