//! Lessons (SPEC §5) through the real server and generated client.

mod common;

use bosun::pb::{
    self, Attribution, GetLessonRequest, GetLessonStatsRequest, Lesson, LessonSettings,
    LessonSource, LessonStatus, ListLessonsRequest, RecordLessonRequest, RecordOutcome,
    TargetDomain, UpdateLessonRequest, UpdateLessonSettingsRequest,
};
use bosun::storage::sql::query;
use common::{TestServer, assert_error, bad_fields};
use futures::future::join_all;
use prost_types::{Duration, FieldMask};
use tonic::Code;

fn lesson(lesson_type: &str) -> Lesson {
    Lesson {
        lesson_type: lesson_type.into(),
        ..Lesson::default()
    }
}

fn auto(lesson_type: &str, work_item_id: &str, stage: &str) -> Lesson {
    Lesson {
        lesson_type: lesson_type.into(),
        work_item_id: work_item_id.into(),
        stage: stage.into(),
        source: LessonSource::Auto.into(),
        ..Lesson::default()
    }
}

async fn record(server: &TestServer, lesson: Lesson) -> pb::RecordLessonResponse {
    server.record(lesson).await
}

async fn list(server: &TestServer, request: ListLessonsRequest) -> pb::ListLessonsResponse {
    server
        .lessons()
        .list_lessons(request)
        .await
        .expect("list")
        .into_inner()
}

async fn total(server: &TestServer) -> i64 {
    server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .total
}

