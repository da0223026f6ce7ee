//! Proto <-> domain conversion for lessons. Requests are validated here, once,
//! into typed domain values; every bad field is named by its request path.

use super::{
    Attribution, JournalSettings, Lesson, LessonFilter, LessonPatch, LessonSource, LessonStats,
    LessonStatus, NewLesson, Recorded, TargetDomain,
};
use crate::error::Violations;
use crate::pb;
use crate::validate::{self, is_slug, long_text, optional_enum, short_text, update_mask_paths};

const SLUG_RULE: &str = "must match ^[a-z][a-z0-9_]{0,63}$";

/// RecordLessonRequest -> (request_id, lesson to record).
pub fn record_request(
    request: pb::RecordLessonRequest,
) -> Result<(Option<String>, NewLesson), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let Some(lesson) = request.lesson else {
        v.add("lesson", "is required");
        return Err(v);
    };
    let lesson_type = match lesson.lesson_type.as_str() {
        "" => {
            v.add("lesson.lesson_type", "is required");
            String::new()
        }
        slug if !is_slug(slug) => {
            v.add("lesson.lesson_type", SLUG_RULE);
            String::new()
        }
        _ => lesson.lesson_type,
    };
    if lesson.task_id < 0 {
        v.add("lesson.task_id", "must not be negative");
    }
    let new = NewLesson {
        lesson_type,
        work_item_id: short_text(&mut v, "lesson.work_item_id", lesson.work_item_id),
        task_id: (lesson.task_id > 0).then_some(lesson.task_id),
        session_id: short_text(&mut v, "lesson.session_id", lesson.session_id),
        stage: short_text(&mut v, "lesson.stage", lesson.stage),
        agent: short_text(&mut v, "lesson.agent", lesson.agent),
        repo: short_text(&mut v, "lesson.repo", lesson.repo),
        root_cause: long_text(&mut v, "lesson.root_cause", lesson.root_cause),
        suggestion: long_text(&mut v, "lesson.suggestion", lesson.suggestion),
        detail: long_text(&mut v, "lesson.detail", lesson.detail),
        status: status(&mut v, "lesson.status", lesson.status).unwrap_or(LessonStatus::New),
        related_task: short_text(&mut v, "lesson.related_task", lesson.related_task),
        source: source(&mut v, "lesson.source", lesson.source).unwrap_or(LessonSource::Manual),
        attribution: attribution(&mut v, "lesson.attribution", lesson.attribution),
        target_repo: short_text(&mut v, "lesson.target_repo", lesson.target_repo),
        target_domain: target_domain(&mut v, "lesson.target_domain", lesson.target_domain),
        dedup_subject: None,
    };
    v.finish((request_id, new))
}

pub fn record_response(recorded: Recorded) -> pb::RecordLessonResponse {
    let (outcome, lesson) = match recorded {
        Recorded::Recorded(lesson) => (pb::RecordOutcome::Recorded, Some(lesson_to_pb(lesson))),
        Recorded::Deduplicated(lesson) => {
            (pb::RecordOutcome::Deduplicated, Some(lesson_to_pb(lesson)))
        }
        Recorded::Disabled => (pb::RecordOutcome::Disabled, None),
    };
    pb::RecordLessonResponse {
        outcome: outcome.into(),
        lesson,
    }
}

pub fn lesson_id(id: i64) -> Result<i64, Violations> {
    let mut v = Violations::new();
    let id = validate::positive_id(&mut v, "id", id);
    v.finish(id)
}

/// ListLessonsRequest filters.
pub fn filter(request: &pb::ListLessonsRequest) -> Result<LessonFilter, Violations> {
    let mut v = Violations::new();
    let lesson_type = match request.lesson_type.as_str() {
        "" => None,
        slug if is_slug(slug) => Some(slug.to_string()),
        _ => {
            v.add("lesson_type", SLUG_RULE);
            None
        }
    };
    let filter = LessonFilter {
        lesson_type,
        status: status(&mut v, "status", request.status),
        repo: short_text(&mut v, "repo", request.repo.clone()),
        work_item_id: short_text(&mut v, "work_item_id", request.work_item_id.clone()),
        source: source(&mut v, "source", request.source),
        attribution: attribution(&mut v, "attribution", request.attribution),
        target_domain: target_domain(&mut v, "target_domain", request.target_domain),
    };
    v.finish(filter)
}

