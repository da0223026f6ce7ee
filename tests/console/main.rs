//! The operator console as a person uses it: the real `bosun` binary run as
//! a child process against a real server, checking its tables, its JSON and
//! YAML, its one-line errors and exit codes, `events watch` across a server
//! restart, and the completion scripts.

#[path = "../common/mod.rs"]
mod common;
mod errors;
mod watch;

use std::process::Output;

use bosun::pb::{self, Harness, PullRequestState};
use common::TestServer;
use common::process::bosun_command;

/// Runs `bosun args...` against `addr` (through BOSUN_ADDR) and waits.
pub async fn bosun(addr: &str, args: &[&str]) -> Output {
    bosun_with(addr, &[], args).await
}

/// Like [`bosun`], with extra environment.
pub async fn bosun_with(addr: &str, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(bosun_command());
    command
        .env("BOSUN_ADDR", addr)
        .envs(envs.iter().copied())
        .args(args)
        .kill_on_drop(true);
    command.output().await.expect("run bosun")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

/// The output of a command that must succeed.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        stderr(&output)
    );
    stdout(&output)
}

pub fn url(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

async fn spawn(server: &TestServer, branch: &str, issue: &str) -> String {
    server
        .sessions_client()
        .spawn_session(pb::SpawnSessionRequest {
            project_id: "shop".into(),
            harness: Harness::ClaudeCode.into(),
            branch: branch.into(),
            issue_id: issue.into(),
            prompt: "work".into(),
            ..Default::default()
        })
        .await
        .expect("spawn")
        .into_inner()
        .id
}

/// The first column of each table row (the header left out).
fn ids(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn sessions_list_search_get_kill_and_restore() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let first = spawn(&server, "feature/login", "SHOP-1").await;
    let second = spawn(&server, "fix/flaky", "SHOP-2").await;
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: second.clone(),
            fetched: true,
            pull_request: Some(pb::PullRequest {
                url: "https://github.com/acme/shop/pull/1189".into(),
                number: 1189,
                state: PullRequestState::Open.into(),
                title: "Fix the flaky login test".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("report");
    let addr = url(&server);

    let table = ok(bosun(&addr, &["sessions", "list"]).await);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "STATUS", "BRANCH", "PR", "ISSUE", "ACTIVITY"],
        "{table}"
    );
    assert_eq!(ids(&table), vec![second.clone(), first.clone()], "{table}");
    assert!(table.contains("#1189"), "{table}");
    assert!(
        !table.contains('\u{1b}'),
        "no colour off a terminal: {table:?}"
    );

    let found = ok(bosun(&addr, &["sessions", "list", "--search", "FLAKY login"]).await);
    assert_eq!(ids(&found), vec![second.clone()]);
    let by_pr = ok(bosun(&addr, &["sessions", "list", "--pr", "1189", "-o", "json"]).await);
    let json: serde_json::Value = serde_json::from_str(&by_pr).expect("one JSON document");
    assert_eq!(json["sessions"][0]["id"], second.as_str());
    assert_eq!(json["sessions"][0]["pullRequest"]["number"], "1189");
    assert_eq!(json["sessions"].as_array().unwrap().len(), 1);

    let yaml = ok(bosun(
        &addr,
        &["sessions", "list", "-o", "yaml", "--issue", "SHOP-1"],
    )
    .await);
    let yaml: serde_json::Value = serde_norway::from_str(&yaml).expect("one YAML document");
    assert_eq!(yaml["sessions"][0]["id"], first.as_str());
    assert_eq!(yaml["sessions"][0]["state"], "SESSION_STATE_NOT_STARTED");

    let details = ok(bosun(&addr, &["sessions", "get", &second]).await);
    assert!(details.contains("pull request"), "{details}");
    assert!(
        details.contains("#1189 Fix the flaky login test"),
        "{details}"
    );

    let killed = ok(bosun(&addr, &["sessions", "kill", &first, "--detail", "by hand"]).await);
    assert_eq!(killed, format!("{first} is terminated\n"));
    let again = ok(bosun(&addr, &["sessions", "kill", &first]).await);
    assert_eq!(
        again,
        format!("{first} was already terminated: nothing changed\n")
    );
    let live = ok(bosun(&addr, &["sessions", "list"]).await);
    assert_eq!(ids(&live), vec![second.clone()], "finished ones hidden");
    let all = ok(bosun(&addr, &["sessions", "list", "--all", "--order", "created"]).await);
    assert_eq!(ids(&all), vec![second.clone(), first.clone()]);
    let restored = ok(bosun(&addr, &["sessions", "restore", &first]).await);
    assert!(
        restored.starts_with(&format!("{first} restored: not_started")),
        "{restored}"
    );
    let json = ok(bosun(&addr, &["sessions", "get", &first, "-o", "json"]).await);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["state"], "SESSION_STATE_NOT_STARTED");
}

