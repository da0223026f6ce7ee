//! The journal's settings: the kill switch stops every table access and
//! turns back on; updates are validated.

use super::*;

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
