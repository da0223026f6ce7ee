//! A real PostgreSQL for tests: one throwaway cluster per test binary
//! (`initdb` into a temp dir, a free port on 127.0.0.1, trust auth for
//! loopback only, fsync off), a fresh database per test.
//!
//! - Binaries: `TEST_BOSUN_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`
//!   (Debian's `postgresql` package; `scripts/lib/postgres.sh` installs it),
//!   else `pg_config --bindir`.
//! - initdb and postgres refuse to run as root: as root the cluster runs as
//!   the `postgres` user (created by Debian's package; `bosun-pg` is created
//!   when it is missing), through `runuser`.
//! - Readiness: `pg_ctl start -w` waits until the server accepts connections,
//!   with a deadline; a port taken meanwhile by someone else is retried.
//! - Stopped at the end: a reaper process holds a pipe from this process;
//!   when the test binary exits (or is killed) the pipe closes and the
//!   reaper stops the cluster and deletes its directory.
//! - Without PostgreSQL installed, [`server`] returns None so the tests
//!   return early with a note on stderr, except under CI=true or
//!   TEST_BOSUN_PG_REQUIRED=1 (set by scripts/test), where it panics: CI never
//!   skips them. A server that is installed but does not start always fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser initdb creates.
const SUPERUSER: &str = "postgres";
/// How long `pg_ctl start` may take before the start is a failure.
const START_DEADLINE_SECS: &str = "60";

pub struct PgServer {
    port: u16,
    root: PathBuf,
    /// Kept open until this process exits; see the module docs.
    _reaper: Child,
    next_database: AtomicU32,
}

/// The cluster of this test binary, started on first use.
pub fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| match find_bindir() {
            Some(bindir) => Some(PgServer::start(&bindir)),
            None if required() => panic!(
                "PostgreSQL is not installed (CI=true or TEST_BOSUN_PG_REQUIRED=1: these tests must run); \
                 scripts/test-postgres installs Debian's postgresql package"
            ),
            None => {
                eprintln!(
                    "NOTE: PostgreSQL tests not run: no PostgreSQL binaries found \
                     (run scripts/test-postgres, or set TEST_BOSUN_PG_BINDIR)"
                );
                None
            }
        })
        .as_ref()
}

impl PgServer {
    // The reaper outlives every path here on purpose: it waits for this
    // process to exit (see the module docs).
    #[allow(clippy::zombie_processes)]
    fn start(bindir: &Path) -> Self {
        let user = unprivileged_user();
        let root = tempfile::Builder::new()
            .prefix("bosun-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = root.join("data");
        if let Some(user) = &user {
            run(Command::new("chown").arg(user).arg(&root));
        }
        let pg = |tool: &str| as_user(user.as_deref(), &bindir.join(tool));
        let reaper = spawn_reaper(&pg("pg_ctl"), &data, &root);
        run(pg("initdb")
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .arg(format!("--username={SUPERUSER}"))
            .arg("-D")
            .arg(&data));
        let log = root.join("postgres.log");
        for _attempt in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c full_page_writes=off -c max_connections=200",
                root.display()
            );
            let status = pg("pg_ctl")
                .args(["start", "-w", "-t", START_DEADLINE_SECS, "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options])
                .stdout(Stdio::null())
                .status()
                .expect("run pg_ctl");
            if status.success() {
                return Self {
                    port,
                    root,
                    _reaper: reaper,
                    next_database: AtomicU32::new(1),
                };
            }
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if !log_text.contains("could not bind") && !log_text.contains("already in use") {
                panic!("PostgreSQL did not start ({status}):\n{log_text}");
            }
        }
        panic!("PostgreSQL found no free port in 5 attempts");
    }

    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; returns its URL.
    pub async fn database(&self) -> String {
        use sqlx::Connection;
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        self.url(&name)
    }

    /// The cluster's directory (data, log).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Whether a missing PostgreSQL fails the tests instead of skipping them.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
        || std::env::var("TEST_BOSUN_PG_REQUIRED").is_ok_and(|required| required == "1")
}

/// `TEST_BOSUN_PG_BINDIR`, the newest Debian install, or `pg_config --bindir`.
fn find_bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TEST_BOSUN_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    bin.join("initdb").is_file().then_some(bin)
}

/// None when this process is not root; else a user that initdb accepts.
fn unprivileged_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    for user in ["postgres", "bosun-pg"] {
        let known = Command::new("id")
            .arg("-u")
            .arg(user)
            .output()
            .expect("run id");
        if known.status.success() {
            return Some(user.to_owned());
        }
    }
    run(Command::new("useradd").args(["--system", "--no-create-home", "bosun-pg"]));
    Some("bosun-pg".to_owned())
}

/// `program` run as `user` (through runuser) or as this process's user.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Waits until this process's end (its stdin closes), then stops the
/// cluster at once and deletes `root`. In its own process group, so a
/// Ctrl-C of the test run does not kill it before it cleans up.
fn spawn_reaper(pg_ctl: &Command, data: &Path, root: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let mut stop: Vec<String> = vec![pg_ctl.get_program().to_string_lossy().into_owned()];
    stop.extend(pg_ctl.get_args().map(|a| a.to_string_lossy().into_owned()));
    stop.extend(["stop", "-m", "immediate", "-D"].map(String::from));
    stop.push(data.display().to_string());
    Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$ROOT""#)
        .arg("reaper")
        .args(stop)
        .env("ROOT", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the PostgreSQL reaper")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
