//! One statement, either engine. Domain stores write their SQL with `$1`,
//! `$2`... placeholders (PostgreSQL's, which sqlx's SQLite driver reads
//! too), bind typed values, and run it on a [`Conn`], which is a SQLite or a
//! PostgreSQL connection. Most statements are one text both engines accept
//! ([`query`]); where the dialects differ, a store gives one text per engine
//! side by side ([`query_per_engine`]).
//!
//! This is a thin dispatch onto each engine's own sqlx driver: values are
//! bound with the driver's types, statements are prepared and cached per
//! connection, rows decode through `FromRow` for each driver. (sqlx's `Any`
//! driver was the alternative; it converts every value through its own
//! narrower types, cannot decode SQLite's integer flags as `bool` or
//! PostgreSQL's jsonb as text, and would hide the connection the writer
//! needs for SQLite's `BEGIN IMMEDIATE`.)

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgRow, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArguments, SqliteRow, SqliteTypeInfo, SqliteValueRef};
use sqlx::{
    Arguments, Decode, Encode, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Type,
};

use super::StoreError;

/// Which database engine a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection of either engine, borrowed: the writer's transaction, or a
/// connection from the read pool.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// `sqlite` or `postgres`: a fragment of SQL where the dialects differ
    /// (for [`Builder`]; whole statements use [`query_per_engine`]).
    pub fn dialect<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self {
            Self::Sqlite(_) => sqlite,
            Self::Postgres(_) => postgres,
        }
    }

    /// The same connection, borrowed for less long.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn) => Conn::Sqlite(conn),
            Self::Postgres(conn) => Conn::Postgres(conn),
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

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub enum Value<'q> {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<Cow<'q, str>>),
    /// JSON text: a jsonb value on PostgreSQL, text on SQLite.
    Json(Option<Cow<'q, str>>),
    Blob(Option<Cow<'q, [u8]>>),
}

/// JSON text to bind into a JSON column (jsonb on PostgreSQL).
#[derive(Debug, Clone, Copy)]
pub struct Json<'q>(pub &'q str);

/// JSON text owned, to bind into a JSON column.
#[derive(Debug, Clone)]
pub struct JsonOwned(pub String);

macro_rules! value_from {
    ($variant:ident: $($ty:ty => $conv:expr),* $(,)?) => {
        $(impl<'q> From<$ty> for Value<'q> {
            fn from(value: $ty) -> Self {
                let conv: fn($ty) -> _ = $conv;
                Value::$variant(conv(value))
            }
        })*
    };
}

