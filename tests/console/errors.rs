//! Failures: one line on stderr naming the status code, the ErrorInfo
//! reason and the bad fields, and the exit code of each kind.

use crate::common::{ADMIN_TOKEN, READ_TOKEN, TestServer};
use crate::{bosun, bosun_with, stderr, stdout, url};

/// Exit code and the single stderr line of a failed command.
fn failure(output: &std::process::Output) -> (i32, String) {
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    assert!(stdout(output).is_empty(), "nothing on stdout");
    (
        output.status.code().expect("an exit code"),
        lines[0].to_string(),
    )
}

#[tokio::test]
async fn each_failure_has_its_exit_code_and_one_line() {
    let server = TestServer::start_with_auth().await;
    let addr = url(&server);
    let admin = [("BOSUN_TOKEN", ADMIN_TOKEN)];
    let read = [("BOSUN_TOKEN", READ_TOKEN)];

    let (code, line) = failure(&bosun(&addr, &["sessions", "list"]).await);
    assert_eq!(code, 4, "{line}");
    assert!(
        line.starts_with("bosun: UNAUTHENTICATED (UNAUTHENTICATED)"),
        "{line}"
    );

    let (code, line) = failure(&bosun_with(&addr, &read, &["sessions", "kill", "shop-1"]).await);
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("bosun: PERMISSION_DENIED"), "{line}");

    let (code, line) = failure(&bosun_with(&addr, &read, &["sessions", "get", "shop-9"]).await);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with("bosun: NOT_FOUND (SESSION_NOT_FOUND)"),
        "{line}"
    );

    // The token may come as a flag too; bad input names its field.
    let long = "x".repeat(300);
    let (code, line) = failure(
        &bosun(
            &addr,
            &[
                "sessions",
                "list",
                "--token",
                ADMIN_TOKEN,
                "--search",
                &long,
            ],
        )
        .await,
    );
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("bosun: INVALID_ARGUMENT (INVALID_ARGUMENT)"),
        "{line}"
    );
    assert!(
        line.contains("bad fields: search: must be at most 256 characters"),
        "{line}"
    );

    let (code, line) = failure(&bosun_with(&addr, &admin, &["projects", "archive", "nope"]).await);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("PROJECT_NOT_FOUND"), "{line}");

    let registered = bosun_with(
        &addr,
        &admin,
        &["projects", "register", "shop", "--repo-path", "/srv/shop"],
    )
    .await;
    assert!(registered.status.success(), "{}", stderr(&registered));
    let (code, line) = failure(
        &bosun_with(
            &addr,
            &admin,
            &["projects", "register", "shop", "--repo-path", "/srv/shop"],
        )
        .await,
    );
    assert_eq!(code, 4, "{line}");
    assert!(
        line.contains("ALREADY_EXISTS (PROJECT_ALREADY_EXISTS)"),
        "{line}"
    );
}

#[tokio::test]
async fn usage_errors_and_an_unreachable_bosun() {
    // A closed port: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");

    let (code, line) = failure(&bosun(&closed, &["sessions", "list"]).await);
    assert_eq!(code, 5, "{line}");
    assert!(
        line.starts_with(&format!("bosun: UNAVAILABLE: cannot reach {closed}")),
        "{line}"
    );

    let output = bosun(&closed, &["sessions", "list", "--state", "asleep"]).await;
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(
        stderr(&output).contains("invalid value 'asleep'"),
        "{}",
        stderr(&output)
    );

    let output = bosun(&closed, &["sessions", "frobnicate"]).await;
    assert_eq!(output.status.code(), Some(2));

    let (code, line) = failure(&bosun(&closed, &["attention", "--ca-file", "/no/such.pem"]).await);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("https://"), "{line}");
}
