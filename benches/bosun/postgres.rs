//! The PostgreSQL sections: bosun with 1 replica and with 3 replicas on one
//! database, each figure beside a baseline measured in the same run on the
//! same server through the same driver (sqlx):
//!
//! - writes against raw single-row insert transactions into `lessons`, on a
//!   fresh database with bosun's real schema (so the same triggers append
//!   to the change log, take the `change_log_head` lock and NOTIFY);
//! - reads against the same statement sent raw to the same database, over
//!   as many pooled connections as the replicas' read pools hold;
//! - Watch commit-to-delivery with the watchers on other replicas than the
//!   one taking the writes (woken by LISTEN/NOTIFY).
//!
//! Each bosun configuration gets a fresh database, so runs don't interfere.
//! `--postgres` starts a throwaway cluster (as tests/common/postgres.rs
//! does, but with PostgreSQL's durable defaults: fsync and
//! synchronous_commit on, as a deployment runs); `--database-url` uses a
//! server of yours, creating (and at the end dropping) one database per
//! configuration, so its user needs CREATEDB.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tonic::transport::Channel;

use crate::daemon::Bosun;
use crate::load::{Run, Window, closed_loop};
use crate::report::{Row, Target};
use crate::sqlite::now_micros;
use crate::{CONCURRENCIES, QUIET, TARGET_CONCURRENCY, rpc, stream};

/// bosun's read pool per replica (`storage::READERS`): the raw read
/// baselines get as many connections as the replicas hold.
const BOSUN_READERS: u32 = 8;
/// Connections of the concurrent raw write baseline.
const RAW_CONNECTIONS: usize = 16;
/// The Watch measurement of issue 16: watchers, events per second, p99.
const WATCHERS: usize = 100;
const EVENTS_PER_SECOND: u32 = 1000;
const WATCH_P99_MS: f64 = 20.0;

const INSERT: &str = "INSERT INTO lessons (create_time, lesson_type, work_item_id, stage, agent, \
     repo, root_cause, suggestion, source) VALUES ($1, 'flaky_test', $2, 'testing', 'claude-code', \
     'acme/payments', 'the payment test depends on wall-clock time', \
     'inject a clock into PaymentWindow', 'manual')";

/// What ListLessons (page of 100) asks the database.
const LIST_LESSONS: &str = "SELECT id, create_time, update_time, lesson_type, work_item_id, \
     task_id, session_id, stage, agent, repo, root_cause, suggestion, detail, status, \
     related_task, source, attribution, target_repo, target_domain \
     FROM lessons WHERE 1 = 1 ORDER BY id DESC LIMIT $1";
/// GetSession's first statement (it then reads the session's view).
const GET_SESSION: &str = "SELECT payload FROM sessions_payload WHERE id = $1";

/// Where the databases are created: a server given by URL, or a throwaway
/// cluster.
pub struct Server {
    admin_url: String,
    /// Databases created on a server given by URL, dropped at the end.
    created: Vec<String>,
    cluster: Option<Cluster>,
}

impl Server {
    /// The server at `url`, or (None) a throwaway cluster started now.
    pub async fn open(url: Option<&str>) -> anyhow::Result<Self> {
        let (admin_url, cluster) = match url {
            Some(url) => (url.to_owned(), None),
            None => {
                let cluster = Cluster::start()?;
                (cluster.url(), Some(cluster))
            }
        };
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .context("cannot connect to PostgreSQL")?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut admin)
            .await?;
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings \
             WHERE name IN ('fsync', 'synchronous_commit') ORDER BY name",
        )
        .fetch_all(&mut admin)
        .await?;
        admin.close().await.ok();
        let settings = settings
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "postgres: PostgreSQL {version} ({}, {settings})",
            if cluster.is_some() {
                "throwaway cluster on loopback"
            } else {
                "the server of --database-url"
            }
        );
        Ok(Self {
            admin_url,
            created: Vec::new(),
            cluster,
        })
    }

    /// A new, empty database; returns its URL.
    async fn database(&mut self, name: &str) -> anyhow::Result<String> {
        let name = format!("bosun_bench_{}_{name}", std::process::id());
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .context("cannot create a database for the benchmark (the user needs CREATEDB)")?;
        admin.close().await.ok();
        self.created.push(name.clone());
        with_database(&self.admin_url, &name)
    }

    /// Drops the databases this run created (a throwaway cluster goes
    /// whole, with its directory).
    pub async fn finish(self) {
        if self.cluster.is_some() || self.created.is_empty() {
            return;
        }
        let Ok(mut admin) = PgConnection::connect(&self.admin_url).await else {
            eprintln!("postgres: cannot connect to drop {:?}", self.created);
            return;
        };
        for name in &self.created {
            let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
            if let Err(err) = dropped {
                eprintln!("postgres: cannot drop database {name}: {err}");
            }
        }
        admin.close().await.ok();
    }
}

