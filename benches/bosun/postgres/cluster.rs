//! The benchmarks' throwaway PostgreSQL cluster, when no `--database-url`
//! is given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail, ensure};

/// A throwaway PostgreSQL cluster: `initdb` into a temp dir (as an
/// unprivileged user when this process is root: initdb refuses root), a
/// free loopback port, trust auth on loopback only. Stopped, and its
/// directory deleted, when this process ends (see [`spawn_reaper`]).
pub(super) struct Cluster {
    port: u16,
    /// Its stdin is this process's end of the pipe the reaper waits on.
    _reaper: Child,
}

impl Cluster {
    // The reaper outlives this value on purpose: it waits for this process
    // to exit.
    #[allow(clippy::zombie_processes)]
    pub(super) fn start() -> anyhow::Result<Self> {
        let bindir = find_bindir().context(
            "--postgres: no PostgreSQL binaries (set TEST_BOSUN_PG_BINDIR, or install \
             Debian's postgresql package)",
        )?;
        let user = unprivileged_user()?;
        let root = tempfile::Builder::new()
            .prefix("bosun-bench-pg-")
            .tempdir()?
            .keep();
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
            .arg("--username=postgres")
            .arg("-D")
            .arg(&data))?;
        let log = root.join("postgres.log");
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                root.display()
            );
            let status = pg("pg_ctl")
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options])
                .stdout(Stdio::null())
                .status()?;
            if status.success() {
                return Ok(Self {
                    port,
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

    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// `TEST_BOSUN_PG_BINDIR`, the newest `/usr/lib/postgresql/*/bin`, or
/// `pg_config --bindir`.
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

/// None when this process is not root; else a user initdb accepts
/// (`postgres`, or `bosun-pg`, created when missing).
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
/// cluster at once and deletes `root`; in its own process group, so a
/// Ctrl-C of the bench does not kill it before it cleans up.
fn spawn_reaper(pg_ctl: &Command, data: &Path, root: &Path) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut stop: Vec<String> = vec![pg_ctl.get_program().to_string_lossy().into_owned()];
    stop.extend(pg_ctl.get_args().map(|a| a.to_string_lossy().into_owned()));
    stop.extend(["stop", "-m", "immediate", "-D"].map(String::from));
    stop.push(data.display().to_string());
    Ok(Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$ROOT""#)
        .arg("reaper")
        .args(stop)
        .env("ROOT", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output()?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
