//! `bosun migrate` on PostgreSQL: the migrations in `migrations/postgres/`,
//! embedded, applied under sqlx's session advisory lock (one per database),
//! so replicas that start at once apply them once: the first takes the lock
//! and applies, the others wait, then find nothing left to do.

use anyhow::Context;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::DatabaseUrl;

/// The migrations in `migrations/postgres/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Applies the migrations and returns how many this call applied (0 when
/// another process applied them first).
pub async fn migrate(url: &DatabaseUrl) -> anyhow::Result<usize> {
    let options = url.connect_options().map_err(anyhow::Error::msg)?;
    let mut conn = options
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", url.describe()))?;
    let applied = apply(&mut conn)
        .await
        .with_context(|| format!("cannot apply migrations to {}", url.describe()));
    conn.close().await.ok();
    applied
}

/// Counts and applies under the migration lock, so the count is this
/// call's own work. The lock is a session lock: [`Migrator::run`] takes it
/// again (advisory locks nest) and releases it once.
async fn apply(conn: &mut PgConnection) -> anyhow::Result<usize> {
    conn.lock().await?;
    let result = async {
        conn.ensure_migrations_table().await?;
        let before = conn.list_applied_migrations().await?.len();
        MIGRATOR.run_direct(&mut *conn).await?;
        let after = conn.list_applied_migrations().await?.len();
        anyhow::Ok(after.saturating_sub(before))
    }
    .await;
    let unlocked = conn.unlock().await;
    let applied = result?;
    unlocked?;
    Ok(applied)
}