value_from!(Int:
    i64 => Some,
    Option<i64> => |v| v,
    &'q i64 => |v| Some(*v),
    &'q Option<i64> => |v| *v,
    i32 => |v| Some(i64::from(v)),
    Option<i32> => |v| v.map(i64::from),
    u32 => |v| Some(i64::from(v)),
    Option<u32> => |v| v.map(i64::from),
);
value_from!(Real: f64 => Some, Option<f64> => |v| v, &'q Option<f64> => |v| *v);
value_from!(Bool: bool => Some, Option<bool> => |v| v, &'q bool => |v| Some(*v));
value_from!(Text:
    &'q str => |v| Some(Cow::Borrowed(v)),
    &'q String => |v| Some(Cow::Borrowed(v.as_str())),
    String => |v| Some(Cow::Owned(v)),
    Option<&'q str> => |v| v.map(Cow::Borrowed),
    Option<&'q String> => |v| v.map(|s| Cow::Borrowed(s.as_str())),
    &'q Option<String> => |v| v.as_deref().map(Cow::Borrowed),
    Option<String> => |v| v.map(Cow::Owned),
);
value_from!(Json:
    Json<'q> => |v| Some(Cow::Borrowed(v.0)),
    Option<Json<'q>> => |v| v.map(|j| Cow::Borrowed(j.0)),
    JsonOwned => |v| Some(Cow::Owned(v.0)),
    Option<JsonOwned> => |v| v.map(|j| Cow::Owned(j.0)),
);
value_from!(Blob:
    &'q [u8] => |v| Some(Cow::Borrowed(v)),
    &'q Vec<u8> => |v| Some(Cow::Borrowed(v.as_slice())),
    Vec<u8> => |v| Some(Cow::Owned(v)),
);

/// A row type both engines can decode.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A column type both engines can decode.
pub trait Column:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
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
        Ok(match conn {
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                sqlx::query_with(&self.sqlite, args)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
            }
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                sqlx::query_with(&self.postgres, args)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
            }
        })
    }

    /// Every row.
    pub async fn fetch_all<R: Row>(self, conn: &mut Conn<'_>) -> Result<Vec<R>, StoreError> {
        Ok(match conn {
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                sqlx::query_as_with(&self.sqlite, args)
                    .fetch_all(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                sqlx::query_as_with(&self.postgres, args)
                    .fetch_all(&mut **c)
                    .await?
            }
        })
    }

    /// The first row, if any.
    pub async fn fetch_optional<R: Row>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<R>, StoreError> {
        Ok(match conn {
            Conn::Sqlite(c) => {
                let args = sqlite_args(self.values)?;
                sqlx::query_as_with(&self.sqlite, args)
                    .fetch_optional(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                let args = pg_args(self.values)?;
                sqlx::query_as_with(&self.postgres, args)
                    .fetch_optional(&mut **c)
                    .await?
            }
        })
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

fn sqlite_args(values: Vec<Value<'_>>) -> Result<SqliteArguments<'_>, StoreError> {
    let mut args = SqliteArguments::default();
    for value in values {
        let added = match value {
            Value::Int(v) => args.add(v),
            Value::Real(v) => args.add(v),
            Value::Bool(v) => args.add(v),
            Value::Text(v) | Value::Json(v) => args.add(v),
            Value::Blob(v) => args.add(v.map(Cow::into_owned)),
        };
        added.map_err(|err| StoreError::Malformed(format!("cannot bind a value: {err}")))?;
    }
    Ok(args)
}

fn pg_args(values: Vec<Value<'_>>) -> Result<PgArguments, StoreError> {
    let mut args = PgArguments::default();
    // PostgreSQL's arguments are encoded at once, so they may borrow.
    for value in &values {
        let added = match value {
            Value::Int(v) => args.add(*v),
            Value::Real(v) => args.add(*v),
            Value::Bool(v) => args.add(*v),
            Value::Text(v) => args.add(v.as_deref()),
            Value::Json(v) => args.add(v.as_deref().map(Json)),
            Value::Blob(v) => args.add(v.as_deref()),
        };
        added.map_err(|err| StoreError::Malformed(format!("cannot bind a value: {err}")))?;
    }
    Ok(args)
}

impl Type<Postgres> for Json<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }
}

impl Encode<'_, Postgres> for Json<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, BoxDynError> {
        // jsonb's binary form: version 1, then the text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(sqlx::encode::IsNull::No)
    }
}

/// A JSON column read as its text: SQLite's TEXT, PostgreSQL's jsonb (or
/// json, or text). PostgreSQL renders jsonb in its own normal form (keys
/// sorted, `": "`), so compare decoded values, never the text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonText(pub String);

impl JsonText {
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Type<Sqlite> for JsonText {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for JsonText {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<String as Decode<Sqlite>>::decode(value)?))
    }
}

impl Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        *ty == PgTypeInfo::with_name("jsonb")
            || *ty == PgTypeInfo::with_name("json")
            || <String as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for JsonText {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        use sqlx::ValueRef;
        let is_jsonb = *value.type_info() == PgTypeInfo::with_name("jsonb");
        let text = <&str as Decode<Postgres>>::decode(value)?;
        // jsonb's binary form is a version byte (1) and the text.
        let text = match (is_jsonb, text.as_bytes().first()) {
            (true, Some(1)) => &text[1..],
            _ => text,
        };
        Ok(Self(text.to_owned()))
    }
}
