//! Gitea and Plane deliveries through the real server, built from each
//! sender's own shapes (Gitea's `modules/structs` payloads and event
//! headers, Plane's v1 issue webhook from `webhook_task.py`), in the order
//! and with the variants real senders produce: redelivered, out of order,
//! from a fork, about another repository or project, another spelling of
//! the repository, partial objects. Each asserts the state written (the
//! session's pull request, the task's CI, the task and its verdicts), not
//! only the HTTP answer.
//!
//! - gitea: pull requests, reviews and statuses from Gitea;
//! - plane: Plane's issue deliveries, tasks and verdicts.

#[path = "../common/mod.rs"]
mod common;

mod gitea;
mod plane;

use bosun::pb;
use common::TestServer;
use common::forge_payloads::{
    GITEA_HEAD, gitea, gitea_from_fork, gitea_pr, gitea_review, gitea_status, plane_issue,
};
use common::webhooks::{Answer, Delivery, with_secrets};
use serde_json::{Value, json};

const GITEA_ORIGIN: &str = "http://localhost:3000/gitea/webhooks.git";
const GITEA_BRANCH: &str = "feature/passkey";
const NEXT_HEAD: &str = "5d3f0a9c1e2b4d6f8a0c2e4b6d8f0a1c3e5b7d9f";

async fn server() -> TestServer {
    TestServer::start_with(with_secrets).await
}

fn outcome(answer: &Answer) -> (u16, &str) {
    (answer.status, answer.outcome.as_str())
}

async fn pull_request(server: &TestServer, session: &str) -> pb::PullRequest {
    server
        .session(session)
        .await
        .pull_request
        .expect("a pull request")
}
