//! `bosun migrate --database-url` for real, three at once; bad URLs and an
//! unreachable database refused in one line that never shows the password.

use std::process::Output;

use bosun::storage::postgres::MIGRATOR;

use super::pg;
use super::process::bosun_command;

fn migrate(url: &str) -> Output {
    bosun_command()
        .args(["migrate", "--database-url", url])
        .output()
        .expect("run bosun migrate")
}

/// The count in "bosun: N migration(s) applied to ...".
fn applied(output: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bosun migrate failed: {output:?}");
    stdout
        .strip_prefix("bosun: ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"))
}

#[tokio::test]
async fn three_migrators_at_once_apply_each_migration_once() {
    let Some(server) = pg::server() else {
        return;
    };
    let url = server.database().await;
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3).map(|_| scope.spawn(|| migrate(&url))).collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let mut counts: Vec<usize> = outputs.iter().map(applied).collect();
    counts.sort_unstable();
    let total = MIGRATOR.iter().count();
    assert_eq!(
        counts,
        [0, 0, total],
        "one applied them all, two waited and found none"
    );
    let stdout = String::from_utf8_lossy(&outputs[0].stdout);
    assert!(stdout.contains("PostgreSQL database test_"), "{stdout}");

    let pool = super::pool(&url, 1).await;
    let versions: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<(i64, bool)> = MIGRATOR.iter().map(|m| (m.version, true)).collect();
    assert_eq!(versions, expected);
    assert_eq!(applied(&migrate(&url)), 0, "a later run changes nothing");
}

#[tokio::test]
async fn a_migration_that_cannot_connect_fails_without_echoing_the_password() {
    let Some(server) = pg::server() else {
        return;
    };
    let url = server
        .url("no_such_database")
        .replace("postgres@", "postgres:s3cret@");
    let output = migrate(&url);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to PostgreSQL database no_such_database"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn bad_urls_are_refused_with_exit_code_2_and_one_line() {
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["serve", "--database-url", "mysql://root:s3cret@db/bosun"],
            None,
            "database_url must be a postgres:// or postgresql:// URL",
        ),
        (
            vec!["serve"],
            Some("postgres://bosun:s3cret@db:99999/bosun"),
            "database_url is not a valid PostgreSQL URL",
        ),
        (
            vec!["shim", "--upstream", "http://127.0.0.1:1"],
            Some("sqlite://data/bosun.db"),
            "database_url must be a postgres:// or postgresql:// URL",
        ),
        (
            vec!["migrate", "--database-url", "mysql://root:s3cret@db/bosun"],
            None,
            "database_url must be a postgres:// or postgresql:// URL",
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = bosun_command();
        command.args(&args);
        if let Some(env) = env {
            command.env("BOSUN_DATABASE_URL", env);
        }
        let output = command.output().expect("run bosun");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{args:?}: {stderr}");
    }
}

#[test]
fn serve_names_an_unreachable_database_without_its_password() {
    let output = bosun_command()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env(
            "BOSUN_DATABASE_URL",
            "postgres://bosun:s3cret@127.0.0.1:1/fleet",
        )
        .output()
        .expect("run bosun");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to PostgreSQL database fleet on 127.0.0.1:1 as bosun"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