async fn set_settings(
    server: &TestServer,
    settings: LessonSettings,
    paths: &[&str],
) -> LessonSettings {
    server
        .lessons()
        .update_lesson_settings(UpdateLessonSettingsRequest {
            settings: Some(settings),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .expect("update settings")
        .into_inner()
}

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
async fn update_sets_masked_fields_stamps_update_time_and_validates() {
    let server = TestServer::start().await;
    let recorded = record(
        &server,
        Lesson {
            work_item_id: "ORCH-098".into(),
            repo: "orchestrator".into(),
            root_cause: "flaky".into(),
            ..lesson("deploy_degraded")
        },
    )
    .await
    .lesson
    .unwrap();
    let update = |lesson: Lesson, paths: &[&str]| {
        let mut client = server.lessons();
        let paths = paths.iter().map(|p| p.to_string()).collect();
        async move {
            client
                .update_lesson(UpdateLessonRequest {
                    lesson: Some(lesson),
                    update_mask: Some(FieldMask { paths }),
                })
                .await
        }
    };

    let updated = update(
        Lesson {
            id: recorded.id,
            status: LessonStatus::InProgress.into(),
            attribution: Attribution::Both.into(),
            target_repo: "orchestrator".into(),
            target_domain: TargetDomain::Reliability.into(),
            related_task: "ORCH-200".into(),
            suggestion: "ignored: not in the mask".into(),
            ..Lesson::default()
        },
        &[
            "status",
            "attribution",
            "target_repo",
            "target_domain",
            "related_task",
        ],
    )
    .await
    .expect("update")
    .into_inner();
    assert_eq!(updated.status(), LessonStatus::InProgress);
    assert_eq!(updated.attribution(), Attribution::Both);
    assert_eq!(updated.target_domain(), TargetDomain::Reliability);
    assert_eq!(
        (updated.target_repo.as_str(), updated.related_task.as_str()),
        ("orchestrator", "ORCH-200")
    );
    assert_eq!(
        updated.suggestion, "",
        "fields outside the mask are untouched"
    );
    assert_eq!(updated.root_cause, "flaky");
    assert!(updated.update_time.is_some(), "update_time stamped");
    assert_eq!(updated.create_time, recorded.create_time);
    let fetched = server
        .lessons()
        .get_lesson(GetLessonRequest { id: recorded.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, updated, "the change is stored");

    // An empty value in the mask clears; "*" names every mutable field.
    let cleared = update(
        Lesson {
            id: recorded.id,
            status: LessonStatus::Closed.into(),
            ..Lesson::default()
        },
        &["*"],
    )
    .await
    .expect("update *")
    .into_inner();
    assert_eq!(cleared.status(), LessonStatus::Closed);
    assert_eq!(
        (cleared.root_cause.as_str(), cleared.target_repo.as_str()),
        ("", "")
    );
    assert_eq!(cleared.attribution(), Attribution::Unspecified);

    let status = update(
        Lesson {
            id: 999_999,
            status: LessonStatus::Closed.into(),
            ..Lesson::default()
        },
        &["status"],
    )
    .await
    .unwrap_err();
    assert_error(&status, Code::NotFound, "LESSON_NOT_FOUND");

    let refusals: Vec<(Lesson, Vec<&str>, Vec<&str>)> = vec![
        (
            Lesson {
                id: recorded.id,
                ..Lesson::default()
            },
            vec![],
            vec!["update_mask"],
        ),
        (
            Lesson {
                id: recorded.id,
                ..Lesson::default()
            },
            vec!["lesson_type"],
            vec!["update_mask"],
        ),
        (
            Lesson {
                id: recorded.id,
                ..Lesson::default()
            },
            vec!["status"],
            vec!["lesson.status"],
        ),
        (
            Lesson {
                id: recorded.id,
                attribution: 17,
                ..Lesson::default()
            },
            vec!["attribution"],
            vec!["lesson.attribution"],
        ),
        (
            Lesson {
                id: 0,
                status: 1,
                ..Lesson::default()
            },
            vec!["status"],
            vec!["lesson.id"],
        ),
        (
            Lesson {
                id: recorded.id,
                ..Lesson::default()
            },
            vec!["*", "status"],
            vec!["update_mask"],
        ),
    ];
    for (lesson, paths, fields) in refusals {
        let status = update(lesson, &paths).await.unwrap_err();
        assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&status), fields, "{paths:?}");
    }
    let unchanged = server
        .lessons()
        .get_lesson(GetLessonRequest { id: recorded.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, cleared, "refused updates change nothing");
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

#[tokio::test]
async fn the_kill_switch_stops_every_table_access_and_can_be_turned_back_on() {
    let server = TestServer::start().await;
    let kept = record(&server, lesson("gate_failure"))
        .await
        .lesson
        .unwrap();
    let off = set_settings(
        &server,
        LessonSettings {
            enabled: false,
            dedup_window: None,
        },
        &["enabled"],
    )
    .await;
    assert!(!off.enabled);
    assert_eq!(
        off.dedup_window.unwrap().seconds,
        3600,
        "the window is untouched"
    );

    // Prove that nothing touches the table: move it away while off.
    let mut db = server.direct().await;
    query("ALTER TABLE lessons RENAME TO lessons_away")
        .execute(&mut db.conn())
        .await
        .unwrap();

    let recorded = record(&server, lesson("gate_failure")).await;
    assert_eq!(recorded.outcome(), RecordOutcome::Disabled);
    assert!(recorded.lesson.is_none());
    let listed = list(&server, ListLessonsRequest::default()).await;
    assert!(!listed.enabled);
    assert!(listed.lessons.is_empty());
    let stats = server
        .lessons()
        .get_lesson_stats(GetLessonStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stats,
        pb::LessonStats {
            enabled: false,
            ..Default::default()
        }
    );
    let status = server
        .lessons()
        .update_lesson(UpdateLessonRequest {
            lesson: Some(Lesson {
                id: kept.id,
                status: LessonStatus::Closed.into(),
                ..Lesson::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "LESSONS_DISABLED");
    let status = server
        .lessons()
        .get_lesson(GetLessonRequest { id: kept.id })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "LESSONS_DISABLED");

    query("ALTER TABLE lessons_away RENAME TO lessons")
        .execute(&mut db.conn())
        .await
        .unwrap();
    let on = set_settings(
        &server,
        LessonSettings {
            enabled: true,
            dedup_window: None,
        },
        &["enabled"],
    )
    .await;
    assert!(on.enabled);
    let fetched = server
        .lessons()
        .get_lesson(GetLessonRequest { id: kept.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, kept);
    assert_eq!(total(&server).await, 1, "nothing was written while off");
}

#[tokio::test]
async fn settings_updates_are_validated() {
    let server = TestServer::start().await;
    for (settings, paths, field) in [
        (LessonSettings::default(), vec![], "update_mask"),
        (LessonSettings::default(), vec!["colour"], "update_mask"),
        (
            LessonSettings {
                enabled: true,
                dedup_window: Some(Duration {
                    seconds: -5,
                    nanos: 0,
                }),
            },
            vec!["dedup_window"],
            "settings.dedup_window",
        ),
    ] {
        let status = server
            .lessons()
            .update_lesson_settings(UpdateLessonSettingsRequest {
                settings: Some(settings),
                update_mask: Some(FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
            })
            .await
            .unwrap_err();
        assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&status), [field]);
    }
    let current = server
        .lessons()
        .get_lesson_settings(pb::GetLessonSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(current.enabled, "refused updates change nothing");
    assert_eq!(current.dedup_window.unwrap().seconds, 3600);
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
