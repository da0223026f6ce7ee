//! SQLite connections called through SQLite's C API (`rusqlite`, the same
//! SQLite library sqlx links) in place: the writer's, on the writer's own
//! thread, and the read pool's, on the thread of the task that reads.
//! Through sqlx every statement is a hand-off to the connection's worker
//! thread and back (and every row another); here it is a function call, so
//! a batch of jobs runs its statements back to back while it holds the
//! write lock, and a point read costs microseconds, less than the hand-off
//! it replaces.
//! Statements are prepared once and cached; placeholders are `$1`, `$2`...
//! as everywhere else, bound by number; errors are classified exactly as
//! sqlx's SQLite errors are (see [`StoreError`]).

use std::borrow::Cow;
use std::time::{Duration, Instant};

pub use rusqlite;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, OpenFlags};

use super::values::{JsonText, Value};
use crate::storage::StoreError;

/// Prepared statements kept per connection: every statement the domain
/// stores write, with room to spare (SQL built from optional filters
/// varies; the least recently used goes first).
const STATEMENT_CACHE: usize = 512;

/// A row type the direct connection decodes: rusqlite's tuples, or a struct
/// given [`direct_row!`](crate::direct_row).
pub trait DirectRow: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error> {}
impl<T> DirectRow for T where T: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error> {}

/// Decodes a struct from a row by column name, as sqlx's `FromRow` derive
/// does: `direct_row!(LessonRow { id, create_time, ... })`. Fields listed in
/// the order the statement selects them are found at once (see
/// [`column`]); any other order still decodes, by name.
#[macro_export]
macro_rules! direct_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<'a> TryFrom<&'a $crate::storage::sql::direct::rusqlite::Row<'a>> for $ty {
            type Error = $crate::storage::sql::direct::rusqlite::Error;
            fn try_from(
                row: &'a $crate::storage::sql::direct::rusqlite::Row<'a>,
            ) -> Result<Self, Self::Error> {
                // Fields are initialized in the order written.
                let mut position = 0;
                Ok(Self {
                    $($field: $crate::storage::sql::direct::column(
                        row,
                        &mut position,
                        stringify!($field),
                    )?,)*
                })
            }
        }
    };
}

/// The column `name` of `row`, looked for first at `position` (the next
/// field's place when a struct lists its fields in the statement's order),
/// then by name; `position` moves past the column found. rusqlite's lookup
/// by name compares every column's name, so a row of n fields would cost
/// n^2 comparisons.
pub fn column<T: FromSql>(
    row: &rusqlite::Row<'_>,
    position: &mut usize,
    name: &str,
) -> rusqlite::Result<T> {
    let statement: &rusqlite::Statement<'_> = row.as_ref();
    let index = match statement.column_name(*position) {
        Ok(found) if found == name => *position,
        _ => statement.column_index(name)?,
    };
    *position = index + 1;
    row.get(index)
}

/// How a connection is opened (the writer's again, after a failed
/// transaction).
#[derive(Debug, Clone)]
pub struct DirectOptions {
    pub path: std::path::PathBuf,
    pub busy_timeout: Duration,
    /// The page cache, in KiB.
    pub cache_kib: u32,
    /// Opened read-only (the read pool's): a write fails.
    pub read_only: bool,
}

/// WAL pages past which the writer checkpoints itself, right after the
/// COMMIT that went past them (SQLite's automatic checkpoint), and the WAL
/// file size SQLite truncates back to when the WAL starts over (4 KiB
/// pages: 64 MiB and 128 MiB). The checkpointer task copies the WAL back
/// off the writer (`storage::checkpoint`), but under a steady stream of
/// commits it never catches the last one, and the WAL can only start over
/// once every frame was copied: without this bound it grew by gigabytes
/// while writes kept coming (3.9 GB in 35 s of the benchmark's writes), and
/// every frame appended to new blocks of the file made the kernel allocate
/// and zero them, a quarter of the writer's CPU. Past the bound the writer
/// copies the few frames the checkpointer has not (no other writer can
/// append meanwhile), and its next transaction starts the WAL over, reusing
/// the file. A reader still on an older snapshot can hold frames back; then
/// every commit past the bound tries again.
const WRITER_WAL_PAGES: u32 = 16_384;
const WAL_FILE_LIMIT: u64 = 128 << 20;

/// A SQLite connection used in place, on the calling thread.
pub struct Direct {
    conn: rusqlite::Connection,
}

