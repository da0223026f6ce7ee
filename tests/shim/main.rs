//! The webhook shim through the real server: GitHub's published example
//! deliveries and Gitea's and Plane's documented payload shapes
//! (`tests/fixtures/webhooks`), signed with a known secret, posted over HTTP,
//! and their effect checked through the gRPC API.
//! - http: signatures, size and JSON limits, what is ignored, dedup across
//!   a restart, health and metrics;
//! - forges: GitHub's and Gitea's deliveries moving sessions and tasks;
//! - plane: Plane's issue deliveries, with its API faked on loopback;
//! - standalone: `bosun shim` apart from serve (upstream down, deadlines,
//!   tokens, the binary itself).
//!
//! The helpers below are shared by those files.

#[path = "../common/mod.rs"]
mod common;

mod forges;
mod http;
mod plane;
mod standalone;

use bosun::pb;
use common::TestServer;
use common::pipeline::head_of;
use common::webhooks::{
    Delivery, GITHUB_SECRET, HELLO_BRANCH, HELLO_HEAD, HELLO_WORLD, fixture, fixture_json, get,
    with_secrets,
};
use serde_json::json;

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

fn check_run_failure(id: &str) -> Delivery {
    Delivery::github(
        "check_run",
        id,
        fixture("github/check_run.completed.failure.json"),
    )
}
