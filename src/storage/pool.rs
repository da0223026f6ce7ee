//! Connections of the read pool, and transactions on pooled connections,
//! of either engine. On SQLite the pool holds read-only connections called
//! in place (see [`super::sql::direct`]); on PostgreSQL it is sqlx's.

use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use super::sql::{Conn, Direct, DirectOptions};

/// A connection from the read pool.
pub enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
    Direct(Object<Opener>),
}

impl Pooled {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn) => Conn::Sqlite(conn),
            Self::Postgres(conn) => Conn::Postgres(conn),
            Self::Direct(conn) => Conn::Direct(conn),
        }
    }
}

/// A transaction on a pooled connection (a read snapshot from
/// [`Db::snapshot`](super::Db::snapshot)).
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    Direct(Snapshot),
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(tx) => Conn::Sqlite(tx),
            Self::Postgres(tx) => Conn::Postgres(tx),
            Self::Direct(snapshot) => Conn::Direct(&mut snapshot.0),
        }
    }

    /// Commits (ends a read snapshot).
    pub async fn finish(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
            Self::Direct(mut snapshot) => {
                snapshot.0.execute("COMMIT", Vec::new())?;
            }
        }
        Ok(())
    }
}

impl Tx {
    /// Begins a read-write transaction on a connection of `pool`.
    pub async fn begin_sqlite(pool: &SqlitePool) -> Result<Self, StoreError> {
        Ok(Self::Sqlite(pool.begin().await?))
    }

    /// Begins a read-write transaction on a connection of `pool`.
    pub async fn begin_postgres(pool: &PgPool) -> Result<Self, StoreError> {
        Ok(Self::Postgres(pool.begin().await?))
    }
}

/// SQLite's read pool: read-only connections, opened when first needed.
pub(super) type Readers = managed::Pool<Opener>;

/// A connection from [`Readers`] in a transaction; dropped unfinished, it
/// rolls back at once (an open read transaction would hold back the WAL's
/// checkpoints).
pub struct Snapshot(Object<Opener>);

impl Snapshot {
    pub(super) async fn begin(readers: &Readers) -> Result<Self, StoreError> {
        let mut conn = reader(readers).await?;
        conn.execute("BEGIN", Vec::new())?;
        Ok(Self(conn))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        end_transaction(&mut self.0);
    }
}

/// How long a read waits for a free connection before it fails as
/// unavailable (sqlx's own default for its pools).
pub(super) const READER_WAIT: Duration = Duration::from_secs(30);

/// [`Readers`] of at most `size` connections opened with `options`; a read
/// waits up to `wait` for one.
pub(super) fn readers(
    options: DirectOptions,
    size: usize,
    wait: Duration,
) -> anyhow::Result<Readers> {
    Ok(Readers::builder(Opener(options))
        .max_size(size)
        .wait_timeout(Some(wait))
        .runtime(Runtime::Tokio1)
        .build()?)
}

/// A connection from `readers`.
pub(super) async fn reader(readers: &Readers) -> Result<Object<Opener>, StoreError> {
    readers.get().await.map_err(|err| match err {
        PoolError::Backend(err) => err,
        PoolError::Timeout(_) => StoreError::from(sqlx::Error::PoolTimedOut),
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Internal(sqlx::Error::Configuration(other.to_string().into())),
    })
}

/// Opens [`Readers`]' connections.
pub struct Opener(pub(super) DirectOptions);

impl managed::Manager for Opener {
    type Type = Direct;
    type Error = StoreError;

    async fn create(&self) -> Result<Direct, StoreError> {
        Direct::open(&self.0)
    }

    /// A connection returned in a transaction (its holder failed before
    /// ending it) is rolled back; one that cannot be is closed.
    async fn recycle(&self, conn: &mut Direct, _: &Metrics) -> RecycleResult<StoreError> {
        if conn.in_transaction() {
            conn.execute("ROLLBACK", Vec::new())?;
        }
        Ok(())
    }
}

/// Rolls back the transaction `conn` is in, if any.
fn end_transaction(conn: &mut Direct) {
    if conn.in_transaction()
        && let Err(err) = conn.execute("ROLLBACK", Vec::new())
    {
        tracing::warn!(error = %err, "cannot roll back a read transaction");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_on(dir: &tempfile::TempDir) -> anyhow::Result<Readers> {
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY);")?;
        let options = DirectOptions {
            path,
            busy_timeout: Duration::from_secs(1),
            cache_kib: 1024,
            read_only: true,
        };
        readers(options, 1, Duration::from_millis(50))
    }

    #[tokio::test]
    async fn a_snapshot_dropped_unfinished_rolls_back_at_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let readers = pool_on(&dir)?;
        let mut snapshot = Snapshot::begin(&readers).await?;
        let rows: Vec<(i64,)> = snapshot.0.fetch("SELECT id FROM t", Vec::new(), None)?;
        assert!(rows.is_empty());
        assert!(snapshot.0.in_transaction());
        drop(snapshot);
        // The pool's only connection, back in autocommit.
        let conn = reader(&readers).await?;
        assert!(!conn.in_transaction());
        Ok(())
    }

    #[tokio::test]
    async fn a_read_that_finds_every_connection_busy_fails_as_unavailable() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let readers = pool_on(&dir)?;
        let held = reader(&readers).await?;
        let waited = reader(&readers).await;
        assert!(
            matches!(
                waited,
                Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
            ),
            "{:?}",
            waited.err()
        );
        drop(held);
        assert!(reader(&readers).await.is_ok());
        Ok(())
    }

    #[tokio::test]
    async fn readers_cannot_write() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let readers = pool_on(&dir)?;
        let mut conn = reader(&readers).await?;
        let write = conn.execute("INSERT INTO t (id) VALUES (1)", Vec::new());
        assert!(write.is_err(), "{write:?}");
        Ok(())
    }
}
