//! The PostgreSQL engine: `database_url`, the schema in
//! `migrations/postgres/` and `bosun migrate` on it ([`migrate`]), and the
//! change-log head signal for Watch streams ([`HeadSignal`]).
//!
//! Why the change log keeps its promises with writers on several replicas
//! (seq gapless, in commit order, every event in its change's transaction)
//! is written down in `migrations/postgres/0001_change_log.sql`: seq comes
//! from one counter row that each appending transaction holds locked until
//! it ends, so appends are serialized and seq order is commit order. (Since
//! `0015_counter_once_per_commit.sql` a transaction updates that row at its
//! first append and at COMMIT only, counting in between in a
//! transaction-local setting.)

mod migrate;
mod notify;

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

pub use migrate::{MIGRATOR, migrate};
pub use notify::{CHANNEL, HeadSignal};

/// A `postgres://` (or `postgresql://`) URL. Its Debug form hides the
/// password; messages name the database with [`DatabaseUrl::describe`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

/// Unchecked (the command line takes any text, and never echoes it):
/// configuration validation calls [`DatabaseUrl::connect_options`].
impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.to_owned()))
    }
}

impl DatabaseUrl {
    /// How sqlx connects: checks the scheme, then the rest of the URL as
    /// sqlx reads it. Errors never repeat the URL (it may hold a password).
    pub fn connect_options(&self) -> Result<PgConnectOptions, String> {
        let scheme = self.0.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            let shown = scheme.map_or_else(|| "no scheme".to_owned(), |s| format!("{s}://"));
            return Err(format!(
                "database_url must be a postgres:// or postgresql:// URL (unset: SQLite in data_dir), not {shown}"
            ));
        }
        PgConnectOptions::from_str(&self.0)
            .map_err(|err| format!("database_url is not a valid PostgreSQL URL: {err}"))
    }

    /// The URL as given, password included: for handing it on to another
    /// process (a test's child), never for logs or errors.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// "database NAME on HOST:PORT as USER", without the password.
    pub fn describe(&self) -> String {
        match self.connect_options() {
            Ok(options) => format!(
                "PostgreSQL database {} on {}:{} as {}",
                options.get_database().unwrap_or(options.get_username()),
                options.get_host(),
                options.get_port(),
                options.get_username()
            ),
            Err(_) => "an invalid database_url".to_owned(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.describe())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_repeated() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "postgres://bosun:s3cret@db.internal:6543/fleet",
                Ok("PostgreSQL database fleet on db.internal:6543 as bosun"),
            ),
            (
                "postgresql://bosun:s3cret@localhost/bosun",
                Ok("PostgreSQL database bosun on localhost:5432 as bosun"),
            ),
            ("mysql://root:s3cret@db/bosun", Err("not mysql://")),
            ("sqlite://data/bosun.db", Err("not sqlite://")),
            ("db.internal:5432", Err("not no scheme")),
            (
                "postgres://bosun:s3cret@db:99999/x",
                Err("not a valid PostgreSQL URL"),
            ),
        ];
        for (url, expected) in cases {
            let Ok(parsed) = url.parse::<DatabaseUrl>();
            match (parsed.connect_options(), expected) {
                (Ok(_), Ok(description)) => {
                    assert_eq!(parsed.describe(), *description, "{url}");
                    assert!(!format!("{parsed:?}").contains("s3cret"), "{url}");
                }
                (Err(err), Err(part)) => {
                    assert!(err.contains(part), "{url}: {err}");
                    assert!(!err.contains("s3cret"), "{url}: {err}");
                }
                (got, _) => panic!("{url}: {got:?}"),
            }
        }
    }
}
