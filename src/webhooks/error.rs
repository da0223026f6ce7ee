//! The shim's errors and the one place they become HTTP answers. A sender
//! retries on 5xx and never on 4xx, so: what the delivery got wrong is 4xx
//! (nothing changed), what bosun could not do now is 503 (retry; the
//! request_ids make it safe).

use std::time::Duration;

use axum::http::StatusCode;

use super::signature::SignatureError;

/// A payload that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} {1}")]
    Invalid(&'static str, &'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read")]
    Unreadable,
    #[error(
        "webhooks.{0}.secret is not configured: bosun refuses unsigned deliveries \
         (set the secret, or insecure = true for local testing)"
    )]
    NotConfigured(&'static str),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the {0} header is missing or is not 1 to 64 printable characters")]
    BadHeader(&'static str),
    #[error("malformed payload: {0}")]
    Parse(#[from] ParseError),
    #[error("bosun rejected the translated request: {0}")]
    Rejected(String),
    #[error("bosun is unavailable ({0}); retry later")]
    Unavailable(String),
    #[error("bosun refused the shim's token ({0}); check webhooks.upstream_token")]
    Unauthorized(String),
    #[error("the dedup memory failed; retry later")]
    Store(#[source] crate::storage::StoreError),
    #[error("the tracker's API failed ({0}); retry later")]
    Tracker(String),
    #[error("no answer within {0:?}; retry later")]
    Timeout(Duration),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable | Self::BadHeader(_) | Self::Parse(_) | Self::Rejected(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotConfigured(_) => StatusCode::FORBIDDEN,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Unavailable(_)
            | Self::Unauthorized(_)
            | Self::Store(_)
            | Self::Tracker(_)
            | Self::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The outcome label of the deliveries metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::Unreadable | Self::BadHeader(_) | Self::Parse(_) => "bad_request",
            Self::Rejected(_) => "rejected",
            Self::NotConfigured(_) => "not_configured",
            Self::Signature(_) => "bad_signature",
            Self::Unavailable(_) | Self::Unauthorized(_) | Self::Store(_) | Self::Tracker(_) => {
                "unavailable"
            }
            Self::Timeout(_) => "timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let cases = [
            (WebhookError::TooLarge(5), StatusCode::PAYLOAD_TOO_LARGE),
            (
                WebhookError::Parse(ParseError::Json("eof".into())),
                StatusCode::BAD_REQUEST,
            ),
            (
                WebhookError::Signature(SignatureError::Missing("x")),
                StatusCode::UNAUTHORIZED,
            ),
            (WebhookError::NotConfigured("github"), StatusCode::FORBIDDEN),
            (
                WebhookError::Unavailable("UNAVAILABLE".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                WebhookError::Timeout(Duration::from_secs(10)),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
        }
    }
}
