//! `bosun events watch` follows the log across a restart of bosun (SIGKILL,
//! then a new process on the same data dir and port): every event is
//! printed exactly once, in order. The server runs with the operator's
//! BOSUN_ADDR and BOSUN_TOKEN in its environment, which must not stop it.

use std::process::Stdio;
use std::time::Duration;

use bosun::pb::events_client::EventsClient;
use bosun::pb::sessions_client::SessionsClient;
use bosun::pb::{self, Harness};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tonic::transport::Channel;

use crate::common::process::{BosunProcess, bosun_command, connect};

const WAIT: Duration = Duration::from_secs(30);

struct Watcher {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Watcher {
    fn start(addr: &str, args: &[&str]) -> Self {
        let mut child = tokio::process::Command::from(bosun_command())
            .env("BOSUN_ADDR", addr)
            .args(["events", "watch"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the watch");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The lines printed until one satisfies `last` (inclusive).
    async fn until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no line in {WAIT:?}; so far {seen:#?}"))
                .expect("read the watch")
                .expect("the watch ended");
            let done = last(&line);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }

    async fn stop(mut self) -> String {
        self.child.start_kill().expect("kill the watch");
        let output = self.child.wait_with_output().await.expect("reap the watch");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

fn seq_of(json_line: &str) -> i64 {
    let event: serde_json::Value = serde_json::from_str(json_line).expect("a JSON line");
    event["seq"]
        .as_str()
        .expect("seq")
        .parse()
        .expect("a number")
}

async fn head(channel: &Channel) -> i64 {
    EventsClient::new(channel.clone())
        .get_head(pb::GetHeadRequest {})
        .await
        .expect("head")
        .into_inner()
        .head_seq
}

async fn changes(channel: &Channel, project: &str) {
    let mut sessions = SessionsClient::new(channel.clone());
    sessions
        .register_project(pb::RegisterProjectRequest {
            request_id: String::new(),
            project: Some(pb::Project {
                id: project.into(),
                repo_path: format!("/srv/{project}"),
                ..Default::default()
            }),
        })
        .await
        .expect("register");
    for _ in 0..2 {
        sessions
            .spawn_session(pb::SpawnSessionRequest {
                project_id: project.into(),
                harness: Harness::Codex.into(),
                prompt: "work".into(),
                ..Default::default()
            })
            .await
            .expect("spawn");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_every_event_once_in_order_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let addr = format!("http://{grpc}");
    let operator_env = [
        ("BOSUN_ADDR", addr.clone()),
        ("BOSUN_TOKEN", "an-operator-token".to_string()),
    ];

    let mut server = BosunProcess::spawn_at(dir.path(), &grpc.to_string(), &operator_env);
    let serving = server.ready().await;
    assert!(serving.is_some(), "{}", server.log_tail(20));
    let channel = connect(grpc).await;
    changes(&channel, "one").await;

    let mut all = Watcher::start(&addr, &["--after", "0", "-o", "json"]);
    let mut sessions_only = Watcher::start(&addr, &["--after", "0", "--type", "session."]);
    let before = head(&channel).await;
    let mut printed = all.until(|line| seq_of(line) == before).await;
    let mut session_lines = sessions_only.until(|line| line.contains("one-2")).await;

    server.kill();
    let mut server = BosunProcess::spawn_at(dir.path(), &grpc.to_string(), &operator_env);
    assert!(server.ready().await.is_some(), "{}", server.log_tail(20));
    let channel = connect(grpc).await;
    changes(&channel, "two").await;
    let after = head(&channel).await;
    assert!(after > before);

    printed.extend(all.until(|line| seq_of(line) == after).await);
    session_lines.extend(sessions_only.until(|line| line.contains("two-2")).await);
    let seqs: Vec<i64> = printed.iter().map(|line| seq_of(line)).collect();
    assert_eq!(seqs, (1..=after).collect::<Vec<_>>(), "each once, in order");

    let session_events: Vec<&str> = session_lines
        .iter()
        .map(|line| line.split_whitespace().nth(2).expect("an event type"))
        .collect();
    assert_eq!(
        session_events,
        vec!["session.created"; 4],
        "{session_lines:#?}"
    );
    let resumed = all.stop().await;
    assert!(resumed.contains("resuming after seq"), "{resumed}");
    sessions_only.stop().await;
}
