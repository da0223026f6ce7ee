//! The rules for matching deliveries (README "Matching deliveries"),
//! through the real server: GitHub's published examples, varied the way
//! real senders vary them (another commit, a fork, another spelling of the
//! repository, a repository bosun does not know, a partial object), signed
//! and posted over HTTP, and their effect read back through the gRPC API.
//!
//! - commits: CI for another commit, on the head in any case, for a repository
//!   bosun does not know, and a stale check run;
//! - pull_requests: from a fork, a review without mergeability, another spelling
//!   of the repository, a delivery older than the merge;
//! - gitea_and_runners: Gitea's deliveries, and reports older than the applied one.

#[path = "../common/mod.rs"]
mod common;

mod commits;
mod gitea_and_runners;
mod pull_requests;

use bosun::pb;
use common::TestServer;
use common::forge_payloads::{
    check_run, example, from_fork, gitea, gitea_example, gitea_from_fork, gitea_pull_request,
    github, mergeable, on_repo, pull_request,
};
use common::webhooks::{HELLO_BRANCH, HELLO_HEAD, HELLO_WORLD, with_secrets};
use serde_json::json;

/// master's head in the published examples.
const MASTER_HEAD: &str = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

/// Project "hello" on `origin` and a task on the PR branch, in development
/// with its pull request's head at HELLO_HEAD.
async fn task_in_development(server: &TestServer, origin: &str) -> pb::Task {
    server
        .task_on_head(
            "hello",
            origin,
            ("issue-2", "HELLO-2"),
            HELLO_BRANCH,
            HELLO_HEAD,
        )
        .await
}
