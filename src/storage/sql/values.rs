//! The values a statement binds, and JSON columns on both engines: what
//! [`super`] hands to each engine's sqlx driver.

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArguments, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Arguments, Decode, Encode, Postgres, Sqlite, Type};

use crate::storage::StoreError;

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

pub(super) fn sqlite_args(values: Vec<Value<'_>>) -> Result<SqliteArguments<'_>, StoreError> {
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

pub(super) fn pg_args(values: Vec<Value<'_>>) -> Result<PgArguments, StoreError> {
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
