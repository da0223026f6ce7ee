//! The writer's connection on either engine: how a batch's transaction
//! begins (on PostgreSQL, taking the counter-row lock), what the batch
//! appended to the change log, and how the connection is replaced after a
//! failed transaction.

use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Executor, FromRow, PgConnection, Row};

use super::{MAX_BATCH, MAX_BATCH_POSTGRES};
use crate::storage::StoreError;
use crate::storage::feed::{self, ChangeRow};
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

    /// Whether a savepoint costs nothing on this engine. On SQLite it rides
    /// in front of the job's first statement (see [`Direct`]), so every job
    /// has one, a transaction's first too. On PostgreSQL it is a round
    /// trip, so jobs run without one wherever a failure can be undone
    /// otherwise: the first job of a transaction always (should it fail,
    /// the transaction holds nothing else, so the writer rolls it all back
    /// and begins again for the next job), and every job of an optimistic
    /// batch (see [`Guard`](super::batch::Guard)).
    pub(super) fn free_savepoints(&self) -> bool {
        matches!(self, Self::Sqlite(..))
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
            // Both statements in one message (the simple query protocol):
            // one round trip instead of two before every batch.
            Self::Postgres(conn, _) => {
                let rows = conn
                    .fetch_all(
                        "BEGIN ISOLATION LEVEL READ COMMITTED; \
                         SELECT seq FROM change_log_head FOR UPDATE",
                    )
                    .await?;
                first_bigint(&rows)
            }
        }
    }

    /// Commits the batch and returns what it appended to the change log
    /// (its rows when `rows`, else only the new head), read in the
    /// transaction just before COMMIT.
    ///
    /// On PostgreSQL that read also proves the transaction can still
    /// commit: PostgreSQL answers COMMIT of a transaction an error aborted
    /// with a quiet ROLLBACK, so a job that swallowed a statement's error
    /// must not let the batch be acknowledged; any statement fails in that
    /// state, and tells. On PostgreSQL the read and COMMIT go in one
    /// message (one round trip, while the batch holds the counter-row
    /// lock), answered in text; a failed read skips the COMMIT.
    ///
    /// Any error leaves the transaction's outcome unknown to the caller.
    pub(super) async fn commit(&mut self, before: i64, rows: bool) -> Result<Appended, StoreError> {
        if rows {
            let rows = match self {
                Self::Sqlite(..) => {
                    let rows = feed::appended(&mut self.conn(), before).await?;
                    query("COMMIT").execute(&mut self.conn()).await?;
                    rows
                }
                // The same read, with COMMIT, in one message.
                Self::Postgres(conn, _) => {
                    let sql = format!("{}; COMMIT", feed::appended_postgres(before));
                    let rows = conn.fetch_all(sql.as_str()).await?;
                    rows.iter()
                        .map(ChangeRow::from_row)
                        .collect::<Result<_, _>>()?
                }
            };
            let head = rows.last().map_or(before, |row: &ChangeRow| row.seq);
            return Ok(Appended { head, rows });
        }
        let head = match self {
            Self::Sqlite(..) => {
                let head = query("SELECT COALESCE(MAX(seq), 0) FROM change_log")
                    .fetch_scalar(&mut self.conn())
                    .await?;
                query("COMMIT").execute(&mut self.conn()).await?;
                head
            }
            // The counter row gets the batch's last seq only at COMMIT;
            // until then the transaction's appends count in the setting
            // bosun.seq (see migrations/postgres/0015_counter_once_per_commit.sql).
            // fetch_all reads the answer to the end, so an error at
            // COMMIT (a deferred trigger's, a failed flush) is seen here.
            Self::Postgres(conn, _) => {
                let rows = conn
                    .fetch_all(
                        "SELECT COALESCE(NULLIF(current_setting('bosun.seq', true), '')::bigint, \
                         (SELECT seq FROM change_log_head)); COMMIT",
                    )
                    .await?;
                first_bigint(&rows)?
            }
        };
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

/// The one bigint a PostgreSQL simple query answered (in text).
fn first_bigint(rows: &[PgRow]) -> Result<i64, StoreError> {
    match rows {
        [row] => Ok(row.try_get(0)?),
        _ => Err(StoreError::Malformed(format!(
            "expected one row, got {}",
            rows.len()
        ))),
    }
}

/// What a batch appended to the change log.
pub(super) struct Appended {
    /// The head after the batch.
    pub head: i64,
    /// Its rows, if they were asked for.
    pub rows: Vec<feed::ChangeRow>,
}
