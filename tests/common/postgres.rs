//! A real PostgreSQL for tests: one throwaway cluster per test binary
//! (see `pg_cluster.rs`: initdb into a temp dir, a free loopback port,
//! an unprivileged user, stopped and deleted when the binary exits), run
//! with fsync off, and a fresh database per test.
//!
//! Without PostgreSQL installed, [`server`] returns None so the tests
//! return early with a note on stderr, except under CI=true or
//! TEST_BOSUN_PG_REQUIRED=1 (set by scripts/test), where it panics: CI never
//! skips them. A server that is installed but does not start always fails.

#![allow(dead_code)]

#[path = "pg_cluster.rs"]
mod pg_cluster;

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use pg_cluster::{Cluster, find_bindir};

pub struct PgServer {
    cluster: Cluster,
    next_database: AtomicU32,
}

/// The cluster of this test binary, started on first use.
pub fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| match find_bindir() {
            Some(bindir) => Some(PgServer {
                cluster: Cluster::start(
                    &bindir,
                    "bosun-pg-",
                    &["fsync=off", "full_page_writes=off"],
                )
                .unwrap_or_else(|err| panic!("{err:#}")),
                next_database: AtomicU32::new(1),
            }),
            None if required() => panic!(
                "PostgreSQL is not installed (CI=true or TEST_BOSUN_PG_REQUIRED=1: these tests must run); \
                 scripts/test-postgres installs Debian's postgresql package"
            ),
            None => {
                eprintln!(
                    "NOTE: PostgreSQL tests not run: no PostgreSQL binaries found \
                     (run scripts/test-postgres, or set TEST_BOSUN_PG_BINDIR)"
                );
                None
            }
        })
        .as_ref()
}

impl PgServer {
    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        self.cluster.url(name)
    }

    /// A new, empty database; returns its URL.
    pub async fn database(&self) -> String {
        use sqlx::Connection;
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        self.url(&name)
    }

    /// The cluster's directory (data, log).
    pub fn root(&self) -> &Path {
        self.cluster.root()
    }
}

/// Whether a missing PostgreSQL fails the tests instead of skipping them.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
        || std::env::var("TEST_BOSUN_PG_REQUIRED").is_ok_and(|required| required == "1")
}
