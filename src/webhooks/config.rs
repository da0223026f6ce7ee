//! The `[webhooks]` configuration section: limits, the dedup memory, and one
//! secret per source. A source without a secret refuses every delivery
//! unless it is explicitly `insecure` (local testing, loopback only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Source;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Largest delivery body accepted, in bytes; larger answers 413.
    pub body_limit: usize,
    /// Every delivery is answered within this; past it, 503 (the sender
    /// retries and the request_ids make the retry safe).
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Deliveries remembered for deduplication (the oldest are forgotten).
    pub dedup_capacity: u32,
    /// The bearer token `bosun shim` sends upstream (role webhook). Inside
    /// `bosun serve` the shim uses an internal token and ignores this.
    pub upstream_token: String,
    /// `bosun shim` only: a PEM CA certificate trusted, besides the public
    /// roots, for an `https://` upstream (a bosun with a private CA).
    pub upstream_ca_file: PathBuf,
    pub github: SourceConfig,
    pub gitea: SourceConfig,
    pub plane: SourceConfig,
}

/// One sender's verification settings.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// The HMAC-SHA256 secret the sender signs with; empty refuses every
    /// delivery from this source.
    pub secret: String,
    /// Accept deliveries unsigned (no secret): for local testing only, and
    /// only while `http_addr` is a loopback address.
    pub insecure: bool,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret.is_empty() {
            "<none>"
        } else {
            "<redacted>"
        };
        f.debug_struct("SourceConfig")
            .field("secret", &secret)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// How a source's deliveries are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verification<'a> {
    /// HMAC-SHA256 with this secret.
    Secret(&'a [u8]),
    /// Accepted unsigned (insecure mode).
    Unsigned,
    /// No secret configured: every delivery is refused.
    Refuse,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            body_limit: 5 * 1024 * 1024,
            deadline: Duration::from_secs(10),
            dedup_capacity: 100_000,
            upstream_token: String::new(),
            upstream_ca_file: PathBuf::new(),
            github: SourceConfig::default(),
            gitea: SourceConfig::default(),
            plane: SourceConfig::default(),
        }
    }
}

impl WebhooksConfig {
    pub fn source(&self, source: Source) -> &SourceConfig {
        match source {
            Source::GitHub => &self.github,
            Source::Gitea => &self.gitea,
            Source::Plane => &self.plane,
        }
    }

    pub fn verification(&self, source: Source) -> Verification<'_> {
        let config = self.source(source);
        if !config.secret.is_empty() {
            Verification::Secret(config.secret.as_bytes())
        } else if config.insecure {
            Verification::Unsigned
        } else {
            Verification::Refuse
        }
    }

    /// One line naming the first bad setting; `http_addr` is where the shim
    /// listens.
    pub fn validate(&self, http_addr: SocketAddr) -> Result<(), String> {
        if self.body_limit < 1024 {
            return Err("webhooks.body_limit must be at least 1024 bytes".into());
        }
        if self.deadline < Duration::from_millis(100) {
            return Err("webhooks.deadline must be at least 100ms".into());
        }
        if self.dedup_capacity == 0 {
            return Err("webhooks.dedup_capacity must be at least 1".into());
        }
        if self.upstream_token.chars().any(char::is_whitespace) {
            return Err("webhooks.upstream_token must not contain spaces".into());
        }
        let ca_file = &self.upstream_ca_file;
        if !ca_file.as_os_str().is_empty() && !ca_file.is_file() {
            return Err(format!(
                "webhooks.upstream_ca_file {} does not exist",
                ca_file.display()
            ));
        }
        for source in Source::ALL {
            let config = self.source(source);
            let key = source.as_str();
            if config.insecure && !config.secret.is_empty() {
                return Err(format!(
                    "webhooks.{key}: set a secret or insecure = true, not both"
                ));
            }
            if config.insecure && !http_addr.ip().is_loopback() {
                return Err(format!(
                    "webhooks.{key}.insecure is allowed only while http_addr is a loopback address, not {http_addr}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:7071".parse().unwrap()
    }

    #[test]
    fn verification_by_settings() {
        let mut config = WebhooksConfig::default();
        assert!(config.verification(Source::GitHub) == Verification::Refuse);
        config.github.secret = "s3cret".into();
        assert!(config.verification(Source::GitHub) == Verification::Secret(b"s3cret"));
        config.plane.insecure = true;
        assert!(config.verification(Source::Plane) == Verification::Unsigned);
        assert!(config.verification(Source::Gitea) == Verification::Refuse);
    }

    #[test]
    fn bad_settings_are_one_line() {
        type Case = (fn(&mut WebhooksConfig), &'static str);
        let cases: [Case; 5] = [
            (|c| c.body_limit = 10, "body_limit"),
            (|c| c.dedup_capacity = 0, "dedup_capacity"),
            (
                |c| {
                    c.gitea.secret = "x".into();
                    c.gitea.insecure = true;
                },
                "not both",
            ),
            (|c| c.upstream_token = "a b".into(), "upstream_token"),
            (
                |c| c.upstream_ca_file = "/no/such/ca.pem".into(),
                "upstream_ca_file /no/such/ca.pem does not exist",
            ),
        ];
        for (change, expected) in cases {
            let mut config = WebhooksConfig::default();
            change(&mut config);
            let err = config.validate(loopback()).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn insecure_only_on_loopback() {
        let mut config = WebhooksConfig::default();
        config.plane.insecure = true;
        assert!(config.validate(loopback()).is_ok());
        let err = config
            .validate("0.0.0.0:7071".parse().unwrap())
            .unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let mut config = WebhooksConfig::default();
        config.github.secret = "hunter2-hunter2".into();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
