//! The command line: `bosun serve`, `bosun migrate` and `bosun shim`, the
//! operator console's commands (see [`crate::console`]) and `bosun
//! completions`. A configuration that cannot be used exits with code 2 after
//! one clear line on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat, Overrides};
use crate::console::ConsoleCommand;
use crate::storage::postgres::{self, DatabaseUrl};
use crate::{server, storage, telemetry, webhooks};

#[derive(Debug, Parser)]
#[command(
    name = "bosun",
    version,
    about = "A gRPC control plane for fleets of AI coding agents"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API, and the webhook shim and metrics over HTTP.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Run the webhook shim alone, in front of a bosun reached over gRPC.
    Shim(ShimArgs),
    #[command(flatten)]
    Console(ConsoleCommand),
    /// Print a shell completion script (e.g. `bosun completions bash >
    /// /etc/bash_completion.d/bosun`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
    /// A TOML configuration file (see bosun.example.toml).
    #[arg(long, env = "BOSUN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the database lives [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A shared PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DB) instead
    /// of SQLite in the data dir; several replicas may serve one database.
    #[arg(long, value_name = "URL")]
    database_url: Option<DatabaseUrl>,
    /// The gRPC listen address, IP:PORT [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// The HTTP listen address, IP:PORT [default: 127.0.0.1:7071].
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Args)]
struct MigrateArgs {
    /// A TOML configuration file (see bosun.example.toml).
    #[arg(long, env = "BOSUN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the database lives [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Migrate this PostgreSQL database (postgres://...) instead of SQLite
    /// in the data dir [default: database_url].
    #[arg(long, value_name = "URL")]
    database_url: Option<DatabaseUrl>,
}

#[derive(Debug, Clone, Args)]
struct ShimArgs {
    /// bosun's gRPC address, e.g. http://bosun.internal:7070 (https:// when
    /// bosun serves TLS).
    #[arg(long, env = "BOSUN_SHIM_UPSTREAM", value_name = "URL")]
    upstream: String,
    /// A PEM CA certificate to trust for an https:// upstream, besides the
    /// public roots (a bosun with a private CA) [default:
    /// webhooks.upstream_ca_file].
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// A TOML configuration file (see bosun.example.toml): the [webhooks]
    /// section, and [reconciler.plane] to name Plane work items.
    #[arg(long, env = "BOSUN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the shim keeps its dedup memory [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the dedup memory in this shared PostgreSQL database
    /// (postgres://...) instead, as bosun's replicas on it do [default:
    /// database_url].
    #[arg(long, value_name = "URL")]
    database_url: Option<DatabaseUrl>,
    /// The HTTP listen address, IP:PORT [default: 127.0.0.1:7071].
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

impl ShimArgs {
    fn load(&self) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            http_addr: self.http_addr,
            log_format: self.log_format,
            ..Overrides::default()
        };
        let mut config = Config::load_unchecked(self.config.as_deref(), Config::env(), &overrides)?;
        if let Some(ca) = &self.upstream_ca {
            config.webhooks.upstream_ca_file = ca.clone();
        }
        config.validate_settings()?;
        if !["http://", "https://"]
            .iter()
            .any(|scheme| self.upstream.starts_with(scheme))
        {
            return Err(ConfigError::Invalid(format!(
                "--upstream must be an http:// or https:// URL, not {:?}",
                self.upstream
            )));
        }
        let ca_file = &config.webhooks.upstream_ca_file;
        if !ca_file.as_os_str().is_empty() && !self.upstream.starts_with("https://") {
            return Err(ConfigError::Invalid(format!(
                "an upstream CA ({}) needs an https:// --upstream",
                ca_file.display()
            )));
        }
        Ok(config)
    }
}

impl ServeArgs {
    fn load(&self) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            log_format: self.log_format,
        };
        Config::load(self.config.as_deref(), Config::env(), &overrides)
    }
}

impl MigrateArgs {
    fn load(&self) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Overrides::default()
        };
        Config::load(self.config.as_deref(), Config::env(), &overrides)
    }
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match cli.command {
        Command::Serve(ref args) => args.load(),
        Command::Migrate(ref args) => args.load(),
        Command::Shim(ref args) => args.load(),
        Command::Console(command) => return command.run(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "bosun", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    let config = match loaded {
        Ok(config) => config,
        Err(err) => {
            eprintln!("bosun: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bosun: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => server::run(config, move || args.load()).await,
            Command::Migrate(_) => match &config.database_url {
                Some(url) => {
                    let applied = postgres::migrate(url).await?;
                    println!(
                        "bosun: {applied} migration(s) applied to {}",
                        url.describe()
                    );
                    Ok(())
                }
                None => {
                    let applied = storage::migrate(&config.data_dir).await?;
                    println!(
                        "bosun: {applied} migration(s) applied to {}",
                        config.data_dir.join(storage::DB_FILE).display()
                    );
                    Ok(())
                }
            },
            Command::Shim(args) => webhooks::run_standalone(config, args.upstream).await,
            Command::Console(_) | Command::Completions { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "bosun stopped");
            eprintln!("bosun: {err:#}");
            ExitCode::FAILURE
        }
    }
}
