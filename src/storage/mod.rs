//! SQLite storage: one writer connection (see [`writer`]) and a pool of
//! read-only connections. WAL mode lets reads run beside the writer and never
//! wait for it; `synchronous=NORMAL` makes a commit survive a crash of the
//! process (a power loss may lose the newest commits, never corrupt the file).
//! Migrations in `migrations/` are embedded and applied at every start; a
//! second start on the same data dir changes nothing.

mod error;
mod writer;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use error::StoreError;
pub use writer::MAX_BATCH;
use writer::Writer;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The database file inside the data dir.
pub const DB_FILE: &str = "bosun.db";
/// How long a statement waits for a lock held by another process.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections in the pool.
const READERS: u32 = 8;

/// The database: a read pool, the writer, and the change-log head.
#[derive(Clone)]
pub struct Db {
    reader: SqlitePool,
    writer: Writer,
    head_rx: watch::Receiver<i64>,
    shutdown: Arc<Mutex<Option<WriterShutdown>>>,
}

/// How to stop the writer task: the stop signal and the task to await.
type WriterShutdown = (oneshot::Sender<()>, JoinHandle<()>);

impl Db {
    /// Opens (creating if needed) `<data_dir>/bosun.db`, applies migrations
    /// and starts the writer.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = prepare(data_dir)?;
        let mut conn = connect_writer(&path).await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .with_context(|| format!("cannot apply migrations to {}", path.display()))?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_log")
            .fetch_one(&mut conn)
            .await
            .context("cannot read the change log")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(connect_options(&path).read_only(true))
            .await
            .with_context(|| format!("cannot open {} for reading", path.display()))?;
        let (head_tx, head_rx) = watch::channel(head);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (writer, task) = Writer::start(conn, head_tx, stop_rx);
        Ok(Self {
            reader,
            writer,
            head_rx,
            shutdown: Arc::new(Mutex::new(Some((stop_tx, task)))),
        })
    }

    /// The read-only pool. Reads see every committed change and never wait
    /// for the writer.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Runs `job` in a write transaction (see [`Writer::write`]).
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write(job).await
    }

    /// Runs `job` alone on the writer connection, outside any transaction
    /// (see [`Writer::outside_transaction`]).
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.outside_transaction(job).await
    }

    /// The newest committed change-log seq, updated after every commit.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head_rx.clone()
    }

    /// Finishes queued writes, then closes every connection. Later writes fail
    /// with [`StoreError::Closed`].
    pub async fn close(&self) {
        let shutdown = self.shutdown.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some((stop_tx, task)) = shutdown {
            let _ = stop_tx.send(());
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the writer task failed");
            }
        }
        self.reader.close().await;
    }
}

/// Applies migrations to `<data_dir>/bosun.db` and returns how many were new.
pub async fn migrate(data_dir: &Path) -> anyhow::Result<usize> {
    let path = prepare(data_dir)?;
    let mut conn = connect_writer(&path).await?;
    let applied: i64 = applied_migrations(&mut conn).await;
    MIGRATOR
        .run(&mut conn)
        .await
        .with_context(|| format!("cannot apply migrations to {}", path.display()))?;
    let now: i64 = applied_migrations(&mut conn).await;
    conn.close().await.ok();
    Ok(usize::try_from(now - applied).unwrap_or(0))
}

async fn applied_migrations(conn: &mut SqliteConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(conn)
        .await
        .unwrap_or(0)
}

/// Creates the data dir (owner-only) and returns the database path.
fn prepare(data_dir: &Path) -> anyhow::Result<PathBuf> {
    create_data_dir(data_dir)?;
    Ok(data_dir.join(DB_FILE))
}

/// Creates the data dir, owner-only, unless it exists.
pub fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    }
    Ok(())
}

async fn connect_writer(path: &Path) -> anyhow::Result<SqliteConnection> {
    let conn = connect_options(path)
        .create_if_missing(true)
        .connect()
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    // The database holds tokens' effects and agent prompts: owner-only.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    Ok(conn)
}

/// The connection settings every bosun connection uses (WAL, synchronous
/// NORMAL, foreign keys, busy timeout); public for the benchmarks' raw
/// SQLite baseline.
pub fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("temp_store", "memory")
}

/// Decodes a row rendered as JSON by its `<table>_payload` view.
pub fn decode_row<T: serde::de::DeserializeOwned>(
    kind: &str,
    payload: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|err| StoreError::Malformed(format!("{kind} row: {err}")))
}

/// Decodes rows rendered as JSON by a `<table>_payload` view.
pub fn decode_rows<T: serde::de::DeserializeOwned>(
    kind: &str,
    payloads: &[String],
) -> Result<Vec<T>, StoreError> {
    payloads
        .iter()
        .map(|payload| decode_row(kind, payload))
        .collect()
}

/// A value as JSON text, for a JSON column.
pub fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Malformed(err.to_string()))
}
