//! The dedup memory: which deliveries were already acknowledged, in a small
//! SQLite file of the shim's own (`<data_dir>/webhooks.db`), so a restart
//! replays nothing. A delivery is remembered only after it was answered 2xx
//! (its calls succeeded, or it called for nothing), so one that failed is
//! processed when the sender retries it. Bounded: past `capacity` rows the
//! oldest are forgotten.
//!
//! The same file keeps the ordering memory of [`super::ordering`]: the
//! highest rank applied per forge entity, bounded the same way.

use std::path::Path;

use anyhow::Context;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::Source;
use super::ordering::Rank;
use crate::storage::BUSY_TIMEOUT;

/// The shim's file inside the data dir.
pub const DEDUP_FILE: &str = "webhooks.db";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS seen_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    UNIQUE (source, delivery_key)
);
CREATE TABLE IF NOT EXISTS entity_positions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    entity TEXT NOT NULL,
    rank_a INTEGER NOT NULL,
    rank_b INTEGER NOT NULL,
    rank_c INTEGER NOT NULL,
    UNIQUE (source, entity)
)";

#[derive(Clone)]
pub struct DedupStore {
    pool: SqlitePool,
    capacity: u32,
}

impl DedupStore {
    /// Opens (creating if needed) `<data_dir>/webhooks.db`.
    pub async fn open(data_dir: &Path, capacity: u32) -> anyhow::Result<Self> {
        crate::storage::create_data_dir(data_dir)?;
        let path = data_dir.join(DEDUP_FILE);
        // Delivery ids say what happened and when: owner-only, like bosun.db.
        crate::storage::owner_only_database(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .with_context(|| format!("cannot prepare {}", path.display()))?;
        Ok(Self { pool, capacity })
    }

    /// Whether `key` of `source` was acknowledged before.
    pub async fn seen(&self, source: Source, key: &str) -> Result<bool, sqlx::Error> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM seen_deliveries WHERE source = ? AND delivery_key = ?",
        )
        .bind(source.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Remembers `key` (a second time changes nothing), then forgets what
    /// falls beyond the capacity.
    pub async fn remember(&self, source: Source, key: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO seen_deliveries (source, delivery_key, seen_at)
             VALUES (?, ?, ?)",
        )
        .bind(source.as_str())
        .bind(key)
        .bind(crate::time::UnixMicros::now().0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM seen_deliveries
             WHERE id <= (SELECT MAX(id) FROM seen_deliveries) - ?",
        )
        .bind(i64::from(self.capacity))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The highest rank applied for `entity` of `source`.
    pub async fn position(
        &self,
        source: Source,
        entity: &str,
    ) -> Result<Option<Rank>, sqlx::Error> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT rank_a, rank_b, rank_c FROM entity_positions WHERE source = ? AND entity = ?",
        )
        .bind(source.as_str())
        .bind(entity)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(a, b, c)| [a, b, c]))
    }

    /// Raises `entity`'s applied rank to `rank` (a lower one changes
    /// nothing), then forgets the entities beyond the capacity.
    pub async fn advance(
        &self,
        source: Source,
        entity: &str,
        rank: Rank,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO entity_positions (source, entity, rank_a, rank_b, rank_c) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (source, entity) DO UPDATE SET
                 rank_a = excluded.rank_a, rank_b = excluded.rank_b, rank_c = excluded.rank_c
             WHERE (excluded.rank_a, excluded.rank_b, excluded.rank_c) > (rank_a, rank_b, rank_c)",
        )
        .bind(source.as_str())
        .bind(entity)
        .bind(rank[0])
        .bind(rank[1])
        .bind(rank[2])
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM entity_positions
             WHERE id <= (SELECT MAX(id) FROM entity_positions) - ?",
        )
        .bind(i64::from(self.capacity))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// How many deliveries are remembered.
    pub async fn remembered(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM seen_deliveries")
            .fetch_one(&self.pool)
            .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_across_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = DedupStore::open(dir.path(), 3).await.unwrap();
        assert!(!store.seen(Source::GitHub, "d1").await.unwrap());
        store.remember(Source::GitHub, "d1").await.unwrap();
        store.remember(Source::GitHub, "d1").await.unwrap();
        assert!(store.seen(Source::GitHub, "d1").await.unwrap());
        assert!(
            !store.seen(Source::Gitea, "d1").await.unwrap(),
            "per source"
        );
        store.close().await;

        let store = DedupStore::open(dir.path(), 3).await.unwrap();
        assert!(store.seen(Source::GitHub, "d1").await.unwrap(), "durable");
        for key in ["d2", "d3", "d4"] {
            store.remember(Source::Plane, key).await.unwrap();
        }
        assert_eq!(store.remembered().await.unwrap(), 3);
        assert!(
            !store.seen(Source::GitHub, "d1").await.unwrap(),
            "oldest forgotten"
        );
        assert!(store.seen(Source::Plane, "d4").await.unwrap());
    }

    #[tokio::test]
    async fn positions_only_rise() {
        let dir = tempfile::tempdir().unwrap();
        let store = DedupStore::open(dir.path(), 3).await.unwrap();
        assert_eq!(store.position(Source::GitHub, "r/1").await.unwrap(), None);
        store
            .advance(Source::GitHub, "r/1", [2, 5, 0])
            .await
            .unwrap();
        store
            .advance(Source::GitHub, "r/1", [0, 9, 0])
            .await
            .unwrap();
        assert_eq!(
            store.position(Source::GitHub, "r/1").await.unwrap(),
            Some([2, 5, 0])
        );
        store
            .advance(Source::GitHub, "r/1", [2, 6, 0])
            .await
            .unwrap();
        assert_eq!(
            store.position(Source::GitHub, "r/1").await.unwrap(),
            Some([2, 6, 0])
        );
        assert_eq!(store.position(Source::Gitea, "r/1").await.unwrap(), None);
    }
}