/// `url` naming database `name` instead of its own (user, password, host
/// and parameters kept).
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("the database URL has no scheme (postgres://...)")?;
    let (location, parameters) = match rest.split_once('?') {
        Some((location, parameters)) => (location, format!("?{parameters}")),
        None => (rest, String::new()),
    };
    let authority = location.split_once('/').map_or(location, |(a, _)| a);
    Ok(format!("{scheme}://{authority}/{name}{parameters}"))
}

/// The PostgreSQL sections: the raw baselines, then bosun with 1 and with
/// 3 replicas, each on its own fresh database.
pub async fn measure(
    root: &Path,
    server: &mut Server,
    window: Window,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let raw = baselines(server, window, rows).await?;
    for replicas in [1, 3] {
        let url = server.database(&format!("replicas_{replicas}")).await?;
        configuration(root, &url, replicas, &raw, window, rows).await?;
    }
    Ok(())
}

/// Settles what the rows before a latency row left PostgreSQL to do, as
/// pgbench vacuums before each of its runs: vacuums and analyzes the tables
/// they wrote (tens of thousands of inserts and updates, which autovacuum
/// would otherwise work through during the row) and writes their WAL out in
/// a checkpoint (the checkpointer would otherwise flush it meanwhile).
/// CHECKPOINT needs a superuser or the pg_checkpoint role; without either,
/// only the vacuum runs.
async fn settle(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql("VACUUM (ANALYZE)")
        .execute(&mut conn)
        .await
        .context("cannot vacuum the benchmark's database")?;
    if let Err(err) = sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await {
        eprintln!("no checkpoint before the change-stream row: {err}");
    }
    conn.close().await.ok();
    Ok(())
}

/// The same-run write baselines.
struct Raw {
    single: f64,
    concurrent: f64,
}

