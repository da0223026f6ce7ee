//! The lessons journal (SPEC §5): a structured record of every deviation, so
//! patterns can be counted. This module holds the domain: types, rules and
//! errors, with no gRPC and no SQL. [`Journal`] is the service other domains
//! and the gRPC adapter call; [`Journal::record_auto`] is the entry point for
//! lessons bosun records itself, and it never fails its caller.

mod convert;
mod grpc;
mod journal;
mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::idempotency::{IdempotencyError, ReusedRequestId};
use crate::slug::slug_enum;
use crate::storage::StoreError;
use crate::time::UnixMicros;

pub use convert::lesson_from_payload;
pub use grpc::LessonsApi;
pub use journal::{AutoLesson, Journal, JournalSettings};

/// Canonical lesson types recorded by bosun itself.
pub mod lesson_types {
    pub const GATE_FAILURE: &str = "gate_failure";
    pub const MERGE_HOLD: &str = "merge_hold";
    pub const TRANSIENT_RETRY: &str = "transient_retry";
    pub const DEPLOY_DEGRADED: &str = "deploy_degraded";
}

slug_enum!(
    /// The lifecycle of a lesson.
    LessonStatus { New => "new", InProgress => "in_progress", Closed => "closed", Linked => "linked" }
);
slug_enum!(
    /// Who recorded a lesson.
    LessonSource { Auto => "auto", Manual => "manual" }
);
slug_enum!(
    /// Whom a lesson is about.
    Attribution { Platform => "platform", Project => "project", Both => "both", Unknown => "unknown" }
);
slug_enum!(
    /// Which improvement axis a lesson touches.
    TargetDomain {
        Reliability => "reliability",
        Quality => "quality",
        Economy => "economy",
        Features => "features",
        Scale => "scale",
    }
);

/// A recorded lesson. Field names equal the column names of `lessons`, so the
/// change log's JSON payload deserializes straight into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lesson {
    pub id: i64,
    pub create_time: UnixMicros,
    pub update_time: Option<UnixMicros>,
    pub lesson_type: String,
    pub work_item_id: Option<String>,
    pub task_id: Option<i64>,
    pub session_id: Option<String>,
    pub stage: Option<String>,
    pub agent: Option<String>,
    pub repo: Option<String>,
    pub root_cause: Option<String>,
    pub suggestion: Option<String>,
    pub detail: Option<String>,
    pub status: LessonStatus,
    pub related_task: Option<String>,
    pub source: LessonSource,
    pub attribution: Option<Attribution>,
    pub target_repo: Option<String>,
    pub target_domain: Option<TargetDomain>,
}

/// A lesson to record: everything but id and times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewLesson {
    /// Validated: an open slug, see [`crate::validate::is_slug`].
    pub lesson_type: String,
    pub work_item_id: Option<String>,
    pub task_id: Option<i64>,
    pub session_id: Option<String>,
    pub stage: Option<String>,
    pub agent: Option<String>,
    pub repo: Option<String>,
    pub root_cause: Option<String>,
    pub suggestion: Option<String>,
    pub detail: Option<String>,
    pub status: LessonStatus,
    pub related_task: Option<String>,
    pub source: LessonSource,
    pub attribution: Option<Attribution>,
    pub target_repo: Option<String>,
    pub target_domain: Option<TargetDomain>,
    /// What else tells two AUTO lessons apart for dedup, besides work item,
    /// type and stage: a recorder that fires per subject (a session, a
    /// transcript) names it, so one subject's lesson never hides another's.
    /// Not shown on the lesson.
    pub dedup_subject: Option<String>,
}

impl NewLesson {
    /// An auto lesson of `lesson_type` with every optional field unset; for
    /// bosun's own recorders, which then fill in what they know.
    pub fn auto(lesson_type: &str) -> Self {
        Self {
            lesson_type: lesson_type.to_string(),
            work_item_id: None,
            task_id: None,
            session_id: None,
            stage: None,
            agent: None,
            repo: None,
            root_cause: None,
            suggestion: None,
            detail: None,
            status: LessonStatus::New,
            related_task: None,
            source: LessonSource::Auto,
            attribution: None,
            target_repo: None,
            target_domain: None,
            dedup_subject: None,
        }
    }
}

/// What RecordLesson did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "lesson", rename_all = "snake_case")]
pub enum Recorded {
    Recorded(Lesson),
    Deduplicated(Lesson),
    Disabled,
}

/// The filters of ListLessons; unset filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LessonFilter {
    pub lesson_type: Option<String>,
    pub status: Option<LessonStatus>,
    pub repo: Option<String>,
    pub work_item_id: Option<String>,
    pub source: Option<LessonSource>,
    pub attribution: Option<Attribution>,
    pub target_domain: Option<TargetDomain>,
}

/// One page of lessons, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonPage {
    pub lessons: Vec<Lesson>,
    /// The id to continue after, when there are more.
    pub next_after: Option<i64>,
}

/// The changes of UpdateLesson: `Some` for each field in the update mask;
/// for optional fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LessonPatch {
    pub status: Option<LessonStatus>,
    pub attribution: Option<Option<Attribution>>,
    pub target_repo: Option<Option<String>>,
    pub target_domain: Option<Option<TargetDomain>>,
    pub related_task: Option<Option<String>>,
    pub root_cause: Option<Option<String>>,
    pub suggestion: Option<Option<String>>,
}

