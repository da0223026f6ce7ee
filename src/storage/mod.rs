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
mod files;
pub mod lease;
mod pool;
pub mod postgres;
pub mod sql;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqliteConnection};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use checkpoint::Checkpointer;
pub use error::StoreError;
use feed::Feed;
use files::DataDirLock;
pub use files::{LOCK_FILE, create_data_dir, owner_only_database};
pub use lease::{Lease, Leases};
pub use pool::{Pooled, Tx};
use pool::{Readers, Snapshot};
use postgres::{DatabaseUrl, HeadSignal};
pub use sql::{Conn, Engine};
use sql::{Direct, DirectOptions};
use writer::{Head, Link, Writer};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The database file inside the data dir.
pub const DB_FILE: &str = "bosun.db";
/// How long a statement waits, by default, for a lock held by another
/// process (see [`StorageSettings`]).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections in the pool, at most (each opened when first
/// needed).
const READERS: u32 = 8;
/// How often a PostgreSQL replica re-reads the change-log head even if no
/// notification came (a lost notification delays a Watch at most this).
const HEAD_FALLBACK: Duration = Duration::from_secs(1);

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
    /// [`Db::open_with`] the default settings.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(data_dir, StorageSettings::default()).await
    }

    /// Opens (creating if needed) `<data_dir>/bosun.db`, applies migrations
    /// and starts the writer. Fails at once if another process uses the
    /// data dir.
    pub async fn open_with(data_dir: &Path, settings: StorageSettings) -> anyhow::Result<Self> {
        let (path, lock) = prepare(data_dir)?;
        let mut conn = connect_writer(&path, &connect_options(&path, settings)).await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .with_context(|| format!("cannot apply migrations to {}", path.display()))?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_log")
            .fetch_one(&mut conn)
            .await
            .context("cannot read the change log")?;
        // The writer calls SQLite in place on its own thread (see
        // [`sql::direct`]). It keeps up to WRITER_CACHE_KIB of pages in
        // memory (SQLite's default is 2 MiB): every write walks the indexes
        // it changes, and a page that falls out of the cache is read back
        // from the file. It never checkpoints the WAL itself: see
        // [`checkpoint`].
        let writer_options = DirectOptions {
            path: path.clone(),
            busy_timeout: settings.busy_timeout,
            cache_kib: WRITER_CACHE_KIB,
            read_only: false,
        };
        let writer_conn = Direct::open(&writer_options)
            .with_context(|| format!("cannot open database {} for writing", path.display()))?;
        let reader = pool::readers(
            DirectOptions {
                path: path.clone(),
                busy_timeout: settings.busy_timeout,
                cache_kib: READER_CACHE_KIB,
                read_only: true,
            },
            READERS as usize,
            pool::READER_WAIT,
        )
        .context("cannot make the read pool")?;
        let (head_tx, head_rx) = watch::channel(head);
        let feed = Arc::new(Feed::default());
        let committed = Arc::new(Notify::new());
        let head = Head {
            tx: head_tx,
            feed: feed.clone(),
            committed: committed.clone(),
        };
        // Connected directly, not through `connect_writer`: that opens and
        // closes the database file itself, and closing any descriptor of
        // the file drops every POSIX lock this process holds on it,
        // SQLite's writer's included (which let another process reset the
        // WAL under it: the crash test lost acknowledged writes).
        let checkpointer = Checkpointer::start(
            connect_options(&path, settings)
                .connect()
                .await
                .with_context(|| format!("cannot open {} to checkpoint", path.display()))?,
            committed,
        );
        let (stop_tx, stop_rx) = oneshot::channel();
        conn.close()
            .await
            .with_context(|| format!("cannot close {} after migrating", path.display()))?;
        let (writer, writer_task) =
            Writer::start(Link::Sqlite(writer_conn, writer_options), head, stop_rx);
        Ok(Self {
            reader: ReadPool::Sqlite(reader),
            writer,
            head_rx,
            feed,
            busy_timeout: settings.busy_timeout,
            checkpoints: Some(checkpointer.done()),
            shutdown: Arc::new(Mutex::new(Some(Closing {
                stop_tx,
                writer_task,
                lock: Some(lock),
                head_signal: None,
                checkpointer: Some(checkpointer),
            }))),
        })
    }

    /// Connects to the PostgreSQL database at `url`, applies migrations
    /// (one replica applies them, the others wait; see
    /// [`postgres::migrate`]), starts this replica's writer and listens for
    /// every replica's commits.
    pub async fn open_postgres(
        url: &DatabaseUrl,
        settings: StorageSettings,
    ) -> anyhow::Result<Self> {
        postgres::migrate(url).await?;
        let options = url
            .connect_options()
            .map_err(anyhow::Error::msg)?
            .options([("lock_timeout", lock_timeout(settings.busy_timeout))]);
        let described = url.describe();
        let conn = options
            .connect()
            .await
            .with_context(|| format!("cannot connect to {described}"))?;
        let reader = PgPoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open a read pool on {described}"))?;
        let head: i64 = sqlx::query_scalar("SELECT seq FROM change_log_head")
            .fetch_one(&reader)
            .await
            .with_context(|| format!("cannot read the change log of {described}"))?;
        let (head_tx, head_rx) = watch::channel(head);
        let head_signal = HeadSignal::start(reader.clone(), head_tx.clone(), HEAD_FALLBACK)
            .await
            .with_context(|| format!("cannot listen for commits on {described}"))?;
        let feed = Arc::new(Feed::default());
        let head = Head {
            tx: head_tx,
            feed: feed.clone(),
            committed: Arc::new(Notify::new()),
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let (writer, writer_task) = Writer::start(Link::Postgres(conn, options), head, stop_rx);
        Ok(Self {
            reader: ReadPool::Postgres(reader),
            writer,
            head_rx,
            feed,
            busy_timeout: settings.busy_timeout,
            checkpoints: None,
            shutdown: Arc::new(Mutex::new(Some(Closing {
                stop_tx,
                writer_task,
                lock: None,
                head_signal: Some(head_signal),
                checkpointer: None,
            }))),
        })
    }

    /// SQLite in `data_dir` when `url` is unset, else PostgreSQL at `url`.
    pub async fn open_configured(
        data_dir: &Path,
        url: Option<&DatabaseUrl>,
        settings: StorageSettings,
    ) -> anyhow::Result<Self> {
        match url {
            None => Self::open_with(data_dir, settings).await,
            Some(url) => Self::open_postgres(url, settings).await,
        }
    }

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
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write(job).await
    }

    /// Runs `job` alone on the writer connection, outside any transaction
    /// (see [`Writer::outside_transaction`]).
    pub async fn outside_transaction<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
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

/// The most page cache the SQLite writer keeps, in KiB (pages are cached
/// as they are used: an idle or small database takes far less).
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// Each reader's page cache, in KiB: SQLite's default.
const READER_CACHE_KIB: u32 = 2000;

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

/// PostgreSQL's `lock_timeout` for a wait of `busy_timeout`.
fn lock_timeout(busy_timeout: Duration) -> String {
    format!("{}ms", busy_timeout.as_millis().max(1))
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
