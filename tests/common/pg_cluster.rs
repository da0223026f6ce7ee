//! A throwaway PostgreSQL cluster, for the tests (`postgres.rs`) and the
//! benchmarks (`benches/bosun/postgres/cluster.rs`): `initdb` into a temp
//! dir, a free port on 127.0.0.1, trust auth for loopback only.
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
//!   when this process exits (or is killed) the pipe closes and the reaper
//!   stops the cluster and deletes its directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail, ensure};

/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";
/// How long `pg_ctl start` may take before the start is a failure.
const START_DEADLINE_SECS: &str = "60";

pub struct Cluster {
    port: u16,
    root: PathBuf,
    /// Its stdin is this process's end of the pipe the reaper waits on.
    _reaper: Child,
}

impl Cluster {
    /// Starts a cluster of the binaries in `bindir`, in a temp dir named
    /// `prefix...`, with the server `settings` (`name=value`) besides the
    /// port, the socket dir, loopback only and 200 connections.
    // The reaper outlives this value on purpose: it waits for this process
    // to exit.
    #[allow(clippy::zombie_processes)]
    pub fn start(bindir: &Path, prefix: &str, settings: &[&str]) -> anyhow::Result<Self> {
        let user = unprivileged_user()?;
        let root = tempfile::Builder::new().prefix(prefix).tempdir()?.keep();
        if let Some(user) = &user {
            run(Command::new("chown").arg(user).arg(&root))?;
        }
        let data = root.join("data");
        let pg = |tool: &str| as_user(user.as_deref(), &bindir.join(tool));
        let reaper = spawn_reaper(&pg("pg_ctl"), &data, &root)?;
        run(pg("initdb")
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .arg(format!("--username={SUPERUSER}"))
            .arg("-D")
            .arg(&data))?;
        let log = root.join("postgres.log");
        let settings: String = settings.iter().map(|s| format!(" -c {s}")).collect();
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{settings}",
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
                .context("run pg_ctl")?;
            if status.success() {
                return Ok(Self {
                    port,
                    root,
                    _reaper: reaper,
                });
            }
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if !log_text.contains("could not bind") && !log_text.contains("already in use") {
                bail!("PostgreSQL did not start ({status}):\n{log_text}");
            }
        }
        bail!("PostgreSQL found no free port in 5 attempts")
    }

    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The cluster's directory (data, log).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// `TEST_BOSUN_PG_BINDIR`, the newest Debian install, or `pg_config --bindir`.
pub fn find_bindir() -> Option<PathBuf> {
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
fn unprivileged_user() -> anyhow::Result<Option<String>> {
    let uid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Ok(None);
    }
    for user in ["postgres", "bosun-pg"] {
        if Command::new("id")
            .arg("-u")
            .arg(user)
            .output()?
            .status
            .success()
        {
            return Ok(Some(user.to_owned()));
        }
    }
    run(Command::new("useradd").args(["--system", "--no-create-home", "bosun-pg"]))?;
    Ok(Some("bosun-pg".to_owned()))
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
/// Ctrl-C of the run does not kill it before it cleans up.
fn spawn_reaper(pg_ctl: &Command, data: &Path, root: &Path) -> anyhow::Result<Child> {
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
        .context("spawn the PostgreSQL reaper")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
