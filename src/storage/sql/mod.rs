//! One statement, either engine. Domain stores write their SQL with `$1`,
//! `$2`... placeholders (PostgreSQL's, which sqlx's SQLite driver reads
//! too), bind typed values, and run it on a [`Conn`], which is a SQLite or a
//! PostgreSQL connection. Most statements are one text both engines accept
//! ([`query`]); where the dialects differ, a store gives one text per engine
//! side by side ([`query_per_engine`]).
//!
//! This is a thin dispatch onto each engine's own sqlx driver: values are
//! bound with the driver's types, statements are prepared and cached per
//! connection, rows decode through `FromRow` for each driver. bosun's own
//! SQLite connections (the writer's and the read pool's) are the exception:
//! they call SQLite in place ([`direct`]), so row types also decode from a
//! `rusqlite` row; sqlx's SQLite driver runs migrations, the checkpointer
//! and the shim's delivery memory. (sqlx's `Any`
//! driver was the alternative; it converts every value through its own
//! narrower types, cannot decode SQLite's integer flags as `bool` or
//! PostgreSQL's jsonb as text, and would hide the connection the writer
//! needs for SQLite's `BEGIN IMMEDIATE`.)

pub mod direct;
mod values;

use std::borrow::Cow;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Type};

use super::StoreError;
pub use direct::{Direct, DirectOptions, DirectRow};
pub use values::{Json, JsonOwned, JsonText, Value};
use values::{pg_args, sqlite_args};

/// Which database engine a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The statement that opens a write job's savepoint.
pub(crate) const JOB_SAVEPOINT: &str = "SAVEPOINT bosun_job";

/// A connection of either engine, borrowed: the writer's transaction, or a
/// connection from the read pool.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
    /// A SQLite connection called in place: the writer's, on its own
    /// thread, or the read pool's (see [`direct`]).
    Direct(&'a mut Direct),
}

impl Conn<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) | Self::Direct(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// `sqlite` or `postgres`: a fragment of SQL where the dialects differ
    /// (for [`Builder`]; whole statements use [`query_per_engine`]).
    pub fn dialect<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.engine() {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        }
    }

    /// The same connection, borrowed for less long.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn) => Conn::Sqlite(conn),
            Self::Postgres(conn) => Conn::Postgres(conn),
            Self::Direct(conn) => Conn::Direct(conn),
        }
    }

    /// Opens a savepoint in the current transaction: what follows can be
    /// undone alone with [`Conn::end_savepoint`], on both engines.
    pub async fn begin_savepoint(&mut self) -> Result<(), StoreError> {
        query("SAVEPOINT bosun_nested").execute(self).await?;
        Ok(())
    }

    /// Closes the newest savepoint, keeping its changes or undoing them.
    pub async fn end_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if !keep {
            query("ROLLBACK TO SAVEPOINT bosun_nested")
                .execute(self)
                .await?;
        }
        query("RELEASE SAVEPOINT bosun_nested")
            .execute(self)
            .await?;
        Ok(())
    }
}

/// A row type both engines (and the direct SQLite connection) can decode.
pub trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + DirectRow + Send + Unpin
{
}
impl<T> Row for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + DirectRow + Send + Unpin
{
}

/// A column type both engines can decode.
pub trait Column:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + rusqlite::types::FromSql
    + Send
    + Unpin
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + rusqlite::types::FromSql
        + Send
        + Unpin
{
}

/// One statement with its bound values.
#[derive(Debug, Clone)]
pub struct Query<'q> {
    sqlite: Cow<'q, str>,
    postgres: Cow<'q, str>,
    values: Vec<Value<'q>>,
}

/// A statement both engines accept.
pub fn query(sql: &str) -> Query<'_> {
    Query {
        sqlite: Cow::Borrowed(sql),
        postgres: Cow::Borrowed(sql),
        values: Vec::new(),
    }
}

/// A statement whose text differs between the engines; both take the same
/// values in the same placeholders.
pub fn query_per_engine<'q>(sqlite: &'q str, postgres: &'q str) -> Query<'q> {
    Query {
        sqlite: Cow::Borrowed(sqlite),
        postgres: Cow::Borrowed(postgres),
        values: Vec::new(),
    }
}

