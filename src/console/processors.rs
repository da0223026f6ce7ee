//! `bosun processors list|run|reset|usage` and `bosun reconciler
//! status|run`: the two background machines an operator looks after.

use clap::{Args, Subcommand};

use super::connect::Api;
use super::exit::ConsoleError;
use super::proto_enum;
use super::render::{self, Format, ago, clip, enum_name, fields, or_dash, status, table};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum ProcessorsCommand {
    /// List the processors with their last and next pass.
    List,
    /// Run one pass of a processor now and show it (an admin token).
    Run {
        /// The processor's name, e.g. usage.
        name: String,
    },
    /// Forget a processor's per-transcript state so it reads them again
    /// (an admin token).
    Reset(ResetArgs),
    /// Token usage counted from transcripts, by model and in total.
    Usage(UsageArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The processor's name.
    name: String,
    /// Only these transcripts (repeatable) [default: all].
    #[arg(long = "transcript", value_name = "PATH")]
    transcripts: Vec<String>,
    /// Only quarantined transcripts.
    #[arg(long)]
    quarantined_only: bool,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only the transcript(s) of this session.
    #[arg(long)]
    session: Option<String>,
    /// Only this model.
    #[arg(long)]
    model: Option<String>,
    /// Only transcripts of this owner.
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReconcilerCommand {
    /// Settings, the last pass, totals and recent unblocks.
    Status,
    /// Run one pass now and show it (an admin token).
    Run {
        /// Only this side [default: both].
        #[arg(long, value_parser = proto_enum("bosun.v1.ReconcilerSide"))]
        side: Option<i32>,
    },
}

pub async fn run(
    api: &Api,
    format: Format,
    command: ProcessorsCommand,
) -> Result<(), ConsoleError> {
    let mut processors = api.processors();
    match command {
        ProcessorsCommand::List => {
            let answer = processors
                .list_processors(pb::ListProcessorsRequest::default())
                .await?
                .into_inner();
            render::print(format, &answer, |answer| {
                let rows = answer
                    .processors
                    .iter()
                    .map(|p| {
                        let last = p.last_run.as_ref().map_or("-".to_string(), |run| {
                            format!(
                                "{} {}",
                                status(&enum_name("bosun.v1.ProcessorRunState", run.state)),
                                ago(p.last_run_time.as_ref())
                            )
                        });
                        vec![
                            p.name.clone(),
                            if p.enabled { "yes" } else { "no" }.into(),
                            if p.running { "yes" } else { "no" }.into(),
                            last,
                            ago(p.next_run_time.as_ref()),
                            p.quarantined.to_string(),
                            or_dash(&clip(&p.lag_detail, 50)),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAME",
                        "ENABLED",
                        "RUNNING",
                        "LAST RUN",
                        "NEXT RUN",
                        "QUARANTINED",
                        "LAG",
                    ],
                    rows,
                )
            })
        }
        ProcessorsCommand::Run { name } => {
            let run = processors
                .run_processor(pb::RunProcessorRequest { name })
                .await?
                .into_inner();
            render::print(format, &run, processor_run)
        }
        ProcessorsCommand::Reset(args) => {
            let answer = processors
                .reset_processor_state(pb::ResetProcessorStateRequest {
                    processor: args.name.clone(),
                    transcripts: args.transcripts,
                    quarantined_only: args.quarantined_only,
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| {
                format!(
                    "{}: forgot the state of {} transcript(s)\n",
                    args.name, answer.forgotten
                )
            })
        }
        ProcessorsCommand::Usage(args) => {
            let answer = processors
                .get_usage(pb::GetUsageRequest {
                    session_id: args.session.unwrap_or_default(),
                    model: args.model.unwrap_or_default(),
                    owner: args.owner.unwrap_or_default(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| {
                let row = |label: String, usage: Option<&pb::TokenUsage>| {
                    let usage = usage.cloned().unwrap_or_default();
                    vec![
                        label,
                        usage.input_tokens.to_string(),
                        usage.output_tokens.to_string(),
                        usage.cache_creation_input_tokens.to_string(),
                        usage.cache_read_input_tokens.to_string(),
                        usage.messages.to_string(),
                    ]
                };
                let mut rows: Vec<Vec<String>> = answer
                    .by_model
                    .iter()
                    .map(|m| row(m.model.clone(), m.usage.as_ref()))
                    .collect();
                rows.push(row("total".into(), answer.total.as_ref()));
                table(
                    &[
                        "MODEL",
                        "INPUT",
                        "OUTPUT",
                        "CACHE WRITE",
                        "CACHE READ",
                        "MESSAGES",
                    ],
                    rows,
                )
            })
        }
    }
}

fn processor_run(run: &pb::ProcessorRun) -> String {
    fields(&[
        ("run", run.id.to_string()),
        ("processor", run.processor.clone()),
        (
            "state",
            status(&enum_name("bosun.v1.ProcessorRunState", run.state)),
        ),
        ("scanned", run.scanned.to_string()),
        ("processed", run.processed.to_string()),
        ("skipped", run.skipped.to_string()),
        ("errors", run.errors.to_string()),
        ("deferred", run.deferred.to_string()),
        ("forgotten", run.forgotten.to_string()),
        ("items", run.items.to_string()),
        ("error", run.error.clone()),
    ])
}

pub async fn run_reconciler(
    api: &Api,
    format: Format,
    command: ReconcilerCommand,
) -> Result<(), ConsoleError> {
    let mut reconciler = api.reconciler();
    match command {
        ReconcilerCommand::Status => {
            let answer = reconciler
                .get_status(pb::GetStatusRequest {})
                .await?
                .into_inner();
            render::print(format, &answer, |status_answer| {
                let settings = status_answer.settings.clone().unwrap_or_default();
                let totals = status_answer.totals.unwrap_or_default();
                let mut text = fields(&[
                    ("gate side", on_off(settings.gate_side_enabled)),
                    ("tracker side", on_off(settings.tracker_side_enabled)),
                    ("running", status_answer.running.to_string()),
                    ("next pass", ago(status_answer.next_run_time.as_ref())),
                    (
                        "passes",
                        format!("{} ({} failed)", totals.passes, totals.failed_passes),
                    ),
                ]);
                if let Some(run) = &status_answer.last_run {
                    text.push_str("\nlast pass:\n");
                    text.push_str(&reconciler_run(run));
                }
                text
            })
        }
        ReconcilerCommand::Run { side } => {
            let run = reconciler
                .run_once(pb::RunOnceRequest {
                    side: side.unwrap_or_default(),
                })
                .await?
                .into_inner();
            render::print(format, &run, reconciler_run)
        }
    }
}

fn on_off(enabled: bool) -> String {
    if enabled { "enabled" } else { "disabled" }.into()
}

fn reconciler_run(run: &pb::ReconcilerRun) -> String {
    let side = |ran: bool, counts: &Option<pb::ReconcilerSideCounts>| {
        if !ran {
            return "did not run".to_string();
        }
        let c = counts.unwrap_or_default();
        format!(
            "scanned {}, advanced {}, replayed {}, skipped {}, errors {}",
            c.scanned, c.advanced, c.replayed, c.skipped, c.errors
        )
    };
    fields(&[
        ("run", run.id.to_string()),
        (
            "state",
            status(&enum_name("bosun.v1.ReconcilerRunState", run.state)),
        ),
        ("started", ago(run.start_time.as_ref())),
        ("gate side", side(run.gate_side_ran, &run.gate_side)),
        (
            "tracker side",
            side(run.tracker_side_ran, &run.tracker_side),
        ),
        ("actions", run.actions.len().to_string()),
        ("error", run.error.clone()),
    ])
}
