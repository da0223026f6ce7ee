//! `bosun lessons list|record|update|stats`.

use clap::{Args, Subcommand};

use super::connect::Api;
use super::exit::ConsoleError;
use super::proto_enum;
use super::render::{self, Format, ago, clip, enum_name, or_dash, status, table};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum LessonsCommand {
    /// List lessons, newest first.
    List(ListArgs),
    /// Record a lesson by hand (an agent or admin token).
    Record(RecordArgs),
    /// Change a lesson's status, attribution or notes (an admin token);
    /// only the options given change.
    Update(UpdateArgs),
    /// Counts by type and status.
    Stats,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only lessons of this type, e.g. gate_failure.
    #[arg(long = "type")]
    lesson_type: Option<String>,
    /// Only lessons in this status.
    #[arg(long, value_parser = proto_enum("bosun.v1.LessonStatus"))]
    status: Option<i32>,
    /// Only lessons of this repository.
    #[arg(long)]
    repo: Option<String>,
    /// Only lessons of this work item.
    #[arg(long)]
    work_item: Option<String>,
    /// At most this many lessons.
    #[arg(long, default_value_t = 100)]
    limit: i32,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The lesson's type, a slug such as flaky_test.
    #[arg(long = "type")]
    lesson_type: String,
    /// The work item it is about, e.g. SHOP-12.
    #[arg(long)]
    work_item: Option<String>,
    /// The repository, owner/name.
    #[arg(long)]
    repo: Option<String>,
    /// The stage it happened in.
    #[arg(long)]
    stage: Option<String>,
    /// The session it happened in.
    #[arg(long)]
    session: Option<String>,
    /// What went wrong, at the root.
    #[arg(long)]
    root_cause: Option<String>,
    /// What would prevent it.
    #[arg(long)]
    suggestion: Option<String>,
    /// Anything else.
    #[arg(long)]
    detail: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The lesson's id.
    id: i64,
    /// The new status.
    #[arg(long, value_parser = proto_enum("bosun.v1.LessonStatus"))]
    status: Option<i32>,
    /// Who should act on it.
    #[arg(long, value_parser = proto_enum("bosun.v1.Attribution"))]
    attribution: Option<i32>,
    /// The area it improves.
    #[arg(long, value_parser = proto_enum("bosun.v1.TargetDomain"))]
    target_domain: Option<i32>,
    /// The repository a fix belongs in (empty clears it).
    #[arg(long)]
    target_repo: Option<String>,
    /// The task that takes it up (empty clears it).
    #[arg(long)]
    related_task: Option<String>,
    /// What went wrong, at the root (empty clears it).
    #[arg(long)]
    root_cause: Option<String>,
    /// What would prevent it (empty clears it).
    #[arg(long)]
    suggestion: Option<String>,
}

pub async fn run(api: &Api, format: Format, command: LessonsCommand) -> Result<(), ConsoleError> {
    let mut lessons = api.lessons();
    match command {
        LessonsCommand::List(args) => {
            let answer = lessons
                .list_lessons(pb::ListLessonsRequest {
                    page_size: args.limit,
                    lesson_type: args.lesson_type.unwrap_or_default(),
                    status: args.status.unwrap_or_default(),
                    repo: args.repo.unwrap_or_default(),
                    work_item_id: args.work_item.unwrap_or_default(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| lesson_table(&answer.lessons))
        }
        LessonsCommand::Record(args) => {
            let lesson = pb::Lesson {
                lesson_type: args.lesson_type,
                work_item_id: args.work_item.unwrap_or_default(),
                repo: args.repo.unwrap_or_default(),
                stage: args.stage.unwrap_or_default(),
                session_id: args.session.unwrap_or_default(),
                root_cause: args.root_cause.unwrap_or_default(),
                suggestion: args.suggestion.unwrap_or_default(),
                detail: args.detail.unwrap_or_default(),
                ..Default::default()
            };
            let answer = lessons
                .record_lesson(pb::RecordLessonRequest {
                    request_id: String::new(),
                    lesson: Some(lesson),
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| {
                let outcome = enum_name("bosun.v1.RecordOutcome", answer.outcome);
                match &answer.lesson {
                    Some(lesson) => format!("lesson {}: {outcome}\n", lesson.id),
                    None => format!("{outcome}: the lesson journal is switched off\n"),
                }
            })
        }
        LessonsCommand::Update(args) => {
            let (lesson, paths) = update(args);
            let lesson = lessons
                .update_lesson(pb::UpdateLessonRequest {
                    lesson: Some(lesson),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner();
            render::print(format, &lesson, |lesson| {
                lesson_table(std::slice::from_ref(lesson))
            })
        }
        LessonsCommand::Stats => {
            let stats = lessons
                .get_lesson_stats(pb::GetLessonStatsRequest {})
                .await?
                .into_inner();
            render::print(format, &stats, |stats| {
                let mut rows: Vec<Vec<String>> = stats
                    .by_type
                    .iter()
                    .map(|t| vec!["type".into(), t.lesson_type.clone(), t.count.to_string()])
                    .collect();
                rows.extend(stats.by_status.iter().map(|s| {
                    vec![
                        "status".into(),
                        enum_name("bosun.v1.LessonStatus", s.status),
                        s.count.to_string(),
                    ]
                }));
                rows.push(vec!["total".into(), "-".into(), stats.total.to_string()]);
                let mut text = table(&["BY", "VALUE", "COUNT"], rows);
                if !stats.enabled {
                    text.push_str("(the lesson journal is switched off)\n");
                }
                text
            })
        }
    }
}

/// The lesson to send and the mask naming the options given (an empty
/// mask is refused by bosun with INVALID_ARGUMENT naming update_mask).
fn update(args: UpdateArgs) -> (pb::Lesson, Vec<String>) {
    let mut paths = Vec::new();
    let mut mark = |given: bool, path: &str| {
        if given {
            paths.push(path.to_string());
        }
    };
    mark(args.status.is_some(), "status");
    mark(args.attribution.is_some(), "attribution");
    mark(args.target_domain.is_some(), "target_domain");
    mark(args.target_repo.is_some(), "target_repo");
    mark(args.related_task.is_some(), "related_task");
    mark(args.root_cause.is_some(), "root_cause");
    mark(args.suggestion.is_some(), "suggestion");
    let lesson = pb::Lesson {
        id: args.id,
        status: args.status.unwrap_or_default(),
        attribution: args.attribution.unwrap_or_default(),
        target_domain: args.target_domain.unwrap_or_default(),
        target_repo: args.target_repo.unwrap_or_default(),
        related_task: args.related_task.unwrap_or_default(),
        root_cause: args.root_cause.unwrap_or_default(),
        suggestion: args.suggestion.unwrap_or_default(),
        ..Default::default()
    };
    (lesson, paths)
}

fn lesson_table(lessons: &[pb::Lesson]) -> String {
    let rows = lessons
        .iter()
        .map(|lesson| {
            vec![
                lesson.id.to_string(),
                lesson.lesson_type.clone(),
                status(&enum_name("bosun.v1.LessonStatus", lesson.status)),
                enum_name("bosun.v1.LessonSource", lesson.source),
                or_dash(&lesson.work_item_id),
                or_dash(&lesson.repo),
                ago(lesson.create_time.as_ref()),
                or_dash(&clip(&lesson.root_cause, 50)),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TYPE",
            "STATUS",
            "SOURCE",
            "WORK ITEM",
            "REPO",
            "CREATED",
            "ROOT CAUSE",
        ],
        rows,
    )
}
