//! The operator console: `bosun sessions|tasks|lessons|projects|events|
//! processors|reconciler|attention` speak gRPC to a bosun (the local one by
//! default) with the generated clients, and print tables for people or the
//! protobuf JSON/YAML mapping for scripts. One file per resource family;
//! [`render`] shows answers, [`exit`] turns failures into one line and an
//! exit code, [`connect`] builds the channel.

mod connect;
mod events;
pub mod exit;
mod lessons;
mod processors;
mod projects;
mod render;
mod sessions;
mod tasks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};

use connect::Api;
use exit::ConsoleError;
pub use render::Format;

/// Where bosun is and how to talk to it; every console command takes these.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// bosun's gRPC address (https:// for a bosun serving TLS).
    #[arg(
        long,
        global = true,
        env = "BOSUN_ADDR",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub addr: String,
    /// A bearer token (any role reads; changes need agent or admin).
    #[arg(long, global = true, env = "BOSUN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM CA certificate to trust besides the public roots (https://).
    #[arg(long, global = true, env = "BOSUN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate, for a bosun that asks for one (https://).
    #[arg(long, global = true, env = "BOSUN_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    #[arg(long, global = true, env = "BOSUN_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// A resource family's subcommands with the client options.
#[derive(Debug, Args)]
pub struct With<C: Subcommand> {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: C,
}

/// The console's commands (beside `serve`, `migrate` and `shim`).
#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Agent sessions: list, search, inspect, kill, restore.
    Sessions(With<sessions::SessionsCommand>),
    /// Sessions that need a person now, and why.
    Attention {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: sessions::AttentionArgs,
    },
    /// Delivery pipeline tasks: list, get, advance.
    Tasks(With<tasks::TasksCommand>),
    /// Lessons: list, record, update, stats.
    Lessons(With<lessons::LessonsCommand>),
    /// Projects under management: list, register, archive.
    Projects(With<projects::ProjectsCommand>),
    /// The change log: list the history, or watch it live.
    Events(With<events::EventsCommand>),
    /// Transcript processors: list, run, reset, token usage.
    Processors(With<processors::ProcessorsCommand>),
    /// The reconciler: status, run a pass.
    Reconciler(With<processors::ReconcilerCommand>),
}

impl ConsoleCommand {
    /// Runs the command on a small runtime of its own; failures print one
    /// line on stderr and give the exit code of [`exit`].
    pub fn run(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("bosun: cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.dispatch()) {
            Ok(()) => ExitCode::SUCCESS,
            // The reader went away (`bosun events watch | head`): done.
            Err(ConsoleError::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("bosun: {err}");
                err.exit_code()
            }
        }
    }

    async fn dispatch(self) -> Result<(), ConsoleError> {
        match self {
            Self::Events(With { client, command }) => events::run(&client, command).await,
            Self::Sessions(With { client, command }) => {
                sessions::run(&Api::connect(&client).await?, client.output, command).await
            }
            Self::Attention { client, args } => {
                sessions::attention(&Api::connect(&client).await?, client.output, args).await
            }
            Self::Tasks(With { client, command }) => {
                tasks::run(&Api::connect(&client).await?, client.output, command).await
            }
            Self::Lessons(With { client, command }) => {
                lessons::run(&Api::connect(&client).await?, client.output, command).await
            }
            Self::Projects(With { client, command }) => {
                projects::run(&Api::connect(&client).await?, client.output, command).await
            }
            Self::Processors(With { client, command }) => {
                processors::run(&Api::connect(&client).await?, client.output, command).await
            }
            Self::Reconciler(With { client, command }) => {
                processors::run_reconciler(&Api::connect(&client).await?, client.output, command)
                    .await
            }
        }
    }
}

/// A command-line value parser for a proto enum: its values' short names
/// (`needs-input` for SESSION_STATE_NEEDS_INPUT; `needs_input` is taken
/// too), offered to completions and checked by clap, as the enum number.
/// The names are read from the descriptors only when this argument is
/// parsed or shown, so `bosun serve` never decodes them (the decoded
/// descriptor pool is a few MB that would stay for the server's life).
pub fn proto_enum(full_name: &'static str) -> ProtoEnum {
    ProtoEnum { full_name }
}

/// See [`proto_enum`].
#[derive(Debug, Clone, Copy)]
pub struct ProtoEnum {
    full_name: &'static str,
}

impl ProtoEnum {
    /// A value's short name, with its snake_case alias, as clap offers it.
    fn choice(name: &str) -> PossibleValue {
        PossibleValue::new(name.to_string()).alias(name.replace('-', "_"))
    }
}

impl TypedValueParser for ProtoEnum {
    type Value = i32;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<i32, clap::Error> {
        let values = render::enum_values(self.full_name);
        let choices = values.iter().map(|(name, _)| Self::choice(name));
        // clap's own parser checks the value (and words the error).
        let name = PossibleValuesParser::new(choices).parse_ref(cmd, arg, value)?;
        Ok(values
            .into_iter()
            .find(|(known, _)| *known == name)
            .map_or(0, |(_, number)| number))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let values = render::enum_values(self.full_name);
        Some(Box::new(
            values.into_iter().map(|(name, _)| Self::choice(&name)),
        ))
    }
}
