//! Opening the database: SQLite in the data dir (its lock, migrations, the
//! writer on its own thread, the read pool and the WAL checkpointer), or a
//! shared PostgreSQL (migrations under sqlx's lock, the writer, the read
//! pool and the listener for every replica's commits); and `bosun migrate`
//! on SQLite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{Notify, oneshot, watch};

use super::checkpoint::Checkpointer;
use super::feed::Feed;
use super::files::{self, DataDirLock, create_data_dir};
use super::postgres::{self, DatabaseUrl, HeadSignal};
use super::sql::{Direct, DirectOptions};
use super::writer::{Head, Link, Writer};
use super::{Closing, DB_FILE, Db, MIGRATOR, ReadPool, StorageSettings, pool};

/// Read-only connections in the pool, at most (each opened when first
/// needed).
const READERS: u32 = 8;
/// How often a PostgreSQL replica re-reads the change-log head even if no
/// notification came (a lost notification delays a Watch at most this).
const HEAD_FALLBACK: Duration = Duration::from_secs(1);

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
        // from the file. The checkpointer beside it copies the WAL back;
        // the writer checkpoints only a WAL past its bound (see
        // [`checkpoint`] and [`sql::direct`]).
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
