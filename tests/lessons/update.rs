//! UpdateLesson: the masked fields, update_time, and validation.

use super::*;

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
