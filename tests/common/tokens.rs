//! The bearer tokens of the tests' servers, one per role, and requests
//! that carry one.

use bosun::config::{Config, TokenConfig};
use tonic::Request;

pub const ADMIN_TOKEN: &str = "admin-token-0123456789";
pub const AGENT_TOKEN: &str = "agent-token-0123456789";
pub const WEBHOOK_TOKEN: &str = "webhook-token-0123456789";
pub const READ_TOKEN: &str = "read-token-0123456789";

/// One token per role (see the *_TOKEN constants).
pub fn auth_tokens(config: &mut Config) {
    config.auth.tokens = [
        ("ops", "admin", ADMIN_TOKEN),
        ("runner", "agent", AGENT_TOKEN),
        ("shim", "webhook", WEBHOOK_TOKEN),
        ("dashboard", "read", READ_TOKEN),
    ]
    .into_iter()
    .map(|(name, role, token)| TokenConfig {
        name: name.into(),
        role: serde_json::from_value(serde_json::json!(role)).expect("role"),
        token: token.into(),
    })
    .collect();
}

/// `message` with a bearer token.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}
