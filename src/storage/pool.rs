//! Connections of the read pool, and transactions on pooled connections,
//! of either engine.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use super::sql::Conn;

/// A connection from the read pool.
pub enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn) => Conn::Sqlite(conn),
            Self::Postgres(conn) => Conn::Postgres(conn),
        }
    }
}

/// A transaction on a pooled connection (a read snapshot from
/// [`Db::snapshot`]).
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(tx) => Conn::Sqlite(tx),
            Self::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Commits (ends a read snapshot).
    pub async fn finish(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
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
