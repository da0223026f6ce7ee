//! Loading the configuration: the layers (defaults, TOML file, `BOSUN_*`
//! environment, command-line flags; later wins) and the rules a loaded
//! configuration must pass before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;

use super::{Config, LogFormat, MIN_TOKEN_LEN};
use crate::storage::postgres::DatabaseUrl;

/// Values given on the command line; unset ones leave lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// A configuration that cannot be used, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(
        "refusing to start: no auth tokens are configured and {0} is not a loopback address; \
         configure [[auth.tokens]] or listen on 127.0.0.1"
    )]
    OpenOnNetwork(SocketAddr),
}

/// The `BOSUN_*` variables (without the prefix, lowercase) that the
/// command-line clients read: the operator console's BOSUN_ADDR, BOSUN_TOKEN,
/// BOSUN_CA_FILE, BOSUN_CLIENT_CERT, BOSUN_CLIENT_KEY and the standalone
/// shim's BOSUN_SHIM_UPSTREAM.
pub const CLIENT_VARIABLES: &[&str] = &[
    "addr",
    "token",
    "ca_file",
    "client_cert",
    "client_key",
    "shim_upstream",
];

impl Config {
    /// Layers defaults, `file`, `BOSUN_*` variables of `env` and `overrides`,
    /// then validates. Nested keys use `__` in variables:
    /// `BOSUN_LESSONS__ENABLED=false`.
    pub fn load(file: Option<&Path>, env: Env, overrides: &Overrides) -> Result<Self, ConfigError> {
        let config = Self::load_unchecked(file, env, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// [`Self::load`] without [`Self::validate`], for commands that check
    /// the settings they use themselves (`bosun shim`).
    pub fn load_unchecked(
        file: Option<&Path>,
        env: Env,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|err| ConfigError::Invalid(one_line(&err)))?;
        Ok(config)
    }

    /// The `BOSUN_*` environment provider. BOSUN_CONFIG names the file, and
    /// the variables of [`CLIENT_VARIABLES`] belong to the command-line
    /// clients: none is a setting, so an operator's shell may set them
    /// beside a server. Any other unknown `BOSUN_*` variable is refused.
    pub fn env() -> Env {
        let mut ignored = vec!["config"];
        ignored.extend(CLIENT_VARIABLES);
        Env::prefixed("BOSUN_").ignore(&ignored).split("__")
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_settings()?;
        if self.auth.tokens.is_empty() {
            for addr in [self.grpc_addr, self.http_addr] {
                if !addr.ip().is_loopback() {
                    return Err(ConfigError::OpenOnNetwork(addr));
                }
            }
        }
        Ok(())
    }

    /// Every rule but the one about serving without auth beyond loopback,
    /// which does not apply to `bosun shim` (it serves signed webhooks only
    /// and holds no tokens of its own).
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.grpc_addr == self.http_addr && self.grpc_addr.port() != 0 {
            return invalid(format!(
                "grpc_addr and http_addr are both {}",
                self.grpc_addr
            ));
        }
        if let Some(url) = &self.database_url {
            url.connect_options().map(drop).or_else(invalid)?;
        }
        if let Some(name) = &self.replica_name
            && (name.is_empty()
                || name.chars().count() > 64
                || name.chars().any(|c| c.is_control()))
        {
            return invalid("replica_name must be 1 to 64 printable characters".into());
        }
        if self.storage.busy_timeout < Duration::from_millis(10)
            || self.storage.busy_timeout > Duration::from_secs(600)
        {
            return invalid("storage.busy_timeout must be between 10ms and 10m".into());
        }
        if self.events.progress_interval < Duration::from_millis(10) {
            return invalid("events.progress_interval must be at least 10ms".into());
        }
        if self.events.compaction_interval < Duration::from_secs(1) {
            return invalid("events.compaction_interval must be at least 1s".into());
        }
        if self.sessions.detecting_max_attempts == 0 {
            return invalid("sessions.detecting_max_attempts must be at least 1".into());
        }
        self.reconciler.validate().or_else(invalid)?;
        self.processors.usage.validate("processors.usage")?;
        self.processors
            .tool_errors
            .validate("processors.tool_errors")?;
        if self.processors.tool_error_burst_threshold == 0 {
            return invalid("processors.tool_error_burst_threshold must be at least 1".into());
        }
        self.webhooks.validate(self.http_addr).or_else(invalid)?;
        self.limits.validate().or_else(invalid)?;
        self.tls.validate().or_else(invalid)?;
        let mut names = std::collections::HashSet::new();
        let mut secrets = std::collections::HashSet::new();
        for token in &self.auth.tokens {
            if token.name.trim().is_empty() {
                return invalid("auth.tokens: every token needs a name".into());
            }
            if !names.insert(token.name.as_str()) {
                return invalid(format!(
                    "auth.tokens: the name {:?} is used twice",
                    token.name
                ));
            }
            if token.token.chars().count() < MIN_TOKEN_LEN
                || token.token.chars().any(char::is_whitespace)
            {
                return invalid(format!(
                    "auth.tokens: the token of {:?} must be at least {MIN_TOKEN_LEN} characters without spaces",
                    token.name
                ));
            }
            if !secrets.insert(token.token.as_str()) {
                return invalid(format!(
                    "auth.tokens: the token of {:?} is used twice",
                    token.name
                ));
            }
        }
        Ok(())
    }
}

fn one_line(err: &figment::Error) -> String {
    err.to_string().replace('\n', "; ")
}