impl<'q> Query<'q> {
    /// Binds the next placeholder.
    pub fn bind(mut self, value: impl Into<Value<'q>>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute(self, conn: &mut Conn<'_>) -> Result<u64, StoreError> {
        match conn {
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                Ok(sqlx::query_with(&self.postgres, args)
                    .execute(&mut **c)
                    .await?
                    .rows_affected())
            }
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                Ok(sqlx::query_with(&self.sqlite, args)
                    .execute(&mut **c)
                    .await?
                    .rows_affected())
            }
            Conn::Direct(c) => c.execute(&self.sqlite, self.values),
        }
    }

    /// Runs an INSERT of one row and returns the id the database gave it.
    /// The PostgreSQL text ends in `RETURNING id`; SQLite's has no
    /// RETURNING, and the id is the row's rowid, which SQLite reports
    /// anyway (a RETURNING clause makes SQLite gather the rows in a
    /// temporary table first, a cost on every insert).
    pub async fn insert_id(self, conn: &mut Conn<'_>) -> Result<i64, StoreError> {
        match conn {
            Conn::Postgres(_) => self.fetch_scalar(conn).await,
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                Ok(sqlx::query_with(&self.sqlite, args)
                    .execute(&mut **c)
                    .await?
                    .last_insert_rowid())
            }
            Conn::Direct(c) => c.insert(&self.sqlite, self.values),
        }
    }

    /// Every row.
    pub async fn fetch_all<R: Row>(self, conn: &mut Conn<'_>) -> Result<Vec<R>, StoreError> {
        match conn {
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                Ok(sqlx::query_as_with(&self.postgres, args)
                    .fetch_all(&mut **c)
                    .await?)
            }
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                Ok(sqlx::query_as_with(&self.sqlite, args)
                    .fetch_all(&mut **c)
                    .await?)
            }
            Conn::Direct(c) => c.fetch(&self.sqlite, self.values, None),
        }
    }

    /// The first row, if any.
    pub async fn fetch_optional<R: Row>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<R>, StoreError> {
        match conn {
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                Ok(sqlx::query_as_with(&self.postgres, args)
                    .fetch_optional(&mut **c)
                    .await?)
            }
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                Ok(sqlx::query_as_with(&self.sqlite, args)
                    .fetch_optional(&mut **c)
                    .await?)
            }
            Conn::Direct(c) => Ok(c.fetch(&self.sqlite, self.values, Some(1))?.pop()),
        }
    }

    /// The one row the statement must return.
    pub async fn fetch_one<R: Row>(self, conn: &mut Conn<'_>) -> Result<R, StoreError> {
        self.fetch_optional(conn)
            .await?
            .ok_or_else(|| StoreError::from(sqlx::Error::RowNotFound))
    }

    /// The first column of the one row the statement must return.
    pub async fn fetch_scalar<T: Column>(self, conn: &mut Conn<'_>) -> Result<T, StoreError> {
        let (value,): (T,) = self.fetch_one(conn).await?;
        Ok(value)
    }

    /// The first column of the first row, if any.
    pub async fn fetch_optional_scalar<T: Column>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<T>, StoreError> {
        let row: Option<(T,)> = self.fetch_optional(conn).await?;
        Ok(row.map(|(value,)| value))
    }

    /// The first column of every row.
    pub async fn fetch_all_scalars<T: Column>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Vec<T>, StoreError> {
        let rows: Vec<(T,)> = self.fetch_all(conn).await?;
        Ok(rows.into_iter().map(|(value,)| value).collect())
    }
}

/// Builds a statement piece by piece (optional filters), numbering the
/// placeholders `$1`, `$2`... as values are pushed.
#[derive(Debug, Clone, Default)]
pub struct Builder<'q> {
    sql: String,
    values: Vec<Value<'q>>,
}

impl<'q> Builder<'q> {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Value<'q>>) -> &mut Self {
        self.values.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.values.len().to_string());
        self
    }

    /// The statement, one text for both engines.
    pub fn build(self) -> Query<'q> {
        Query {
            sqlite: Cow::Owned(self.sql.clone()),
            postgres: Cow::Owned(self.sql),
            values: self.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_numbers_placeholders_in_push_order() {
        let mut query = Builder::new("SELECT x FROM t WHERE 1 = 1");
        query.push(" AND a = ").push_bind(7_i64);
        query
            .push(" AND b IN (")
            .push_bind("x")
            .push(", ")
            .push_bind(Some(true));
        query.push(") LIMIT ").push_bind(10_u32);
        let built = query.build();
        assert_eq!(
            built.sqlite,
            "SELECT x FROM t WHERE 1 = 1 AND a = $1 AND b IN ($2, $3) LIMIT $4"
        );
        assert_eq!(built.sqlite, built.postgres);
        assert!(matches!(
            built.values.as_slice(),
            [
                Value::Int(Some(7)),
                Value::Text(Some(_)),
                Value::Bool(Some(true)),
                Value::Int(Some(10))
            ]
        ));
    }

    #[test]
    fn per_engine_texts_share_the_values() {
        let built = query_per_engine(
            "SELECT rowid FROM s WHERE id = $1",
            "SELECT row_order FROM s WHERE id = $1",
        )
        .bind("s-1")
        .bind(Json("{}"));
        assert_eq!(built.sqlite, "SELECT rowid FROM s WHERE id = $1");
        assert_eq!(built.postgres, "SELECT row_order FROM s WHERE id = $1");
        assert!(matches!(
            built.values.as_slice(),
            [Value::Text(_), Value::Json(_)]
        ));
    }
}
