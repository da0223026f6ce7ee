//! The writer's connection on either engine: how a batch's transaction
//! begins (on PostgreSQL, taking the counter-row lock), what the batch
//! appended to the change log, and how the connection is replaced after a
//! failed transaction.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::{MAX_BATCH, MAX_BATCH_POSTGRES};
use crate::storage::StoreError;
use crate::storage::feed;
use crate::storage::sql::{Conn, Direct, DirectOptions, query};

/// The writer's connection, and how to open it again.
pub enum Link {
    Sqlite(Direct, DirectOptions),
    Postgres(PgConnection, PgConnectOptions),
}

impl Link {
    pub(super) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn, _) => Conn::Direct(conn),
            Self::Postgres(conn, _) => Conn::Postgres(conn),
        }
    }

    /// The most jobs one transaction takes on this engine.
    pub(super) fn max_batch(&self) -> usize {
        match self {
            Self::Sqlite(..) => MAX_BATCH,
            Self::Postgres(..) => MAX_BATCH_POSTGRES,
        }
    }

    /// Opens the batch's transaction and returns the change-log head it
    /// starts from. On PostgreSQL it also takes the lock that runs write
    /// transactions one at a time (see the module docs), which reads the
    /// head of every replica's commits; on SQLite this writer is the only
    /// one, so the head it published last (`published`) is the head.
    pub(super) async fn begin(&mut self, published: i64) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(..) => {
                query("BEGIN IMMEDIATE").execute(&mut self.conn()).await?;
                Ok(published)
            }
            Self::Postgres(..) => {
                let mut conn = self.conn();
                query("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .execute(&mut conn)
                    .await?;
                query("SELECT seq FROM change_log_head FOR UPDATE")
                    .fetch_scalar(&mut conn)
                    .await
            }
        }
    }

    /// What the batch appended to the change log (its rows when `rows`, else
    /// only the new head), read in the transaction just before COMMIT.
    ///
    /// On PostgreSQL this read also proves the transaction can still
    /// commit: PostgreSQL answers COMMIT of a transaction an error aborted
    /// with a quiet ROLLBACK, so a job that swallowed a statement's error
    /// must not let the batch be acknowledged; any statement fails in that
    /// state, and tells.
    pub(super) async fn appended(
        &mut self,
        before: i64,
        rows: bool,
    ) -> Result<Appended, StoreError> {
        let mut conn = self.conn();
        if rows {
            let rows = feed::appended(&mut conn, before).await?;
            let head = rows.last().map_or(before, |row| row.seq);
            return Ok(Appended { head, rows });
        }
        // On PostgreSQL the counter row gets the batch's last seq only at
        // COMMIT; until then the transaction's appends count in the
        // setting bosun.seq (see migrations/postgres/0015_counter_once_per_commit.sql).
        let sql = match self {
            Self::Sqlite(..) => "SELECT COALESCE(MAX(seq), 0) FROM change_log",
            Self::Postgres(..) => {
                "SELECT COALESCE(NULLIF(current_setting('bosun.seq', true), '')::bigint, \
                 (SELECT seq FROM change_log_head))"
            }
        };
        let head = query(sql).fetch_scalar(&mut self.conn()).await?;
        Ok(Appended {
            head,
            rows: Vec::new(),
        })
    }

    pub(super) async fn close(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(conn, _) => conn.close(),
            Self::Postgres(conn, _) => Ok(conn.close().await?),
        }
    }

    /// A fresh connection in place of this one, whose transaction state is
    /// unknown; keeps this one if none can be opened (the next batch will
    /// tell).
    pub(super) async fn reconnect(self) -> Self {
        let fresh = match &self {
            Self::Sqlite(_, options) => {
                Direct::open(options).map(|conn| Self::Sqlite(conn, options.clone()))
            }
            Self::Postgres(_, options) => options
                .connect()
                .await
                .map(|conn| Self::Postgres(conn, options.clone()))
                .map_err(StoreError::from),
        };
        match fresh {
            Ok(fresh) => {
                if let Err(err) = self.close().await {
                    tracing::debug!(error = %err, "closing the failed writer connection failed");
                }
                tracing::info!("writer connection reopened after a failed transaction");
                fresh
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot reopen the writer connection; keeping the old one");
                self
            }
        }
    }
}

/// What a batch appended to the change log.
pub(super) struct Appended {
    /// The head after the batch.
    pub head: i64,
    /// Its rows, if they were asked for.
    pub rows: Vec<feed::ChangeRow>,
}
