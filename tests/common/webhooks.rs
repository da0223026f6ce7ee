//! Helpers for the webhook shim's tests: fixtures from
//! `tests/fixtures/webhooks`, deliveries signed like their senders sign them
//! and posted over HTTP, and a started session on a forge branch.

use std::net::SocketAddr;

use bosun::config::Config;
use bosun::pb;
use bosun::webhooks::Source;
use bosun::webhooks::signature::sign;
use serde_json::Value;

use super::TestServer;

pub const GITHUB_SECRET: &str = "github-test-secret";
pub const GITEA_SECRET: &str = "gitea-test-secret";
pub const PLANE_SECRET: &str = "plane-test-secret";

/// The forge repository most GitHub fixtures are about, its PR branch and
/// head commit.
pub const HELLO_WORLD: &str = "https://github.com/Codertocat/Hello-World.git";
pub const HELLO_BRANCH: &str = "changes";
pub const HELLO_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/// Gives every source its test secret.
pub fn with_secrets(config: &mut Config) {
    config.webhooks.github.secret = GITHUB_SECRET.into();
    config.webhooks.gitea.secret = GITEA_SECRET.into();
    config.webhooks.plane.secret = PLANE_SECRET.into();
}

/// The bytes of `tests/fixtures/webhooks/<path>`.
pub fn fixture(path: &str) -> Vec<u8> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|err| panic!("fixture {}: {err}", file.display()))
}

/// A fixture parsed, to change a copy of it in a test.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).expect("fixture JSON")
}

/// One HTTP delivery as a sender would make it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub source: Source,
    pub event: String,
    pub id: Option<String>,
    pub body: Vec<u8>,
    pub signature: Option<String>,
}

impl Delivery {
    /// Signed with the source's test secret.
    pub fn new(source: Source, event: &str, id: &str, body: Vec<u8>) -> Self {
        let secret = match source {
            Source::GitHub => GITHUB_SECRET,
            Source::Gitea => GITEA_SECRET,
            Source::Plane => PLANE_SECRET,
        };
        Self {
            signature: Some(sign(source, secret.as_bytes(), &body)),
            source,
            event: event.into(),
            id: Some(id.into()),
            body,
        }
    }

    pub fn github(event: &str, id: &str, body: Vec<u8>) -> Self {
        Self::new(Source::GitHub, event, id, body)
    }

    pub fn gitea(event: &str, id: &str, body: Vec<u8>) -> Self {
        Self::new(Source::Gitea, event, id, body)
    }

    pub fn plane(id: &str, body: Vec<u8>) -> Self {
        Self::new(Source::Plane, "issue", id, body)
    }

    /// The same delivery signed with another secret.
    pub fn signed_with(mut self, secret: &str) -> Self {
        self.signature = Some(sign(self.source, secret.as_bytes(), &self.body));
        self
    }

    /// The body changed after signing (one byte of a string value).
    pub fn tampered(mut self) -> Self {
        let at = self
            .body
            .windows(7)
            .position(|w| w == b"failure" || w == b"success")
            .unwrap_or(self.body.len() / 2);
        self.body[at] = b'X';
        self
    }

    pub fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// How the shim answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub outcome: String,
    pub detail: String,
}

/// Posts `delivery` to the shim at `addr`.
pub async fn deliver(addr: SocketAddr, delivery: &Delivery) -> Answer {
    let source = delivery.source;
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/{}", source.as_str()))
        .header("content-type", "application/json")
        .header(source.event_header(), &delivery.event)
        .body(delivery.body.clone());
    if let Some(id) = &delivery.id {
        request = request.header(source.delivery_header(), id);
    }
    if let Some(signature) = &delivery.signature {
        request = request.header(source.signature_header(), signature);
    }
    let response = request.send().await.expect("deliver");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON answer");
    Answer {
        status,
        outcome: body["outcome"].as_str().unwrap_or_default().into(),
        detail: body["detail"].as_str().unwrap_or_default().into(),
    }
}

/// GET `path` on the HTTP listener at `addr`: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

impl TestServer {
    pub async fn deliver(&self, delivery: &Delivery) -> Answer {
        deliver(self.http_addr, delivery).await
    }

    /// The change log's head: unchanged means nothing was written.
    pub async fn head(&self) -> i64 {
        self.events()
            .get_head(pb::GetHeadRequest {})
            .await
            .expect("head")
            .into_inner()
            .head_seq
    }

    /// Registers project `id` on `origin` and starts a session on `branch`
    /// (spawned, then launched: working and alive).
    pub async fn session_on(&self, id: &str, origin: &str, branch: &str) -> pb::Session {
        let mut sessions = self.sessions_client();
        sessions
            .register_project(pb::RegisterProjectRequest {
                project: Some(pb::Project {
                    id: id.into(),
                    origin_url: origin.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("register project");
        self.launch_session(id, branch, 0).await
    }

    /// Registers project `id` on `origin` and starts a task for tracker
    /// issue `issue` (work item `work_item`) on `branch`, walked to
    /// development with its pull request open at `head`.
    pub async fn task_on_head(
        &self,
        id: &str,
        origin: &str,
        (issue, work_item): (&str, &str),
        branch: &str,
        head: &str,
    ) -> pb::Task {
        self.project(id, |p| p.origin_url = origin.into()).await;
        let task = self
            .tasks()
            .start_task(pb::StartTaskRequest {
                project_id: id.into(),
                tracker_issue_id: issue.into(),
                work_item_id: work_item.into(),
                branch: branch.into(),
                ..Default::default()
            })
            .await
            .expect("start task")
            .into_inner()
            .task
            .expect("task");
        self.walk_to(task.id, pb::Stage::Development).await;
        self.pull_request(task.id, pb::PullRequestState::Open, head)
            .await;
        self.task(task.id).await
    }

    /// Spawns a session of `project` on `branch` (for task `task_id`, or
    /// none) and launches it.
    pub async fn launch_session(&self, project: &str, branch: &str, task_id: i64) -> pb::Session {
        let mut sessions = self.sessions_client();
        let spawned = sessions
            .spawn_session(pb::SpawnSessionRequest {
                project_id: project.into(),
                task_id,
                harness: pb::Harness::ClaudeCode.into(),
                branch: branch.into(),
                ..Default::default()
            })
            .await
            .expect("spawn")
            .into_inner();
        sessions
            .complete_spawn(pb::CompleteSpawnRequest {
                session_id: spawned.id,
                runtime_handle_id: "tmux:%1".into(),
                ..Default::default()
            })
            .await
            .expect("complete spawn")
            .into_inner()
    }

    pub async fn session(&self, id: &str) -> pb::Session {
        self.sessions_client()
            .get_session(pb::GetSessionRequest {
                session_id: id.into(),
            })
            .await
            .expect("get session")
            .into_inner()
    }

    /// The session's reactions with `key`, newest first.
    pub async fn reactions(&self, session: &str, key: &str) -> Vec<pb::Reaction> {
        self.sessions_client()
            .list_reactions(pb::ListReactionsRequest {
                session_id: session.into(),
                key: key.into(),
                ..Default::default()
            })
            .await
            .expect("list reactions")
            .into_inner()
            .reactions
    }
}
