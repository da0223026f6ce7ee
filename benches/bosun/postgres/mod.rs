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

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use tonic::transport::Channel;

use crate::daemon::Bosun;
use crate::load::{Run, Window};
use crate::report::{Row, Target};
use crate::{CONCURRENCIES, QUIET, TARGET_CONCURRENCY, rpc, stream};

mod cluster;
mod raw;

use cluster::Cluster;
use raw::{RAW_CONNECTIONS, Raw, baselines, get_session_run, list_lessons_run, pool_of};

/// bosun's read pool per replica (`storage::READERS`): the raw read
/// baselines get as many connections as the replicas hold.
const BOSUN_READERS: u32 = 8;
/// The Watch measurement of issue 16: watchers, events per second, p99.
const WATCHERS: usize = 100;
const EVENTS_PER_SECOND: u32 = 1000;
const WATCH_P99_MS: f64 = 20.0;

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
                let cluster = cluster::start()?;
                (cluster.url("postgres"), Some(cluster))
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
    let raw = baselines(&server.database("raw").await?, window, rows).await?;
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
        per_replica.push(server.process.connections(rpc::CONNECTIONS).await?);
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
        server.process.stop();
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
    let at = stream::head(writer.process.connections(1).await?.remove(0)).await?;
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