/// UpdateLessonRequest -> (id, patch).
pub fn patch(request: pb::UpdateLessonRequest) -> Result<(i64, LessonPatch), Violations> {
    let mut v = Violations::new();
    let Some(lesson) = request.lesson else {
        v.add("lesson", "is required");
        return Err(v);
    };
    let id = validate::positive_id(&mut v, "lesson.id", lesson.id);
    let paths = update_mask_paths(&mut v, request.update_mask, LessonPatch::PATHS);
    let mut patch = LessonPatch::default();
    for path in paths {
        match path {
            "status" => match status(&mut v, "lesson.status", lesson.status) {
                Some(status) => patch.status = Some(status),
                None if lesson.status == 0 => v.add("lesson.status", "cannot be cleared"),
                None => {}
            },
            "attribution" => {
                patch.attribution = Some(attribution(
                    &mut v,
                    "lesson.attribution",
                    lesson.attribution,
                ))
            }
            "target_domain" => {
                patch.target_domain = Some(target_domain(
                    &mut v,
                    "lesson.target_domain",
                    lesson.target_domain,
                ))
            }
            "target_repo" => {
                patch.target_repo = Some(short_text(
                    &mut v,
                    "lesson.target_repo",
                    lesson.target_repo.clone(),
                ))
            }
            "related_task" => {
                patch.related_task = Some(short_text(
                    &mut v,
                    "lesson.related_task",
                    lesson.related_task.clone(),
                ))
            }
            "root_cause" => {
                patch.root_cause = Some(long_text(
                    &mut v,
                    "lesson.root_cause",
                    lesson.root_cause.clone(),
                ))
            }
            "suggestion" => {
                patch.suggestion = Some(long_text(
                    &mut v,
                    "lesson.suggestion",
                    lesson.suggestion.clone(),
                ))
            }
            _ => {}
        }
    }
    v.finish((id, patch))
}

pub fn settings_to_pb(settings: JournalSettings) -> pb::LessonSettings {
    pb::LessonSettings {
        enabled: settings.enabled,
        dedup_window: Some(crate::time::duration_to_pb(settings.dedup_window)),
    }
}

/// The changes of UpdateLessonSettings, applied to `current`.
pub fn settings_update(
    request: pb::UpdateLessonSettingsRequest,
) -> Result<impl FnOnce(&mut JournalSettings), Violations> {
    const PATHS: &[&str] = &["enabled", "dedup_window"];
    let mut v = Violations::new();
    let paths = update_mask_paths(&mut v, request.update_mask, PATHS);
    let settings = request.settings.unwrap_or_default();
    let enabled = paths.contains(&"enabled").then_some(settings.enabled);
    let window = if paths.contains(&"dedup_window") {
        let window = settings
            .dedup_window
            .or(Some(prost_types::Duration::default()));
        validate::duration(&mut v, "settings.dedup_window", window)
    } else {
        None
    };
    v.finish(move |current: &mut JournalSettings| {
        if let Some(enabled) = enabled {
            current.enabled = enabled;
        }
        if let Some(window) = window {
            current.dedup_window = window;
        }
    })
}

pub fn stats_to_pb(stats: Option<LessonStats>) -> pb::LessonStats {
    let Some(stats) = stats else {
        return pb::LessonStats::default();
    };
    pb::LessonStats {
        enabled: true,
        total: stats.total,
        by_type: stats
            .by_type
            .into_iter()
            .map(|(lesson_type, count)| pb::LessonTypeCount { lesson_type, count })
            .collect(),
        by_status: stats
            .by_status
            .into_iter()
            .map(|(status, count)| pb::LessonStatusCount {
                status: status_to_pb(status).into(),
                count,
            })
            .collect(),
    }
}