impl LessonPatch {
    /// The update-mask paths a patch may name.
    pub const PATHS: &'static [&'static str] = &[
        "status",
        "attribution",
        "target_repo",
        "target_domain",
        "related_task",
        "root_cause",
        "suggestion",
    ];

    /// `lesson` with this patch applied and `update_time` stamped.
    pub fn apply(&self, lesson: &Lesson, now: UnixMicros) -> Lesson {
        let mut updated = lesson.clone();
        if let Some(status) = self.status {
            updated.status = status;
        }
        macro_rules! set {
            ($($field:ident),+) => { $(if let Some(value) = &self.$field { updated.$field = value.clone(); })+ };
        }
        set!(
            attribution,
            target_repo,
            target_domain,
            related_task,
            root_cause,
            suggestion
        );
        updated.update_time = Some(now);
        updated
    }
}

/// The journal's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonStats {
    pub total: i64,
    /// Most frequent first, then by type.
    pub by_type: Vec<(String, i64)>,
    /// In status order; statuses with no lesson left out.
    pub by_status: Vec<(LessonStatus, i64)>,
}

/// When an AUTO lesson is deduplicated: the oldest create_time an equal
/// lesson may have to suppress this one, or `None` when it is always written.
pub fn dedup_cutoff(source: LessonSource, window: Duration, now: UnixMicros) -> Option<UnixMicros> {
    match source {
        LessonSource::Manual => None,
        LessonSource::Auto if window.is_zero() => None,
        LessonSource::Auto => Some(now.minus(window)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("lesson {0} not found")]
    NotFound(i64),
    #[error("the lessons journal is switched off")]
    Disabled,
    #[error("{0}")]
    RequestIdReused(ReusedRequestId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for LessonError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<IdempotencyError> for LessonError {
    fn from(err: IdempotencyError) -> Self {
        match err {
            IdempotencyError::Reused(request_id) => Self::RequestIdReused(request_id),
            IdempotencyError::Store(err) => Self::Store(err),
        }
    }
}

impl ServiceError for LessonError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) | Self::RequestIdReused(_) => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Disabled => ErrorCode::FailedPrecondition,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::RequestIdReused(_) => "REQUEST_ID_REUSED",
            Self::NotFound(_) => "LESSON_NOT_FOUND",
            Self::Disabled => "LESSONS_DISABLED",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::NotFound(id) => vec![("id", id.to_string())],
            _ => Vec::new(),
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations.as_slice(),
            Self::RequestIdReused(reused) => reused.violations(),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_applies_only_to_auto_lessons_with_a_window() {
        let now = UnixMicros(10_000_000);
        let hour = Duration::from_secs(3600);
        let cases = [
            (LessonSource::Auto, hour, Some(now.minus(hour))),
            (
                LessonSource::Auto,
                Duration::from_secs(1),
                Some(UnixMicros(9_000_000)),
            ),
            (LessonSource::Auto, Duration::ZERO, None),
            (LessonSource::Manual, hour, None),
            (LessonSource::Manual, Duration::ZERO, None),
        ];
        for (source, window, expected) in cases {
            assert_eq!(
                dedup_cutoff(source, window, now),
                expected,
                "{source:?} {window:?}"
            );
        }
    }

    #[test]
    fn slugs_round_trip() {
        for status in LessonStatus::ALL {
            assert_eq!(LessonStatus::parse(status.as_str()), Some(*status));
        }
        for domain in TargetDomain::ALL {
            assert_eq!(TargetDomain::parse(domain.as_str()), Some(*domain));
        }
        assert_eq!(Attribution::parse("nobody"), None);
    }

    #[test]
    fn patch_sets_clears_and_stamps() {
        let mut lesson = sample();
        lesson.root_cause = Some("flaky".into());
        let patch = LessonPatch {
            status: Some(LessonStatus::Closed),
            attribution: Some(Some(Attribution::Platform)),
            root_cause: Some(None),
            ..LessonPatch::default()
        };
        let updated = patch.apply(&lesson, UnixMicros(99));
        assert_eq!(updated.status, LessonStatus::Closed);
        assert_eq!(updated.attribution, Some(Attribution::Platform));
        assert_eq!(updated.root_cause, None);
        assert_eq!(updated.update_time, Some(UnixMicros(99)));
        assert_eq!(
            updated.suggestion, lesson.suggestion,
            "fields outside the patch stay"
        );
        assert_eq!(updated.create_time, lesson.create_time);
    }

    fn sample() -> Lesson {
        Lesson {
            id: 1,
            create_time: UnixMicros(5),
            update_time: None,
            lesson_type: "gate_failure".into(),
            work_item_id: None,
            task_id: None,
            session_id: None,
            stage: None,
            agent: None,
            repo: None,
            root_cause: None,
            suggestion: Some("retry".into()),
            detail: None,
            status: LessonStatus::New,
            related_task: None,
            source: LessonSource::Auto,
            attribution: None,
            target_repo: None,
            target_domain: None,
        }
    }
}
