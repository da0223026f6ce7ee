//! The webhook shim (SPEC §10): GitHub, Gitea and Plane deliveries turned
//! into bosun RPCs. It speaks only bosun's public gRPC API ([`upstream`]),
//! so it runs inside `bosun serve` (on `http_addr`, calling the server's own
//! gRPC listener) or alone as `bosun shim --upstream URL`.
//!
//! A delivery goes: body limit -> signature over the raw body
//! ([`signature`]) -> dedup by delivery id, or content hash for Plane
//! ([`dedup`]) -> parse ([`forge_json`], [`plane`]) -> the RPCs
//! ([`service`], planned by the pure [`translate`]) -> remembered, answered.
//! Every call carries a request_id derived from the delivery, so a
//! redelivery is idempotent end to end. [`http`] is the axum adapter and
//! [`error`] the one mapping to HTTP status codes.

mod ci_json;
mod config;
mod dedup;
mod error;
pub mod forge;
mod forge_json;
mod forge_service;
#[cfg(test)]
mod fuzz_tests;
mod http;
mod locks;
mod metrics;
pub mod ordering;
pub mod plane;
mod run;
mod service;
pub mod signature;
mod steps;
pub mod translate;
mod upstream;

pub use config::{SourceConfig, Verification, WebhooksConfig};
pub use dedup::{DEDUP_FILE, DedupStore};
pub use error::{ParseError, WebhookError};
pub use http::{HttpServer, router};
pub use metrics::{ShimMetrics, latency_histogram};
pub use run::{embedded, run as run_standalone, serve as serve_standalone};
pub use service::{Answer, Shim};
pub use upstream::{CallError, Transport, Upstream, classify};

/// Who sent a delivery; each has its own endpoint, headers and secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    GitHub,
    Gitea,
    Plane,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::GitHub, Source::Gitea, Source::Plane];

    /// The config key and the path segment: `/webhooks/<source>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::Gitea => "gitea",
            Self::Plane => "plane",
        }
    }

    /// The header naming the event kind.
    pub fn event_header(self) -> &'static str {
        match self {
            Self::GitHub => "x-github-event",
            Self::Gitea => "x-gitea-event",
            Self::Plane => "x-plane-event",
        }
    }

    /// The header carrying the delivery's id. Plane sends a new one on
    /// every retry, so its deliveries are deduplicated by content instead.
    pub fn delivery_header(self) -> &'static str {
        match self {
            Self::GitHub => "x-github-delivery",
            Self::Gitea => "x-gitea-delivery",
            Self::Plane => "x-plane-delivery",
        }
    }

    /// The start of every request_id derived from this source's deliveries.
    pub fn request_prefix(self) -> &'static str {
        match self {
            Self::GitHub => "gh",
            Self::Gitea => "gt",
            Self::Plane => "pl",
        }
    }

    /// The event kinds the shim translates; any other answers 202.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Self::GitHub => forge_json::GITHUB_EVENTS,
            Self::Gitea => forge_json::GITEA_EVENTS,
            Self::Plane => &["issue"],
        }
    }
}
