//! `bosun events list|watch`: the change log, one line per event. `watch`
//! follows the log and, when the stream breaks (bosun restarting, a network
//! cut), calls Watch again after the last resume_seq it received, so every
//! event is printed exactly once and in order across reconnects.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::ClientArgs;
use super::connect::Api;
use super::exit::ConsoleError;
use super::render::{self, Format, enum_name, json_value, when};
use crate::pb::{self, event::Payload};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Page through the history, oldest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Only events after this seq (0: from the oldest kept).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Follow the log live, resuming after a disconnect.
    Watch {
        #[command(flatten)]
        filter: FilterArgs,
        /// Start after this seq (0: from the oldest kept) [default: the
        /// current head, i.e. only new events].
        #[arg(long)]
        after: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only events whose type starts with this, e.g. session. (repeatable).
    #[arg(long = "type", value_name = "PREFIX")]
    types: Vec<String>,
    /// Only events of this session.
    #[arg(long)]
    session: Option<String>,
    /// Only events of this project.
    #[arg(long, short)]
    project: Option<String>,
}

impl FilterArgs {
    fn to_pb(&self) -> pb::EventFilter {
        pb::EventFilter {
            event_type_prefixes: self.types.clone(),
            project_id: self.project.clone().unwrap_or_default(),
            session_id: self.session.clone().unwrap_or_default(),
            task_id: 0,
        }
    }
}

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub async fn run(client: &ClientArgs, command: EventsCommand) -> Result<(), ConsoleError> {
    match command {
        EventsCommand::List {
            filter,
            after,
            limit,
        } => {
            let api = Api::connect(client).await?;
            let answer = api
                .events()
                .list_events(pb::ListEventsRequest {
                    after_seq: after,
                    filter: Some(filter.to_pb()),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            render::print(client.output, &answer, |answer| {
                answer.events.iter().map(line).collect()
            })
        }
        EventsCommand::Watch { filter, after } => {
            let api = Api::connect(client).await?;
            let after = match after {
                Some(after) => after,
                None => {
                    api.events()
                        .get_head(pb::GetHeadRequest {})
                        .await?
                        .into_inner()
                        .head_seq
                }
            };
            watch(&Api::lazy(client)?, client.output, filter.to_pb(), after).await
        }
    }
}

/// Follows the log after `after` until an error that a new call would not
/// cure (bad filters, refused token, history compacted past the cursor).
async fn watch(
    api: &Api,
    format: Format,
    filter: pb::EventFilter,
    mut after: i64,
) -> Result<(), ConsoleError> {
    let mut out = anstream::stdout();
    let mut retry = RETRY_FIRST;
    loop {
        let request = pb::WatchRequest {
            after_seq: after,
            filter: Some(filter.clone()),
        };
        let broken = match api.events().watch(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => {
                            for event in &message.events {
                                let text = match format {
                                    Format::Json | Format::Yaml => {
                                        format!("{}\n", json_value(event))
                                    }
                                    Format::Table => line(event),
                                };
                                out.write_all(text.as_bytes())?;
                            }
                            out.flush()?;
                            after = message.resume_seq.max(after);
                            retry = RETRY_FIRST;
                        }
                        Ok(None) => break tonic::Status::unavailable("the stream ended"),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        if !resumable(&broken) {
            return Err(broken.into());
        }
        eprintln!(
            "bosun: watch interrupted ({}); resuming after seq {after}",
            ConsoleError::from(broken)
        );
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// Whether calling Watch again may succeed: the server went away or is
/// stopping, or the connection broke.
fn resumable(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal | Code::Aborted
    )
}

/// One event on one line: seq, time, type, entity, and what changed.
fn line(event: &pb::Event) -> String {
    let entity = format!("{}/{}", event.entity_kind, event.entity_id);
    format!(
        "{:>6}  {}  {:<28}  {:<18}  {}\n",
        event.seq,
        when(event.create_time.as_ref()),
        event.event_type,
        entity,
        summary(event.payload.as_ref())
    )
    .trim_end()
    .to_string()
        + "\n"
}

fn summary(payload: Option<&Payload>) -> String {
    let name = enum_name;
    match payload {
        Some(Payload::Session(s)) => {
            let mut text = format!("state={}", name("bosun.v1.SessionState", s.state));
            if s.termination_reason != 0 {
                text.push_str(&format!(
                    " reason={}",
                    name("bosun.v1.TerminationReason", s.termination_reason)
                ));
            }
            text
        }
        Some(Payload::PullRequest(pr)) => format!(
            "#{} {} ci={}",
            pr.number,
            name("bosun.v1.PullRequestState", pr.state),
            name("bosun.v1.PullRequestCiState", pr.ci_state)
        ),
        Some(Payload::Check(c)) => format!(
            "{} {} {}",
            c.name,
            name("bosun.v1.CheckStatus", c.status),
            c.commit_sha.get(..7).unwrap_or(&c.commit_sha)
        ),
        Some(Payload::Reaction(r)) => format!(
            "{} {} for {}",
            r.key,
            name("bosun.v1.ReactionStatus", r.status),
            name("bosun.v1.ReactionTarget", r.target)
        ),
        Some(Payload::Task(t)) => {
            let mut text = format!("stage={}", name("bosun.v1.Stage", t.stage));
            if t.held {
                text.push_str(&format!(
                    " held={}",
                    name("bosun.v1.HoldReason", t.hold_reason)
                ));
            }
            text
        }
        Some(Payload::Lesson(l)) => format!(
            "{} {}",
            l.lesson_type,
            name("bosun.v1.LessonStatus", l.status)
        ),
        Some(Payload::Project(p)) => p.display_name.clone(),
        Some(Payload::ProcessorRun(r)) => format!(
            "{} {}",
            r.processor,
            name("bosun.v1.ProcessorRunState", r.state)
        ),
        Some(Payload::ReconcilerRun(r)) => name("bosun.v1.ReconcilerRunState", r.state).to_string(),
        _ => String::new(),
    }
}
