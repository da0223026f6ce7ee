//! SQLite storage: one writer connection (see [`writer`]) and a pool of
//! read-only connections. WAL mode lets reads run beside the writer and never
//! wait for it; `synchronous=NORMAL` makes a commit survive a crash of the
//! process (a power loss may lose the newest commits, never corrupt the file).
//! Migrations in `migrations/` are embedded and applied at every start; a
//! second start on the same data dir changes nothing. One process at a time
//! uses a data dir (see [`files::DataDirLock`]).

mod error;
mod files;
pub mod postgres;
mod writer;

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
use files::DataDirLock;
pub use files::{LOCK_FILE, create_data_dir, owner_only_database};
pub use writer::MAX_BATCH;
use writer::Writer;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The database file inside the data dir.
pub const DB_FILE: &str = "bosun.db";
/// How long a statement waits, by default, for a lock held by another
/// process (see [`StorageSettings`]).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections in the pool.
const READERS: u32 = 8;

/// How the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageSettings {
    /// How long a statement waits for a lock held by another process
    /// before it fails (and the call answers UNAVAILABLE).
    pub busy_timeout: Duration,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            busy_timeout: BUSY_TIMEOUT,
        }
    }
}

/// The database: a read pool, the writer, and the change-log head.
#[derive(Clone)]
pub struct Db {
    reader: SqlitePool,
    writer: Writer,
    head_rx: watch::Receiver<i64>,
    busy_timeout: Duration,
    shutdown: Arc<Mutex<Option<Closing>>>,
}

/// What [`Db::close`] stops and releases.
struct Closing {
    stop_tx: oneshot::Sender<()>,
    writer_task: JoinHandle<()>,
    lock: DataDirLock,
}

impl Db {
    /// [`Db::open_with`] the default settings.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(data_dir, StorageSettings::default()).await
    }

    /// Opens (creating if needed) `<data_dir>/bosun.db`, applies migrations
    /// and starts the writer. Fails at once if another process uses the
    /// data dir.
    pub async fn open_with(data_dir: &Path, settings: StorageSettings) -> anyhow::Result<Self> {
        let (path, lock) = prepare(data_dir)?;
        let writer_options = connect_options(&path, settings);
        let mut conn = connect_writer(&path, &writer_options).await?;
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
            .connect_with(connect_options(&path, settings).read_only(true))
            .await
            .with_context(|| format!("cannot open {} for reading", path.display()))?;
        let (head_tx, head_rx) = watch::channel(head);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (writer, writer_task) = Writer::start(conn, writer_options, head_tx, stop_rx);
        Ok(Self {
            reader,
            writer,
            head_rx,
            busy_timeout: settings.busy_timeout,
            shutdown: Arc::new(Mutex::new(Some(Closing {
                stop_tx,
                writer_task,
                lock,
            }))),
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

    /// How long statements wait for another process's lock.
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// Finishes queued writes, then closes every connection and releases
    /// the data dir. Later writes fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let closing = self.shutdown.lock().map(|mut s| s.take()).unwrap_or(None);
        let Some(Closing {
            stop_tx,
            writer_task,
            lock,
        }) = closing
        else {
            return;
        };
        let _ = stop_tx.send(());
        if let Err(err) = writer_task.await {
            tracing::error!(error = %err, "the writer task failed");
        }
        self.reader.close().await;
        drop(lock);
    }
}

/// Applies migrations to `<data_dir>/bosun.db` and returns how many were new.
pub async fn migrate(data_dir: &Path) -> anyhow::Result<usize> {
    let (path, _lock) = prepare(data_dir)?;
    let mut conn =
        connect_writer(&path, &connect_options(&path, StorageSettings::default())).await?;
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

/// Creates the data dir (owner-only), takes its lock, and returns the
/// database path.
fn prepare(data_dir: &Path) -> anyhow::Result<(PathBuf, DataDirLock)> {
    create_data_dir(data_dir)?;
    let lock = DataDirLock::acquire(data_dir)?;
    Ok((data_dir.join(DB_FILE), lock))
}

async fn connect_writer(
    path: &Path,
    options: &SqliteConnectOptions,
) -> anyhow::Result<SqliteConnection> {
    // The database holds tokens' effects and agent prompts: owner-only.
    files::owner_only_database(path)?;
    options
        .connect()
        .await
        .with_context(|| format!("cannot open database {}", path.display()))
}

/// The connection settings every bosun connection uses (WAL, synchronous
/// NORMAL, foreign keys, busy timeout); public for the benchmarks' raw
/// SQLite baseline.
pub fn connect_options(path: &Path, settings: StorageSettings) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(settings.busy_timeout)
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
