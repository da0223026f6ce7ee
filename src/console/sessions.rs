//! `bosun sessions list|get|kill|restore` and `bosun attention`.

use clap::{Args, Subcommand, ValueEnum};

use super::connect::Api;
use super::exit::ConsoleError;
use super::proto_enum;
use super::render::{self, Format, ago, clip, enum_name, fields, or_dash, status, table, when};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, latest activity first; finished ones only with --all.
    List(ListArgs),
    /// Show one session with its pull request, checks and open reactions.
    Get {
        /// The session's id, e.g. mer-12.
        id: String,
    },
    /// Terminate a session (an agent or admin token).
    Kill {
        /// The session's id.
        id: String,
        /// Why [default: manually-killed].
        #[arg(long, value_parser = proto_enum("bosun.v1.TerminationReason"))]
        reason: Option<i32>,
        /// A note kept as the termination detail.
        #[arg(long)]
        detail: Option<String>,
    },
    /// Bring a done or terminated session back (an admin token).
    Restore {
        /// The session's id.
        id: String,
    },
}

/// The order of `sessions list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    /// Latest activity first.
    Activity,
    /// Newest first.
    Created,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only sessions of this project.
    #[arg(long, short)]
    project: Option<String>,
    /// Only sessions in this state.
    #[arg(long, value_parser = proto_enum("bosun.v1.SessionState"))]
    state: Option<i32>,
    /// Only sessions with this display status.
    #[arg(long, value_parser = proto_enum("bosun.v1.DisplayStatus"))]
    status: Option<i32>,
    /// Text to find in the id, branch, issue id or pull request title.
    #[arg(long, short)]
    search: Option<String>,
    /// Only the session(s) of this pull request number.
    #[arg(long)]
    pr: Option<i64>,
    /// Only sessions on this branch.
    #[arg(long)]
    branch: Option<String>,
    /// Only sessions of this tracker issue.
    #[arg(long)]
    issue: Option<String>,
    /// Also list finished (done and terminated) sessions.
    #[arg(long, short)]
    all: bool,
    /// The order.
    #[arg(long, value_enum, default_value_t = Order::Activity)]
    order: Order,
    /// At most this many sessions.
    #[arg(long, default_value_t = 100)]
    limit: i32,
}

#[derive(Debug, Args)]
pub struct AttentionArgs {
    /// Only sessions of this project.
    #[arg(long, short)]
    project: Option<String>,
}