/// Raw PostgreSQL on a fresh database with bosun's schema and triggers.
async fn baselines(
    server: &mut Server,
    window: Window,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Raw> {
    let url = server.database("raw").await?;
    let mut conn = PgConnection::connect(&url).await?;
    bosun::storage::postgres::MIGRATOR.run(&mut conn).await?;

    let round_trip = round_trip_rate(&mut conn, window).await?;
    rows.push(Row::value(
        "PostgreSQL driver round trip (SELECT 1, one connection)",
        round_trip,
        "/s",
    ));

    let pool = pool(&url, 1).await?;
    let run = insert_run(pool.clone(), 1, window).await;
    let single = run.rate();
    rows.push(Row::run(
        "raw PostgreSQL: single-row insert transactions, 1 connection",
        &run,
    ));
    pool.close().await;

    let pool = pool_of(&url, RAW_CONNECTIONS).await?;
    let run = insert_run(pool.clone(), RAW_CONNECTIONS, window).await;
    let concurrent = run.rate();
    rows.push(
        Row::run(
            format!(
                "raw PostgreSQL: single-row insert transactions, {RAW_CONNECTIONS} connections"
            ),
            &run,
        )
        .against("raw PG 1-row txn, 1 connection", concurrent, single),
    );
    pool.close().await;

    let batched = batched_insert_rate(&mut conn, 256, window).await?;
    rows.push(
        Row::value(
            "raw PostgreSQL: 256 rows per transaction",
            batched,
            "rows/s",
        )
        .against("raw PG 1-row txn, 1 connection", batched, single),
    );
    conn.close().await?;
    Ok(Raw { single, concurrent })
}

/// bosun with `replicas` replicas on the database at `url`: writes spread
/// over every replica, reads likewise, and Watch with the watchers on the
/// replicas that don't take the writes.
async fn configuration(
    root: &Path,
    url: &str,
    replicas: usize,
    raw: &Raw,
    window: Window,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut servers = Vec::with_capacity(replicas);
    for n in 0..replicas {
        let name = replica_name(n);
        let config = format!(
            "database_url = {url:?}\nreplica_name = \"{name}\"\n{QUIET}\
             [events]\nprogress_interval = \"500ms\"\n"
        );
        // The first applies the migrations; the others find them applied.
        servers.push(Bosun::start(&root.join(format!("pg-{replicas}-{name}")), &config).await?);
    }
    let label = if replicas == 1 {
        "PostgreSQL, 1 replica".to_owned()
    } else {
        format!("PostgreSQL, {replicas} replicas")
    };

    // Connections interleaved over the replicas, so the workers of each
    // closed loop spread evenly over them.
    let mut per_replica = Vec::with_capacity(replicas);
    for server in &servers {
        per_replica.push(server.connections(rpc::CONNECTIONS).await?);
    }
    let channels: Vec<Channel> = (0..rpc::CONNECTIONS)
        .flat_map(|n| per_replica.iter().map(move |channels| channels[n].clone()))
        .collect();
    let channels = Arc::new(channels);

    for concurrency in CONCURRENCIES {
        let run = rpc::record_lesson(channels.clone(), concurrency, window).await;
        write_rows(rows, &label, "RecordLesson", concurrency, &run, raw);
    }
    let sessions = Arc::new(rpc::sessions(channels[0].clone()).await?);
    for concurrency in CONCURRENCIES {
        let run =
            rpc::report_activity(channels.clone(), sessions.clone(), concurrency, window).await;
        write_rows(rows, &label, "ReportActivity", concurrency, &run, raw);
    }

    let readers = pool_of(url, BOSUN_READERS as usize * replicas).await?;
    for concurrency in [1, 64] {
        let run = rpc::get_session(channels.clone(), sessions.clone(), concurrency, window).await;
        let baseline =
            get_session_run(readers.clone(), sessions.clone(), concurrency, window).await;
        read_row(rows, &label, "GetSession", concurrency, &run, &baseline);
        let run = rpc::list_lessons(channels.clone(), concurrency, window).await;
        let baseline = list_lessons_run(readers.clone(), concurrency, window).await;
        read_row(
            rows,
            &label,
            "ListLessons (page of 100)",
            concurrency,
            &run,
            &baseline,
        );
    }
    readers.close().await;

    // Right after the rows above, PostgreSQL is still working through
    // their writes (autovacuum, the checkpointer); then settled (see
    // `settle`), the row with the target.
    stream_row(&servers, &label, window, None, rows).await?;
    settle(url).await?;
    stream_row(&servers, &label, window, Some(WATCH_P99_MS), rows).await?;

    for server in servers {
        server.stop();
    }
    Ok(())
}

/// Watch commit-to-delivery with watchers on every replica but the writer's
/// (with one replica, on it), and whether every watcher got every event;
/// held to `target` (p99 ms) when given, else reported only.
async fn stream_row(
    servers: &[Bosun],
    label: &str,
    window: Window,
    target: Option<f64>,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let replicas = servers.len();
    let writer = &servers[0];
    let watched = if replicas == 1 {
        servers
    } else {
        &servers[1..]
    };
    let at = stream::head(writer.connections(1).await?.remove(0)).await?;
    let mut streams = Vec::with_capacity(WATCHERS);
    for (n, server) in watched.iter().enumerate() {
        let share = WATCHERS / watched.len() + usize::from(n < WATCHERS % watched.len());
        streams.extend(stream::open(server, share, at).await?);
    }
    let delivery = stream::deliver(writer, streams, EVENTS_PER_SECOND, window.measure).await?;
    let p99 = delivery.latency.value_at_quantile(0.99) as f64 / 1e3;
    let on = if replicas == 1 {
        "on it".to_owned()
    } else {
        let names: Vec<String> = (1..replicas).map(replica_name).collect();
        format!("on {}, writes to {}", names.join(" and "), replica_name(0))
    };
    let when = match target {
        Some(_) => "PostgreSQL settled",
        None => "right after the rows above",
    };
    let mut row = Row::value(
        format!(
            "{label}: change stream, {WATCHERS} watchers {on}, {EVENTS_PER_SECOND} events/s, \
             commit to delivery, {when}"
        ),
        delivery.latency.max() as f64 / 1e3,
        "ms max",
    );
    if let Some(target) = target {
        row = row.target(Target::AtMost(target, "ms p99"), p99);
    }
    row.latency = format!(
        "{:.2} / {p99:.2} ms",
        delivery.latency.value_at_quantile(0.5) as f64 / 1e3
    );
    rows.push(row);
    let complete = (delivery.watchers - delivery.incomplete) as f64;
    rows.push(
        Row::value(
            format!(
                "  watchers that got all {} events, each once, in order",
                delivery.events
            ),
            complete,
            &format!("of {WATCHERS}"),
        )
        .target(Target::AtLeast(WATCHERS as f64, "(all)"), complete),
    );
    Ok(())
}

/// Replica 0 is "a", 1 is "b", ...
fn replica_name(n: usize) -> String {
    char::from(b'a' + n as u8).to_string()
}

fn write_rows(
    rows: &mut Vec<Row>,
    label: &str,
    rpc: &str,
    concurrency: usize,
    run: &Run,
    raw: &Raw,
) {
    let targeted = TARGET_CONCURRENCY.contains(&concurrency);
    let rate = run.rate();
    let mut row = Row::run(format!("{label}: {rpc}, concurrency {concurrency}"), run).against(
        "raw PG 1-row txn, 1 connection",
        rate,
        raw.single,
    );
    if targeted {
        row = row.target(Target::RatioAtLeast(1.0), rate);
        rows.push(row);
        rows.push(Row::compare(
            &format!("raw PG 1-row txns, {RAW_CONNECTIONS} connections"),
            rate,
            raw.concurrent,
        ));
    } else {
        rows.push(row);
    }
}

fn read_row(rows: &mut Vec<Row>, label: &str, rpc: &str, concurrency: usize, run: &Run, raw: &Run) {
    let rate = run.rate();
    rows.push(
        Row::run(format!("{label}: {rpc}, concurrency {concurrency}"), run).against(
            &format!(
                "raw PG: its statement, concurrency {concurrency}: {}/s{}",
                crate::report::figure(raw.rate()),
                if raw.errors > 0 {
                    format!(" ({} errors)", raw.errors)
                } else {
                    String::new()
                }
            ),
            rate,
            raw.rate(),
        ),
    );
}

async fn pool(url: &str, connections: u32) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(url)
        .await?)
}

