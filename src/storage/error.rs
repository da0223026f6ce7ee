//! Storage errors, translated from sqlx at the store boundary.

use crate::error::{ErrorCode, ServiceError};

/// What went wrong talking to SQLite or PostgreSQL, classified for the
/// caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is locked by someone else, or the disk is read-only or
    /// failing: transient from the client's point of view.
    #[error("storage unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The disk (or the database's size limit) is full: writes fail until
    /// space is freed; reads go on.
    #[error("storage full")]
    Full(#[source] sqlx::Error),
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    #[error("unique constraint violated")]
    UniqueViolation(#[source] sqlx::Error),
    /// Anything else SQLite or sqlx reported: a bug or a corrupt file.
    #[error("storage error")]
    Internal(#[source] sqlx::Error),
    /// A stored value that bosun cannot read back (a bug or a hand edit).
    #[error("stored data is malformed: {0}")]
    Malformed(String),
    /// The writer has stopped (the server is shutting down).
    #[error("the storage writer has stopped")]
    Closed,
    /// A write job panicked; its changes were rolled back.
    #[error("a write job panicked")]
    Panicked,
    /// Another replica took the lease of the background job this write
    /// belongs to (see `storage::fence`); nothing was written.
    #[error("this replica no longer holds the lease of {0}: another replica took the job over")]
    LeaseLost(String),
    /// The transaction this job shared with others failed as a whole.
    #[error("write transaction failed")]
    Batch(#[source] std::sync::Arc<StoreError>),
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_NOMEM: i64 = 7;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return Self::UniqueViolation(err);
                }
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    let code = pg.code().to_owned();
                    return Self::from_sqlstate(&code, err);
                }
                let primary = db
                    .code()
                    .and_then(|code| code.parse::<i64>().ok())
                    .map(|code| code & 0xff);
                match primary {
                    Some(SQLITE_FULL) => Self::Full(err),
                    Some(
                        SQLITE_BUSY | SQLITE_LOCKED | SQLITE_NOMEM | SQLITE_READONLY | SQLITE_IOERR
                        | SQLITE_CANTOPEN,
                    ) => Self::Unavailable(err),
                    _ => Self::Internal(err),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            _ => Self::Internal(err),
        }
    }
}

impl StoreError {
    /// A PostgreSQL error by its SQLSTATE: a full disk (53100) or out of
    /// space classes; a lost connection (08), an operator's shutdown (57P),
    /// a lock wait that timed out (55P03), too many connections (53300) or
    /// a serialization failure or deadlock (40001, 40P01) are transient.
    fn from_sqlstate(code: &str, err: sqlx::Error) -> Self {
        match code {
            "53100" | "54000" => Self::Full(err),
            "53300" | "55P03" | "40001" | "40P01" | "25006" => Self::Unavailable(err),
            _ if code.starts_with("08") || code.starts_with("57P") => Self::Unavailable(err),
            _ => Self::Internal(err),
        }
    }
}

impl ServiceError for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Batch(cause) => cause.code(),
            Self::Unavailable(_) | Self::Full(_) | Self::Closed => ErrorCode::Unavailable,
            Self::LeaseLost(_) => ErrorCode::Aborted,
            Self::UniqueViolation(_) | Self::Internal(_) | Self::Malformed(_) | Self::Panicked => {
                ErrorCode::Internal
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Batch(cause) => cause.reason(),
            Self::Unavailable(_) | Self::Closed => "STORAGE_UNAVAILABLE",
            Self::Full(_) => "STORAGE_FULL",
            Self::LeaseLost(_) => "LEASE_LOST",
            _ => "INTERNAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    use super::*;

    #[test]
    fn a_fenced_write_is_aborted_lease_lost() {
        let err = StoreError::LeaseLost("processor:usage".into());
        assert_eq!(
            (err.code(), err.reason()),
            (ErrorCode::Aborted, "LEASE_LOST")
        );
        let shared = StoreError::Batch(std::sync::Arc::new(err));
        assert_eq!(shared.reason(), "LEASE_LOST");
    }

    #[test]
    fn postgres_sqlstates_map_to_codes() {
        let cases = [
            ("53100", ErrorCode::Unavailable, "STORAGE_FULL"),
            ("54000", ErrorCode::Unavailable, "STORAGE_FULL"),
            ("08006", ErrorCode::Unavailable, "STORAGE_UNAVAILABLE"),
            ("57P01", ErrorCode::Unavailable, "STORAGE_UNAVAILABLE"),
            ("55P03", ErrorCode::Unavailable, "STORAGE_UNAVAILABLE"),
            ("40P01", ErrorCode::Unavailable, "STORAGE_UNAVAILABLE"),
            ("40001", ErrorCode::Unavailable, "STORAGE_UNAVAILABLE"),
            ("42P01", ErrorCode::Internal, "INTERNAL"),
            ("22P02", ErrorCode::Internal, "INTERNAL"),
        ];
        for (code, expected_code, reason) in cases {
            let err = StoreError::from_sqlstate(code, sqlx::Error::PoolClosed);
            assert_eq!(err.code(), expected_code, "{code}");
            assert_eq!(err.reason(), reason, "{code}");
        }
    }

    /// Real SQLite failures, each classified: a read-only database (as when
    /// the disk turns read-only under bosun), a lock held elsewhere, a
    /// full database, and a broken constraint.
    #[tokio::test]
    async fn sqlite_failures_map_to_codes_and_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_millis(10));
        let mut conn = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        let classify = |err: sqlx::Error| {
            let err = StoreError::from(err);
            (err.code(), err.reason())
        };

        let mut read_only = options.clone().read_only(true).connect().await.unwrap();
        let err = sqlx::query("INSERT INTO t (v) VALUES ('x')")
            .execute(&mut read_only)
            .await
            .unwrap_err();
        assert_eq!(
            classify(err),
            (ErrorCode::Unavailable, "STORAGE_UNAVAILABLE")
        );

        let mut holder = options.connect().await.unwrap();
        let held = holder.begin_with("BEGIN EXCLUSIVE").await.unwrap();
        let err = sqlx::query("INSERT INTO t (v) VALUES ('x')")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert_eq!(
            classify(err),
            (ErrorCode::Unavailable, "STORAGE_UNAVAILABLE")
        );
        held.rollback().await.unwrap();

        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO t (v) SELECT zeroblob(100000)")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert_eq!(classify(err), (ErrorCode::Unavailable, "STORAGE_FULL"));

        let err = sqlx::query("INSERT INTO t (id) VALUES (1), (1)")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(matches!(
            StoreError::from(err),
            StoreError::UniqueViolation(_)
        ));
    }
}
