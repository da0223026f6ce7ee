//! bosun's configuration: one typed struct, layered defaults -> TOML file ->
//! `BOSUN_*` environment -> command-line flags (later wins), validated at
//! start. Every setting is documented in `bosun.example.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::lessons::JournalSettings;
use crate::processors::ProcessorSettings;
use crate::reconciler::ReconcilerConfig;
use crate::server::{LimitsConfig, TlsConfig};
use crate::sessions::decide::QuarantineLimits;
use crate::storage::StorageSettings;
use crate::storage::postgres::DatabaseUrl;
use crate::tasks::TasksConfig;
use crate::webhooks::WebhooksConfig;

mod load;

pub use load::{CLIENT_VARIABLES, ConfigError, Overrides};

/// Shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database lives (`<data_dir>/bosun.db`).
    pub data_dir: PathBuf,
    /// A `postgres://` URL for PostgreSQL; unset: SQLite in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// This process's name among replicas, recorded on the background
    /// passes it runs; unset: `<hostname>:<pid>`.
    pub replica_name: Option<String>,
    /// The gRPC listener; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// The HTTP listener (webhooks and metrics); port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// `text` (default) or `json`.
    pub log_format: LogFormat,
    /// How long shutdown waits for in-flight calls.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    pub storage: StorageConfig,
    pub lessons: LessonsConfig,
    pub events: EventsConfig,
    pub sessions: SessionsConfig,
    pub tasks: TasksConfig,
    pub reconciler: ReconcilerConfig,
    pub processors: ProcessorsConfig,
    pub webhooks: WebhooksConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// How long a write waits for a lock another process holds on the
    /// database before the call answers UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        let StorageSettings { busy_timeout } = StorageSettings::default();
        Self { busy_timeout }
    }
}

impl StorageConfig {
    pub fn settings(&self) -> StorageSettings {
        StorageSettings {
            busy_timeout: self.busy_timeout,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LessonsConfig {
    /// The kill-switch.
    pub enabled: bool,
    /// AUTO lessons equal to one recorded this recently are not written; 0s
    /// disables dedup.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How often an idle Watch stream gets a progress message (jittered).
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// History older than this is compacted away (never the newest 10,000).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often the compaction job runs.
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            progress_interval: Duration::from_secs(10),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            compaction_interval: Duration::from_secs(60 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Detecting probes (same evidence) before a session escalates to stuck.
    pub detecting_max_attempts: u32,
    /// How long a session may stay in detecting before it escalates to stuck.
    #[serde(with = "humantime_serde")]
    pub detecting_max_duration: Duration,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        let QuarantineLimits {
            max_attempts,
            max_duration,
            ..
        } = QuarantineLimits::default();
        Self {
            detecting_max_attempts: max_attempts,
            detecting_max_duration: max_duration,
        }
    }
}

impl SessionsConfig {
    pub fn quarantine_limits(&self) -> QuarantineLimits {
        QuarantineLimits {
            max_attempts: self.detecting_max_attempts,
            max_duration: self.detecting_max_duration,
            ..QuarantineLimits::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorsConfig {
    /// Agent transcripts: `<transcripts_dir>/<owner>/<name>.jsonl`.
    pub transcripts_dir: PathBuf,
    /// Failed tool results in a row that make a burst (a lesson).
    pub tool_error_burst_threshold: u32,
    pub usage: ProcessorConfig,
    pub tool_errors: ProcessorConfig,
}

impl Default for ProcessorsConfig {
    fn default() -> Self {
        Self {
            transcripts_dir: PathBuf::from("./transcripts"),
            tool_error_burst_threshold: 5,
            usage: ProcessorConfig::default(),
            tool_errors: ProcessorConfig::default(),
        }
    }
}

/// One processor's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorConfig {
    /// When false the scheduler does not run it and RunProcessor refuses it.
    pub enabled: bool,
    /// How often a pass starts.
    #[serde(with = "humantime_serde")]
    pub cadence: Duration,
    /// Transcripts hashed per pass at most; 0 means no cap.
    pub max_transcripts_per_pass: u32,
    /// A pass starts no new transcript after this long; 0s means no budget.
    #[serde(with = "humantime_serde")]
    pub time_budget: Duration,
    /// Consecutive failures after which a transcript is quarantined.
    pub quarantine_after_failures: u32,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cadence: Duration::from_secs(5 * 60),
            max_transcripts_per_pass: 0,
            time_budget: Duration::from_secs(60),
            quarantine_after_failures: 5,
        }
    }
}

impl ProcessorConfig {
    pub fn settings(&self) -> ProcessorSettings {
        let Self {
            enabled,
            cadence,
            max_transcripts_per_pass,
            time_budget,
            quarantine_after_failures,
        } = *self;
        ProcessorSettings {
            enabled,
            cadence,
            max_transcripts_per_pass,
            time_budget,
            quarantine_after_failures,
        }
    }

    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(format!("{section}.{message}")));
        if self.cadence < Duration::from_millis(100) {
            return invalid("cadence must be at least 100ms".into());
        }
        if self.quarantine_after_failures == 0 {
            return invalid("quarantine_after_failures must be at least 1".into());
        }
        if i32::try_from(self.max_transcripts_per_pass).is_err()
            || i32::try_from(self.quarantine_after_failures).is_err()
        {
            return invalid("counts must be at most 2147483647".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens; none = no auth (allowed only on loopback).
    pub tokens: Vec<TokenConfig>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token; appears in logs instead of the token.
    pub name: String,
    pub role: Role,
    /// The secret itself, at least 16 characters.
    pub token: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Config {
    /// [`Config::replica_name`], or `<hostname>:<pid>`.
    pub fn replica(&self) -> String {
        self.replica_name.clone().unwrap_or_else(|| {
            format!(
                "{}:{}",
                gethostname::gethostname().to_string_lossy(),
                std::process::id()
            )
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            replica_name: None,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7070)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7071)),
            log_format: LogFormat::Text,
            drain_timeout: Duration::from_secs(10),
            storage: StorageConfig::default(),
            lessons: LessonsConfig::default(),
            events: EventsConfig::default(),
            sessions: SessionsConfig::default(),
            tasks: TasksConfig::default(),
            reconciler: ReconcilerConfig::default(),
            processors: ProcessorsConfig::default(),
            webhooks: WebhooksConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for LessonsConfig {
    fn default() -> Self {
        let JournalSettings {
            enabled,
            dedup_window,
        } = JournalSettings::default();
        Self {
            enabled,
            dedup_window,
        }
    }
}

impl LessonsConfig {
    pub fn journal_settings(&self) -> JournalSettings {
        JournalSettings {
            enabled: self.enabled,
            dedup_window: self.dedup_window,
        }
    }
}

#[cfg(test)]
mod tests;