pub async fn run(api: &Api, format: Format, command: SessionsCommand) -> Result<(), ConsoleError> {
    let mut sessions = api.sessions();
    match command {
        SessionsCommand::List(args) => {
            let request = pb::ListSessionsRequest {
                page_size: args.limit,
                project_id: args.project.unwrap_or_default(),
                state: args.state.unwrap_or_default(),
                display_status: args.status.unwrap_or_default(),
                search: args.search.unwrap_or_default(),
                pull_request_number: args.pr.unwrap_or_default(),
                branch: args.branch.unwrap_or_default(),
                issue_id: args.issue.unwrap_or_default(),
                finished: (!args.all).then_some(false),
                order_by: match args.order {
                    Order::Activity => pb::SessionOrder::LastActivity,
                    Order::Created => pb::SessionOrder::CreateTime,
                }
                .into(),
                ..Default::default()
            };
            let answer = sessions.list_sessions(request).await?.into_inner();
            render::print(format, &answer, |answer| session_table(&answer.sessions))
        }
        SessionsCommand::Get { id } => {
            let session = sessions
                .get_session(pb::GetSessionRequest { session_id: id })
                .await?
                .into_inner();
            render::print(format, &session, session_details)
        }
        SessionsCommand::Kill { id, reason, detail } => {
            let answer = sessions
                .kill_session(pb::KillSessionRequest {
                    session_id: id,
                    reason: reason.unwrap_or_default(),
                    detail: detail.unwrap_or_default(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| {
                let session = answer.session.clone().unwrap_or_default();
                let state = enum_name("bosun.v1.SessionState", session.state);
                if answer.already_terminal {
                    format!("{} was already {state}: nothing changed\n", session.id)
                } else {
                    format!("{} is {state}\n", session.id)
                }
            })
        }
        SessionsCommand::Restore { id } => {
            let session = sessions
                .restore_session(pb::RestoreSessionRequest {
                    session_id: id,
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &session, |session| {
                format!(
                    "{} restored: {} (a runner launches it again)\n",
                    session.id,
                    enum_name("bosun.v1.SessionState", session.state)
                )
            })
        }
    }
}

pub async fn attention(api: &Api, format: Format, args: AttentionArgs) -> Result<(), ConsoleError> {
    let answer = api
        .sessions()
        .list_attention(pb::ListAttentionRequest {
            project_id: args.project.unwrap_or_default(),
        })
        .await?
        .into_inner();
    render::print(format, &answer, |answer| {
        let rows = answer
            .items
            .iter()
            .map(|item| {
                let session = item.session.clone().unwrap_or_default();
                let reasons: Vec<String> = item
                    .reasons
                    .iter()
                    .map(|r| status(&enum_name("bosun.v1.AttentionReason", *r)))
                    .collect();
                let detail = if item.hold_detail.is_empty() {
                    item.reactions
                        .first()
                        .map(|r| format!("{}: {}", r.key, clip(&r.message, 60)))
                        .unwrap_or_default()
                } else {
                    format!(
                        "task {}: {}",
                        item.held_task_id,
                        clip(&item.hold_detail, 60)
                    )
                };
                vec![
                    session.id.clone(),
                    status(&enum_name("bosun.v1.DisplayStatus", session.display_status)),
                    reasons.join(","),
                    pull_request(&session),
                    ago(session.last_activity_time.as_ref()),
                    or_dash(&detail),
                ]
            })
            .collect();
        table(
            &["SESSION", "STATUS", "WHY", "PR", "ACTIVITY", "DETAIL"],
            rows,
        )
    })
}

fn session_table(sessions: &[pb::Session]) -> String {
    let rows = sessions
        .iter()
        .map(|session| {
            vec![
                session.id.clone(),
                status(&enum_name("bosun.v1.DisplayStatus", session.display_status)),
                or_dash(&session.branch),
                pull_request(session),
                or_dash(&session.issue_id),
                ago(session.last_activity_time.as_ref()),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "BRANCH", "PR", "ISSUE", "ACTIVITY"], rows)
}

/// "#42 passing" for a session with a pull request, "-" without.
fn pull_request(session: &pb::Session) -> String {
    match &session.pull_request {
        Some(pr) => {
            let ci = enum_name("bosun.v1.PullRequestCiState", pr.ci_state);
            let state = enum_name("bosun.v1.PullRequestState", pr.state);
            if pr.state == pb::PullRequestState::Open as i32 {
                format!("#{} {}", pr.number, status(&ci))
            } else {
                format!("#{} {}", pr.number, status(&state))
            }
        }
        None => "-".into(),
    }
}

fn session_details(session: &pb::Session) -> String {
    let mut text = fields(&[
        ("id", session.id.clone()),
        ("project", session.project_id.clone()),
        (
            "status",
            status(&enum_name("bosun.v1.DisplayStatus", session.display_status)),
        ),
        ("state", enum_name("bosun.v1.SessionState", session.state)),
        (
            "termination",
            if session.termination_reason == 0 {
                String::new()
            } else {
                format!(
                    "{} {}",
                    enum_name("bosun.v1.TerminationReason", session.termination_reason),
                    session.termination_detail
                )
            },
        ),
        ("alive", session.is_alive.to_string()),
        ("harness", enum_name("bosun.v1.Harness", session.harness)),
        ("role", enum_name("bosun.v1.Role", session.role)),
        (
            "task",
            if session.task_id > 0 {
                session.task_id.to_string()
            } else {
                String::new()
            },
        ),
        ("issue", session.issue_id.clone()),
        ("branch", session.branch.clone()),
        ("workspace", session.workspace_path.clone()),
        ("runtime", session.runtime_handle_id.clone()),
        ("agent session", session.agent_session_id.clone()),
        ("created", when(session.create_time.as_ref())),
        ("last activity", ago(session.last_activity_time.as_ref())),
        (
            "tokens",
            session
                .usage
                .as_ref()
                .map(|u| format!("{} in, {} out", u.input_tokens, u.output_tokens))
                .unwrap_or_default(),
        ),
    ]);
    if let Some(pr) = &session.pull_request {
        text.push('\n');
        text.push_str(&fields(&[
            ("pull request", format!("#{} {}", pr.number, pr.title)),
            ("url", pr.url.clone()),
            ("pr state", enum_name("bosun.v1.PullRequestState", pr.state)),
            (
                "review",
                enum_name("bosun.v1.ReviewDecision", pr.review_decision),
            ),
            (
                "ci",
                status(&enum_name("bosun.v1.PullRequestCiState", pr.ci_state)),
            ),
            (
                "mergeable",
                enum_name("bosun.v1.Mergeability", pr.mergeability),
            ),
            ("head", pr.head_sha.clone()),
        ]));
        if !pr.checks.is_empty() {
            text.push('\n');
            let rows = pr
                .checks
                .iter()
                .map(|check| {
                    vec![
                        check.name.clone(),
                        status(&enum_name("bosun.v1.CheckStatus", check.status)),
                        ago(check.update_time.as_ref().or(check.create_time.as_ref())),
                        or_dash(&clip(check.log_tail.lines().last().unwrap_or(""), 60)),
                    ]
                })
                .collect();
            text.push_str(&table(&["CHECK", "STATUS", "UPDATED", "LOG"], rows));
        }
    }
    text
}