impl Direct {
    /// Opens the database (which must exist: migrations made it) with the
    /// settings of every bosun connection (WAL, synchronous NORMAL, foreign
    /// keys, the busy timeout, temp tables in memory) and the given page
    /// cache; a connection that writes checkpoints itself only past
    /// [`WRITER_WAL_PAGES`] (see `storage::checkpoint` for the rest).
    pub fn open(options: &DirectOptions) -> Result<Self, StoreError> {
        let access = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let flags = access | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&options.path, flags)?;
        conn.busy_timeout(options.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Malformed(format!(
                "the database is in journal mode {mode:?}, not WAL"
            )));
        }
        let wal_pages = if options.read_only {
            0
        } else {
            WRITER_WAL_PAGES
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
             PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {wal_pages}; \
             PRAGMA journal_size_limit = {WAL_FILE_LIMIT};",
            options.cache_kib
        ))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { conn })
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Closes the connection (finalizing its statements).
    pub fn close(self) -> Result<(), StoreError> {
        self.conn.close().map_err(|(_, err)| StoreError::from(err))
    }

    /// The statement for `sql`, prepared once, with `values` bound to its
    /// `$n` placeholders.
    fn statement(
        &self,
        sql: &str,
        values: Vec<Value<'_>>,
    ) -> Result<CachedStatement<'_>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        for index in 1..=statement.parameter_count() {
            // `$n` takes the n-th value, wherever it appears; `?` the next.
            let position = statement
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(index);
            let value = position.checked_sub(1).and_then(|i| values.get(i));
            let value = value.ok_or_else(|| {
                StoreError::Malformed(format!("no value for placeholder {position} of {sql:?}"))
            })?;
            statement.raw_bind_parameter(index, Bound(value))?;
        }
        Ok(statement)
    }

    /// Runs the statement to its end; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, values: Vec<Value<'_>>) -> Result<u64, StoreError> {
        let started = Instant::now();
        {
            let mut statement = self.statement(sql, values)?;
            let mut rows = statement.raw_query();
            while rows.next()?.is_some() {}
        }
        let changed = self.conn.changes();
        logged(sql, changed, started.elapsed());
        Ok(changed)
    }

    /// Runs an INSERT of one row; returns the rowid it was given (the
    /// statement's own row: a trigger's inserts do not count).
    pub fn insert(&mut self, sql: &str, values: Vec<Value<'_>>) -> Result<i64, StoreError> {
        self.execute(sql, values)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Up to `limit` rows (all when `None`).
    pub fn fetch<R: DirectRow>(
        &mut self,
        sql: &str,
        values: Vec<Value<'_>>,
        limit: Option<usize>,
    ) -> Result<Vec<R>, StoreError> {
        let started = Instant::now();
        let mut statement = self.statement(sql, values)?;
        let mut rows = statement.raw_query();
        let mut decoded = Vec::new();
        while limit.is_none_or(|limit| decoded.len() < limit) {
            let Some(row) = rows.next()? else { break };
            decoded.push(R::try_from(row)?);
        }
        logged(sql, decoded.len() as u64, started.elapsed());
        Ok(decoded)
    }
}

/// A statement slower than this is logged as a warning (as sqlx does).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Logs a statement that ran, as sqlx logs its own: every one at debug
/// level, a slow one as a warning.
fn logged(sql: &str, rows: u64, elapsed: Duration) {
    if elapsed >= SLOW_STATEMENT {
        tracing::warn!(statement = sql, rows, ?elapsed, "slow statement");
    } else {
        tracing::debug!(statement = sql, rows, ?elapsed, "statement");
    }
}

/// A bound value, as sqlx binds it on SQLite: booleans as 0 and 1, JSON as
/// its text.
struct Bound<'v, 'q>(&'v Value<'q>);

impl rusqlite::ToSql for Bound<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let value = match self.0 {
            Value::Int(Some(v)) => ValueRef::Integer(*v),
            Value::Real(Some(v)) => ValueRef::Real(*v),
            Value::Bool(Some(v)) => ValueRef::Integer(i64::from(*v)),
            Value::Text(Some(v)) | Value::Json(Some(v)) => ValueRef::Text(v.as_bytes()),
            Value::Blob(Some(v)) => ValueRef::Blob(v),
            Value::Int(None)
            | Value::Real(None)
            | Value::Bool(None)
            | Value::Text(None)
            | Value::Json(None)
            | Value::Blob(None) => ValueRef::Null,
        };
        Ok(ToSqlOutput::Borrowed(value))
    }
}

impl FromSql for JsonText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        String::column_result(value).map(Self)
    }
}

/// A SQLite error as sqlx reports one, so [`StoreError`] classifies both
/// paths alike (full disk, busy, unique violation...).
#[derive(Debug)]
struct SqliteFailure {
    /// The extended result code, when SQLite gave one.
    code: Option<i32>,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "(code: {code}) {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqliteFailure {}

// SQLite's extended codes for constraint failures.
const SQLITE_CONSTRAINT_CHECK: i32 = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_NOTNULL: i32 = 1299;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.map(|code| Cow::Owned(code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code {
            Some(SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
                ErrorKind::UniqueViolation
            }
            Some(SQLITE_CONSTRAINT_FOREIGNKEY) => ErrorKind::ForeignKeyViolation,
            Some(SQLITE_CONSTRAINT_NOTNULL) => ErrorKind::NotNullViolation,
            Some(SQLITE_CONSTRAINT_CHECK) => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let failure = match err {
            rusqlite::Error::SqliteFailure(failure, message) => SqliteFailure {
                code: Some(failure.extended_code),
                message: message.unwrap_or_else(|| failure.to_string()),
            },
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::InvalidColumnIndex(..)
            | rusqlite::Error::InvalidColumnName(..) => {
                return Self::Malformed(format!("cannot decode a column: {err}"));
            }
            other => SqliteFailure {
                code: None,
                message: other.to_string(),
            },
        };
        Self::from(sqlx::Error::Database(Box::new(failure)))
    }
}

impl From<FromSqlError> for StoreError {
    fn from(err: FromSqlError) -> Self {
        Self::Malformed(format!("cannot decode a column: {err}"))
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