async fn pool_of(url: &str, connections: usize) -> anyhow::Result<PgPool> {
    pool(url, u32::try_from(connections)?).await
}

/// Single-row insert transactions (each INSERT its own transaction, one
/// round trip) from `concurrency` workers over `pool`.
async fn insert_run(pool: PgPool, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let pool = pool.clone();
        async move {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("RAW-{worker}-{n}"))
                .execute(&pool)
                .await
                .map(drop)
        }
    })
    .await
}

/// Rows per second in transactions of `rows_per_transaction` inserts.
async fn batched_insert_rate(
    conn: &mut PgConnection,
    rows_per_transaction: usize,
    window: Window,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let measure_from = started + window.warmup;
    let until = measure_from + window.measure;
    let (mut rows, mut n) = (0u64, 0u64);
    let mut measured_from = None;
    while Instant::now() < until {
        if measured_from.is_none() && Instant::now() >= measure_from {
            measured_from = Some((Instant::now(), rows));
        }
        let mut tx = conn.begin().await?;
        for _ in 0..rows_per_transaction {
            sqlx::query(INSERT)
                .bind(now_micros())
                .bind(format!("RAW-BATCH-{n}"))
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
        rows += rows_per_transaction as u64;
    }
    let (from, rows_before) = measured_from.unwrap_or((started, 0));
    Ok((rows - rows_before) as f64 / from.elapsed().as_secs_f64())
}

/// `SELECT 1` one after another on one connection.
async fn round_trip_rate(conn: &mut PgConnection, window: Window) -> anyhow::Result<f64> {
    let started = Instant::now();
    let until = started + window.warmup + window.measure;
    let mut count = 0u64;
    let mut from = None;
    while Instant::now() < until {
        if from.is_none() && started.elapsed() >= window.warmup {
            from = Some((Instant::now(), count));
        }
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        count += 1;
    }
    let (from, before) = from.unwrap_or((started, 0));
    Ok((count - before) as f64 / from.elapsed().as_secs_f64())
}

async fn get_session_run(
    pool: PgPool,
    sessions: Arc<Vec<String>>,
    concurrency: usize,
    window: Window,
) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let pool = pool.clone();
        let id = sessions[(worker + n as usize) % sessions.len()].clone();
        async move {
            let payload: sqlx::types::Json<serde_json::Value> = sqlx::query_scalar(GET_SESSION)
                .bind(id)
                .fetch_one(&pool)
                .await
                .map_err(|err| err.to_string())?;
            std::hint::black_box(payload);
            Ok::<_, String>(())
        }
    })
    .await
}

async fn list_lessons_run(pool: PgPool, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |_, _| {
        let pool = pool.clone();
        async move {
            let rows = sqlx::query(LIST_LESSONS)
                .bind(101i64)
                .fetch_all(&pool)
                .await
                .map_err(|err| err.to_string())?;
            if rows.len() == 101 {
                std::hint::black_box(rows);
                Ok(())
            } else {
                Err(format!("{} rows, not 101", rows.len()))
            }
        }
    })
    .await
}

/// A throwaway PostgreSQL cluster: `initdb` into a temp dir (as an
/// unprivileged user when this process is root: initdb refuses root), a
/// free loopback port, trust auth on loopback only. Stopped, and its
/// directory deleted, when this process ends (see [`spawn_reaper`]).
struct Cluster {
    port: u16,
    /// Its stdin is this process's end of the pipe the reaper waits on.
    _reaper: Child,
}

impl Cluster {
    // The reaper outlives this value on purpose: it waits for this process
    // to exit.
    #[allow(clippy::zombie_processes)]
    fn start() -> anyhow::Result<Self> {
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

    fn url(&self) -> String {
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
