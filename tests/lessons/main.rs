//! Lessons (SPEC §5) through the real server and generated client.
//! - record: RecordLesson's defaults, refusals, auto-lesson dedup, request_id
//!   and restarts;
//! - reads: GetLesson, ListLessons' filters and pages, GetLessonStats;
//! - update: UpdateLesson's field masks;
//! - settings: the journal's kill switch and its validated settings.
//!
//! The helpers below call the real server through the generated client.

#[path = "../common/mod.rs"]
mod common;

mod reads;
mod record;
mod settings;
mod update;

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
