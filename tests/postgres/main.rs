//! The PostgreSQL engine's own tests against a real server: one cluster for
//! this binary, a fresh database per test (tests/common/postgres.rs). Run
//! them with `scripts/test-postgres`; under CI=true they fail, never skip,
//! when PostgreSQL cannot be started. (Every other server test also runs on
//! PostgreSQL: scripts/test repeats them with TEST_BOSUN_ENGINE=postgres.)
//! - migrate: `bosun migrate --database-url` (three at once), bad URLs;
//! - schema: every SQLite table, column and payload view has its port;
//! - commit_order: the sequence trap, and how the counter row avoids it;
//! - change_log: seq gapless in commit order with three replicas writing;
//! - payloads: each event's payload equals SQLite's for the same change;
//! - data_migrations: migrations that rewrite rows (0007, 0008) leave the
//!   same rows and events as on SQLite;
//! - notify: LISTEN/NOTIFY wakes the head signal of another replica;
//! - leases: a lease whose connection ends is lost and its pass stops; a
//!   lease in use never looks idle to the server;
//! - fences: the writes of a pass whose lease another replica took fail,
//!   and the new holder waits for a write the old one had begun;
//! - writer: a batch that cannot commit (an aborted transaction, an error
//!   at COMMIT) fails its callers, and the writer goes on; a batch runs
//!   without savepoints until a job fails, then again with them;
//! - failover: three `bosun serve` replicas SIGKILLed and restarted under
//!   load: nothing acknowledged lost or applied twice, the log gapless,
//!   watchers resume on another replica, background passes one at a time.

#[path = "../common/batches.rs"]
mod batches;
#[path = "../common/history.rs"]
mod history;
#[path = "../common/postgres.rs"]
mod pg;
#[path = "../common/process.rs"]
mod process;

mod change_log;
mod commit_order;
mod data_migrations;
mod failover;
mod fences;
mod leases;
mod migrate;
mod notify;
mod payloads;
mod schema;
mod writer;

use bosun::storage::postgres::MIGRATOR;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A fresh database with the schema applied, or None when PostgreSQL is
/// not installed outside CI (see [`pg::server`]).
async fn migrated_database() -> Option<String> {
    let url = pg::server()?.database().await;
    let pool = pool(&url, 1).await;
    MIGRATOR.run(&pool).await.expect("apply migrations");
    pool.close().await;
    Some(url)
}

/// A pool of its own: one per replica.
async fn pool(url: &str, connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .expect("connect to the test database")
}