pub fn lesson_to_pb(lesson: Lesson) -> pb::Lesson {
    pb::Lesson {
        id: lesson.id,
        create_time: Some(lesson.create_time.to_timestamp()),
        update_time: lesson.update_time.map(|t| t.to_timestamp()),
        lesson_type: lesson.lesson_type,
        work_item_id: lesson.work_item_id.unwrap_or_default(),
        task_id: lesson.task_id.unwrap_or_default(),
        session_id: lesson.session_id.unwrap_or_default(),
        stage: lesson.stage.unwrap_or_default(),
        agent: lesson.agent.unwrap_or_default(),
        repo: lesson.repo.unwrap_or_default(),
        root_cause: lesson.root_cause.unwrap_or_default(),
        suggestion: lesson.suggestion.unwrap_or_default(),
        detail: lesson.detail.unwrap_or_default(),
        status: status_to_pb(lesson.status).into(),
        related_task: lesson.related_task.unwrap_or_default(),
        source: match lesson.source {
            LessonSource::Auto => pb::LessonSource::Auto,
            LessonSource::Manual => pb::LessonSource::Manual,
        }
        .into(),
        attribution: lesson
            .attribution
            .map_or(pb::Attribution::Unspecified, |a| match a {
                Attribution::Platform => pb::Attribution::Platform,
                Attribution::Project => pb::Attribution::Project,
                Attribution::Both => pb::Attribution::Both,
                Attribution::Unknown => pb::Attribution::Unknown,
            }) as i32,
        target_repo: lesson.target_repo.unwrap_or_default(),
        target_domain: lesson
            .target_domain
            .map_or(pb::TargetDomain::Unspecified, |d| match d {
                TargetDomain::Reliability => pb::TargetDomain::Reliability,
                TargetDomain::Quality => pb::TargetDomain::Quality,
                TargetDomain::Economy => pb::TargetDomain::Economy,
                TargetDomain::Features => pb::TargetDomain::Features,
                TargetDomain::Scale => pb::TargetDomain::Scale,
            }) as i32,
    }
}

/// A `lesson.*` change-log payload as the proto message.
pub fn lesson_from_payload(payload: &str) -> Result<pb::Lesson, serde_json::Error> {
    serde_json::from_str::<Lesson>(payload).map(lesson_to_pb)
}

fn status_to_pb(status: LessonStatus) -> pb::LessonStatus {
    match status {
        LessonStatus::New => pb::LessonStatus::New,
        LessonStatus::InProgress => pb::LessonStatus::InProgress,
        LessonStatus::Closed => pb::LessonStatus::Closed,
        LessonStatus::Linked => pb::LessonStatus::Linked,
    }
}

fn status(v: &mut Violations, field: &str, raw: i32) -> Option<LessonStatus> {
    optional_enum::<pb::LessonStatus>(v, field, raw).and_then(|status| match status {
        pb::LessonStatus::Unspecified => None,
        pb::LessonStatus::New => Some(LessonStatus::New),
        pb::LessonStatus::InProgress => Some(LessonStatus::InProgress),
        pb::LessonStatus::Closed => Some(LessonStatus::Closed),
        pb::LessonStatus::Linked => Some(LessonStatus::Linked),
    })
}

fn source(v: &mut Violations, field: &str, raw: i32) -> Option<LessonSource> {
    optional_enum::<pb::LessonSource>(v, field, raw).and_then(|source| match source {
        pb::LessonSource::Unspecified => None,
        pb::LessonSource::Auto => Some(LessonSource::Auto),
        pb::LessonSource::Manual => Some(LessonSource::Manual),
    })
}

fn attribution(v: &mut Violations, field: &str, raw: i32) -> Option<Attribution> {
    optional_enum::<pb::Attribution>(v, field, raw).and_then(|attribution| match attribution {
        pb::Attribution::Unspecified => None,
        pb::Attribution::Platform => Some(Attribution::Platform),
        pb::Attribution::Project => Some(Attribution::Project),
        pb::Attribution::Both => Some(Attribution::Both),
        pb::Attribution::Unknown => Some(Attribution::Unknown),
    })
}

fn target_domain(v: &mut Violations, field: &str, raw: i32) -> Option<TargetDomain> {
    optional_enum::<pb::TargetDomain>(v, field, raw).and_then(|domain| match domain {
        pb::TargetDomain::Unspecified => None,
        pb::TargetDomain::Reliability => Some(TargetDomain::Reliability),
        pb::TargetDomain::Quality => Some(TargetDomain::Quality),
        pb::TargetDomain::Economy => Some(TargetDomain::Economy),
        pb::TargetDomain::Features => Some(TargetDomain::Features),
        pb::TargetDomain::Scale => Some(TargetDomain::Scale),
    })
}
