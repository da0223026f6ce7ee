//! `bosun tasks list|get|advance`.

use clap::{Args, Subcommand, ValueEnum};

use super::connect::Api;
use super::exit::ConsoleError;
use super::proto_enum;
use super::render::{self, Format, ago, clip, enum_name, fields, or_dash, status, table, when};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List tasks, last updated first.
    List(ListArgs),
    /// Show one task with its last gate result.
    Get {
        /// The task's id.
        id: i64,
    },
    /// Report the end of a task's stage session (an agent token).
    Advance {
        /// The task's id.
        id: i64,
        /// The stage session that ended.
        #[arg(long)]
        session: String,
        /// How it ended.
        #[arg(long, value_parser = proto_enum("bosun.v1.StageSessionOutcome"))]
        outcome: i32,
        /// What happened, for people.
        #[arg(long)]
        detail: Option<String>,
    },
}

/// The order of `tasks list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    /// Last updated first.
    Updated,
    /// Newest first.
    Created,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks of this project.
    #[arg(long, short)]
    project: Option<String>,
    /// Only tasks in this stage.
    #[arg(long, value_parser = proto_enum("bosun.v1.Stage"))]
    stage: Option<i32>,
    /// Only held tasks.
    #[arg(long)]
    held: bool,
    /// The order.
    #[arg(long, value_enum, default_value_t = Order::Updated)]
    order: Order,
    /// At most this many tasks.
    #[arg(long, default_value_t = 100)]
    limit: i32,
}

pub async fn run(api: &Api, format: Format, command: TasksCommand) -> Result<(), ConsoleError> {
    let mut tasks = api.tasks();
    match command {
        TasksCommand::List(args) => {
            let answer = tasks
                .list_tasks(pb::ListTasksRequest {
                    page_size: args.limit,
                    project_id: args.project.unwrap_or_default(),
                    stage: args.stage.unwrap_or_default(),
                    held: args.held.then_some(true),
                    order_by: match args.order {
                        Order::Updated => pb::TaskOrder::UpdateTime,
                        Order::Created => pb::TaskOrder::CreateTime,
                    }
                    .into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| task_table(&answer.tasks))
        }
        TasksCommand::Get { id } => {
            let task = tasks
                .get_task(pb::GetTaskRequest { id })
                .await?
                .into_inner();
            render::print(format, &task, task_details)
        }
        TasksCommand::Advance {
            id,
            session,
            outcome,
            detail,
        } => {
            let result = tasks
                .advance_task(pb::AdvanceTaskRequest {
                    task_id: id,
                    session_id: session,
                    outcome,
                    detail: detail.unwrap_or_default(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &result, |result| {
                let stage = |s| enum_name("bosun.v1.Stage", s);
                let mut line = format!(
                    "task {id}: {} ({} -> {})",
                    status(&enum_name("bosun.v1.AdvanceOutcome", result.outcome)),
                    stage(result.from_stage),
                    stage(result.to_stage)
                );
                if !result.session_id.is_empty() {
                    line.push_str(&format!(", session {}", result.session_id));
                }
                line.push('\n');
                line
            })
        }
    }
}

fn task_table(tasks: &[pb::Task]) -> String {
    let rows = tasks
        .iter()
        .map(|task| {
            vec![
                task.id.to_string(),
                task.project_id.clone(),
                status(&enum_name("bosun.v1.Stage", task.stage)),
                if task.held {
                    status(&format!(
                        "held:{}",
                        enum_name("bosun.v1.HoldReason", task.hold_reason)
                    ))
                } else {
                    "-".into()
                },
                task.work_item_id.clone(),
                or_dash(&task.stage_session_id),
                ago(task.update_time.as_ref()),
                clip(&task.title, 40),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "PROJECT",
            "STAGE",
            "HOLD",
            "WORK ITEM",
            "SESSION",
            "UPDATED",
            "TITLE",
        ],
        rows,
    )
}

fn task_details(task: &pb::Task) -> String {
    let mut text = fields(&[
        ("id", task.id.to_string()),
        ("project", task.project_id.clone()),
        ("title", task.title.clone()),
        ("work item", task.work_item_id.clone()),
        ("issue", task.tracker_issue_id.clone()),
        ("repo", task.repo.clone()),
        ("branch", task.branch.clone()),
        ("stage", status(&enum_name("bosun.v1.Stage", task.stage))),
        ("head", task.head_sha.clone()),
        ("session", task.stage_session_id.clone()),
        ("rollbacks", task.rollback_count.to_string()),
        (
            "held",
            if task.held {
                format!(
                    "{}: {}",
                    enum_name("bosun.v1.HoldReason", task.hold_reason),
                    task.hold_detail
                )
            } else {
                String::new()
            },
        ),
        ("created", when(task.create_time.as_ref())),
        ("updated", ago(task.update_time.as_ref())),
    ]);
    if let Some(gate) = &task.last_gate {
        text.push('\n');
        let rows = gate
            .checks
            .iter()
            .map(|check| {
                vec![
                    check.name.clone(),
                    status(&enum_name("bosun.v1.GateStatus", check.status)),
                    clip(&check.reason, 70),
                ]
            })
            .collect();
        text.push_str(&table(&["GATE CHECK", "STATUS", "DETAIL"], rows));
    }
    text
}