#[tokio::test]
async fn attention_tasks_projects_and_lessons() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let addr = url(&server);

    let registered = ok(bosun(
        &addr,
        &[
            "projects",
            "register",
            "mer",
            "--origin-url",
            "https://github.com/acme/mer.git",
        ],
    )
    .await);
    assert_eq!(ids(&registered), vec!["mer"]);
    let archived = ok(bosun(&addr, &["projects", "archive", "mer"]).await);
    assert!(archived.contains("archived"), "{archived}");
    assert_eq!(
        ids(&ok(bosun(&addr, &["projects", "list"]).await)),
        vec!["shop"]
    );
    assert_eq!(
        ids(&ok(bosun(&addr, &["projects", "list", "--all"]).await)),
        vec!["mer", "shop"]
    );

    // A task held on deploy (merge unverified) puts its session on the
    // attention list.
    let task = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    server.walk_to(task.id, pb::Stage::Deploy).await;
    server
        .pull_request(task.id, PullRequestState::Open, common::pipeline::SHA_A)
        .await;
    server.finish_stage(task.id).await;
    let held = server.task(task.id).await;

    let attention = ok(bosun(&addr, &["attention"]).await);
    assert_eq!(
        ids(&attention),
        vec![held.stage_session_id.clone()],
        "{attention}"
    );
    assert!(attention.contains("merge_held"), "{attention}");
    assert!(
        attention.contains(&format!("task {}", task.id)),
        "{attention}"
    );
    let json = ok(bosun(&addr, &["attention", "-o", "json"]).await);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["items"][0]["reasons"][0],
        "ATTENTION_REASON_MERGE_HELD"
    );

    let tasks = ok(bosun(&addr, &["tasks", "list", "--held"]).await);
    assert_eq!(ids(&tasks), vec![task.id.to_string()], "{tasks}");
    assert!(tasks.contains("held:merge_unverified"), "{tasks}");
    let one = ok(bosun(&addr, &["tasks", "get", &task.id.to_string()]).await);
    assert!(one.contains("merge_unverified"), "{one}");
    assert!(one.contains("GATE CHECK"), "{one}");

    // Advancing the held task's finished session: held stays held.
    let second = server
        .start_task("shop", "i-2", "SHOP-2")
        .await
        .task
        .unwrap();
    let advanced = ok(bosun(
        &addr,
        &[
            "tasks",
            "advance",
            &second.id.to_string(),
            "--session",
            &second.stage_session_id,
            "--outcome",
            "completed",
            "-o",
            "json",
        ],
    )
    .await);
    let advanced: serde_json::Value = serde_json::from_str(&advanced).unwrap();
    assert_eq!(advanced["fromStage"], "STAGE_ANALYSIS");

    let recorded = ok(bosun(
        &addr,
        &[
            "lessons",
            "record",
            "--type",
            "flaky_test",
            "--work-item",
            "SHOP-9",
            "--root-cause",
            "a race",
        ],
    )
    .await);
    let id = recorded
        .strip_prefix("lesson ")
        .and_then(|rest| rest.split(':').next())
        .expect("lesson <id>: recorded")
        .to_string();
    assert!(recorded.ends_with(": recorded\n"), "{recorded}");
    let updated = ok(bosun(
        &addr,
        &["lessons", "update", &id, "--status", "in-progress"],
    )
    .await);
    assert!(updated.contains("in_progress"), "{updated}");
    let lessons = ok(bosun(&addr, &["lessons", "list", "--type", "flaky_test"]).await);
    assert_eq!(ids(&lessons), vec![id.clone()]);
    let stats = ok(bosun(&addr, &["lessons", "stats", "-o", "json"]).await);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["total"].as_str().unwrap().parse::<i64>().unwrap() >= 2);
    let stats = ok(bosun(&addr, &["lessons", "stats"]).await);
    assert!(stats.contains("flaky_test"), "{stats}");
}

