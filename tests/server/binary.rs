//! The `bosun` binary as an operator runs it: bad configuration, `bosun
//! migrate`, SIGTERM and SIGHUP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bosun::pb;

use super::common::process::bosun_command;

#[test]
fn bad_configuration_exits_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // (arguments, environment, what stderr must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["serve", "--grpc-addr", "nowhere"],
            vec![],
            "invalid value 'nowhere'",
        ),
        (
            vec!["serve", "--config", "/no/such/bosun.toml"],
            vec![],
            "does not exist",
        ),
        (
            vec!["serve"],
            vec![("BOSUN_LESSONS__DEDUP_WINDOW", "soon")],
            "dedup_window",
        ),
        (
            vec!["serve"],
            vec![("BOSUN_NO_SUCH_SETTING", "1")],
            "no_such_setting",
        ),
        (
            vec!["serve", "--grpc-addr", "0.0.0.0:0"],
            vec![],
            "refusing to start",
        ),
    ];
    for (args, env, expected) in cases {
        let output = bosun_command()
            .args(&args)
            .envs(env.clone())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(expected),
            "{args:?}: {stderr}"
        );
        if !args.contains(&"nowhere") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        }
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn migrate_command_applies_then_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        let output = bosun_command()
            .args(["migrate", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run().contains(&format!(
        "{} migration(s) applied",
        bosun::storage::MIGRATOR.iter().count()
    )));
    assert!(run().contains("0 migration(s) applied"));
}

type Lines = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// Spawns `serve` and reads its log until the ready line; returns the
/// process, the rest of its log and the gRPC address the line names.
fn spawn_serving(serve: &mut Command) -> (std::process::Child, Lines, String) {
    let mut child = serve.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("bosun exited before serving").unwrap();
        if let Some(rest) = line.split("grpc_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    (child, lines, addr)
}

/// A Lessons client of the bosun serving gRPC at `addr`.
async fn lessons_at(addr: &str) -> pb::lessons_client::LessonsClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::lessons_client::LessonsClient::new(channel)
}

fn terminate(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[tokio::test]
async fn the_binary_serves_until_sigterm_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = bosun_command();
    serve
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"));

    // A SIGTERM as soon as the ready line is out is a clean stop too (the
    // handlers are installed before the line is written), even when no one
    // reads the log any more (a log line that cannot be written is dropped).
    let (mut child, lines, _) = spawn_serving(&mut serve);
    drop(lines);
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "clean exit on an early SIGTERM, stderr closed: {status:?}"
    );

    let (mut child, lines, addr) = spawn_serving(&mut serve);
    let mut lessons = lessons_at(&addr).await;
    let recorded = lessons
        .record_lesson(pb::RecordLessonRequest {
            request_id: String::new(),
            lesson: Some(pb::Lesson {
                lesson_type: "gate_failure".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(recorded.into_inner().outcome(), pb::RecordOutcome::Recorded);

    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[tokio::test]
async fn sighup_reloads_run_time_settings_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bosun.toml");
    std::fs::write(
        &config,
        "grpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[lessons]\nenabled = true\n",
    )
    .unwrap();
    let (mut child, mut lines, addr) = spawn_serving(
        bosun_command()
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data")),
    );
    let mut wait_for = |needle: &str| loop {
        let line = lines.next().expect("bosun exited").unwrap();
        if line.contains(needle) {
            return line;
        }
    };
    let mut lessons = lessons_at(&addr).await;
    // Writes the file, sends SIGHUP, waits for the log line `outcome`, and
    // returns the lessons settings then served.
    let mut reload = async |file: &str, outcome: &str| {
        std::fs::write(&config, file).unwrap();
        let sent = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_for(outcome);
        lessons
            .get_lesson_settings(pb::GetLessonSettingsRequest {})
            .await
            .unwrap()
            .into_inner()
    };

    let settings = reload(
        "[lessons]\nenabled = false\ndedup_window = \"5m\"\n",
        "lessons settings changed",
    )
    .await;
    assert!(!settings.enabled, "the kill-switch was reloaded");
    assert_eq!(settings.dedup_window.unwrap().seconds, 300);

    let settings = reload(
        "[lessons]\nenabled = maybe\n",
        "configuration reload refused",
    )
    .await;
    assert!(!settings.enabled, "a bad file changes nothing");

    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
