//! Storage on either engine: embedded SQLite in the data dir (the default),
//! or a shared PostgreSQL ([`postgres`]). Either way there is one writer
//! connection per process (see [`writer`]) and a pool of read connections;
//! domain stores speak to both through [`sql`].
//!
//! On SQLite: WAL mode lets reads run beside the writer and never
//! wait for it; `synchronous=NORMAL` makes a commit survive a crash of the
//! process (a power loss may lose the newest commits, never corrupt the file).
//! Migrations in `migrations/` are embedded and applied at every start; a
//! second start on the same data dir changes nothing. One process at a time
//! uses a data dir (see [`files::DataDirLock`]).

mod checkpoint;
mod error;
pub mod feed;
mod fence;
mod files;
pub mod lease;
mod open;
mod pool;
pub mod postgres;
pub mod sql;
pub(crate) mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use checkpoint::Checkpointer;
pub use error::StoreError;
use feed::Feed;
pub use fence::Fence;
use files::DataDirLock;
pub use files::{LOCK_FILE, create_data_dir, owner_only_database};
pub use lease::{Lease, Leases};
pub use open::{connect_options, migrate};
pub use pool::{Pooled, Tx};
use pool::{Readers, Snapshot};
use postgres::HeadSignal;
pub use sql::{Conn, Engine};
use writer::Writer;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The database file inside the data dir.
pub const DB_FILE: &str = "bosun.db";
/// How long a statement waits, by default, for a lock held by another
/// process (see [`StorageSettings`]).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    reader: ReadPool,
    writer: Writer,
    head_rx: watch::Receiver<i64>,
    feed: Arc<Feed>,
    busy_timeout: Duration,
    /// SQLite: the checkpoints done (see [`Db::checkpoints`]).
    checkpoints: Option<watch::Receiver<u64>>,
    shutdown: Arc<Mutex<Option<Closing>>>,
}

#[derive(Clone)]
enum ReadPool {
    Sqlite(Readers),
    Postgres(PgPool),
}

/// What [`Db::close`] stops and releases.
struct Closing {
    stop_tx: oneshot::Sender<()>,
    writer_task: JoinHandle<()>,
    /// SQLite: the data dir's lock.
    lock: Option<DataDirLock>,
    /// PostgreSQL: the listener for other replicas' commits.
    head_signal: Option<HeadSignal>,
    /// SQLite: the WAL's checkpoints.
    checkpointer: Option<Checkpointer>,
}

impl Db {
    pub fn engine(&self) -> Engine {
        match self.reader {
            ReadPool::Sqlite(_) => Engine::Sqlite,
            ReadPool::Postgres(_) => Engine::Postgres,
        }
    }

    /// A connection from the read pool. Reads see every committed change
    /// and never wait for the writer.
    pub async fn read(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.reader {
            ReadPool::Sqlite(readers) => Pooled::Direct(pool::reader(readers).await?),
            ReadPool::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A read transaction: its statements agree with each other.
    pub async fn snapshot(&self) -> Result<Tx, StoreError> {
        Ok(match &self.reader {
            ReadPool::Sqlite(readers) => Tx::Direct(Snapshot::begin(readers).await?),
            ReadPool::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// The PostgreSQL pool, on that engine (for the shim's delivery memory
    /// and the background leases, which live in the shared database).
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.reader {
            ReadPool::Postgres(pool) => Some(pool),
            ReadPool::Sqlite(_) => None,
        }
    }

    /// Runs `job` in a write transaction (see [`Writer::write`]).
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write(job).await
    }

    /// Runs `job` alone on the writer connection, outside any transaction
    /// (see [`Writer::outside_transaction`]).
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.outside_transaction(job).await
    }

    /// The newest committed change-log seq, updated after every commit.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head_rx.clone()
    }

    /// This process's committed change-log rows, handed over by the writer
    /// while someone subscribes (see [`feed`]).
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// SQLite: how many WAL checkpoints have run, updated after each (the
    /// WAL's pages are then in the database file). `None` on PostgreSQL.
    pub fn checkpoints(&self) -> Option<watch::Receiver<u64>> {
        self.checkpoints.clone()
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
            head_signal,
            checkpointer,
        }) = closing
        else {
            return;
        };
        let _ = stop_tx.send(());
        if let Err(err) = writer_task.await {
            tracing::error!(error = %err, "the writer task failed");
        }
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
        drop(head_signal);
        match &self.reader {
            ReadPool::Sqlite(readers) => readers.close(),
            ReadPool::Postgres(pool) => pool.close().await,
        }
        drop(lock);
    }
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

/// Decodes one payload read as [`sql::JsonText`] (jsonb on PostgreSQL, text
/// on SQLite).
pub fn decode_payload<T: serde::de::DeserializeOwned>(
    kind: &str,
    payload: Option<sql::JsonText>,
) -> Result<Option<T>, StoreError> {
    payload.map(|p| decode_row(kind, &p.0)).transpose()
}

/// Decodes payloads read as [`sql::JsonText`].
pub fn decode_payloads<T: serde::de::DeserializeOwned>(
    kind: &str,
    payloads: &[sql::JsonText],
) -> Result<Vec<T>, StoreError> {
    payloads.iter().map(|p| decode_row(kind, &p.0)).collect()
}

/// A value as JSON, to bind into a JSON column (jsonb on PostgreSQL).
pub fn json_value<T: serde::Serialize + ?Sized>(value: &T) -> Result<sql::JsonOwned, StoreError> {
    json_text(value).map(sql::JsonOwned)
}

/// A value as JSON text, for a JSON column.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Malformed(err.to_string()))
}