#[tokio::test]
async fn processors_reconciler_and_event_history() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let addr = url(&server);

    let processors = ok(bosun(&addr, &["processors", "list"]).await);
    assert_eq!(
        ids(&processors),
        vec!["tool_errors", "usage"],
        "{processors}"
    );
    let run = ok(bosun(&addr, &["processors", "run", "usage"]).await);
    assert!(run.contains("succeeded"), "{run}");
    let reset = ok(bosun(&addr, &["processors", "reset", "usage"]).await);
    assert_eq!(reset, "usage: forgot the state of 0 transcript(s)\n");
    let usage = ok(bosun(&addr, &["processors", "usage", "-o", "json"]).await);
    let usage: serde_json::Value = serde_json::from_str(&usage).unwrap();
    assert_eq!(usage["transcripts"], serde_json::json!([]));

    let pass = ok(bosun(&addr, &["reconciler", "run", "--side", "gate"]).await);
    assert!(pass.contains("succeeded"), "{pass}");
    assert!(pass.contains("tracker side  did not run"), "{pass}");
    let status = ok(bosun(&addr, &["reconciler", "status"]).await);
    assert!(status.contains("last pass:"), "{status}");

    let history = ok(bosun(&addr, &["events", "list", "--type", "project."]).await);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 1, "{history}");
    assert!(lines[0].contains("project.created"), "{history}");
    assert!(lines[0].contains("project/shop"), "{history}");
    let json = ok(bosun(&addr, &["events", "list", "-o", "json", "--limit", "2"]).await);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 2);
    assert_eq!(json["events"][0]["seq"], "1");
}

#[tokio::test]
async fn colour_only_when_forced_or_on_a_terminal_and_never_with_no_color() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    spawn(&server, "b", "").await;
    let run = |envs: Vec<(&'static str, &'static str)>| {
        let mut command = tokio::process::Command::from(bosun_command());
        command
            .env_remove("NO_COLOR")
            .env("BOSUN_ADDR", url(&server))
            .envs(envs)
            .args(["sessions", "list"]);
        command.output()
    };
    let forced = ok(run(vec![("CLICOLOR_FORCE", "1")]).await.unwrap());
    assert!(forced.contains("\u{1b}[33mspawning\u{1b}[0m"), "{forced:?}");
    let piped = ok(run(vec![]).await.unwrap());
    assert!(!piped.contains('\u{1b}'), "{piped:?}");
    let refused = ok(run(vec![("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
        .await
        .unwrap());
    assert!(!refused.contains('\u{1b}'), "{refused:?}");
}

#[tokio::test]
async fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(bosun("http://127.0.0.1:1", &["completions", shell]).await);
        assert!(script.contains("sessions"), "{shell}");
        assert!(script.contains("attention"), "{shell}");
        assert!(
            script.contains("needs-input"),
            "{shell}: enum values complete"
        );
    }
}
