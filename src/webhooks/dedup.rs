//! The dedup memory: which deliveries were already acknowledged, in a small
//! SQLite file of the shim's own (`<data_dir>/webhooks.db`), so a restart
//! replays nothing. A delivery is remembered only after it was answered 2xx
//! (its calls succeeded, or it called for nothing), so one that failed is
//! processed when the sender retries it. Bounded: past `capacity` rows the
//! oldest are forgotten.
//!
//! The same file keeps the ordering memory of [`super::ordering`]: the
//! highest rank applied per forge entity, bounded the same way.
//!
//! With a `database_url`, both memories live in the shared PostgreSQL
//! instead (tables `webhook_deliveries` and `webhook_positions`, see
//! `migrations/postgres/0010_replicas.sql`), so every replica's shim
//! knows what any replica acknowledged.

use std::path::Path;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::Source;
use super::ordering::Rank;
use crate::storage::postgres::DatabaseUrl;
use crate::storage::sql::{Conn, query_per_engine};
use crate::storage::{BUSY_TIMEOUT, Pooled, StoreError, Tx};

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
    memory: Memory,
    capacity: u32,
}

#[derive(Clone)]
enum Memory {
    /// `<data_dir>/webhooks.db`, this process's own.
    Sqlite(SqlitePool),
    /// The shared database's tables.
    Postgres(PgPool),
}

// The same statements over the two layouts: SQLite's file names its tables
// as it always has; PostgreSQL's live beside bosun's own tables.
const SEEN: [&str; 2] = [
    "SELECT id FROM seen_deliveries WHERE source = $1 AND delivery_key = $2",
    "SELECT id FROM webhook_deliveries WHERE source = $1 AND delivery_key = $2",
];
const REMEMBER: [&str; 2] = [
    "INSERT INTO seen_deliveries (source, delivery_key, seen_at) VALUES ($1, $2, $3) \
     ON CONFLICT (source, delivery_key) DO NOTHING",
    "INSERT INTO webhook_deliveries (source, delivery_key, seen_at) VALUES ($1, $2, $3) \
     ON CONFLICT (source, delivery_key) DO NOTHING",
];
const FORGET_DELIVERIES: [&str; 2] = [
    "DELETE FROM seen_deliveries WHERE id <= (SELECT MAX(id) FROM seen_deliveries) - $1",
    "DELETE FROM webhook_deliveries WHERE id <= (SELECT MAX(id) FROM webhook_deliveries) - $1",
];
const POSITION: [&str; 2] = [
    "SELECT rank_a, rank_b, rank_c FROM entity_positions WHERE source = $1 AND entity = $2",
    "SELECT rank_a, rank_b, rank_c FROM webhook_positions WHERE source = $1 AND entity = $2",
];
const ADVANCE: [&str; 2] = [
    "INSERT INTO entity_positions AS p (source, entity, rank_a, rank_b, rank_c) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (source, entity) DO UPDATE SET \
         rank_a = excluded.rank_a, rank_b = excluded.rank_b, rank_c = excluded.rank_c \
     WHERE (excluded.rank_a, excluded.rank_b, excluded.rank_c) > (p.rank_a, p.rank_b, p.rank_c)",
    "INSERT INTO webhook_positions AS p (source, entity, rank_a, rank_b, rank_c) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (source, entity) DO UPDATE SET \
         rank_a = excluded.rank_a, rank_b = excluded.rank_b, rank_c = excluded.rank_c \
     WHERE (excluded.rank_a, excluded.rank_b, excluded.rank_c) > (p.rank_a, p.rank_b, p.rank_c)",
];
const FORGET_POSITIONS: [&str; 2] = [
    "DELETE FROM entity_positions WHERE id <= (SELECT MAX(id) FROM entity_positions) - $1",
    "DELETE FROM webhook_positions WHERE id <= (SELECT MAX(id) FROM webhook_positions) - $1",
];
const COUNT: [&str; 2] = [
    "SELECT COUNT(*) FROM seen_deliveries",
    "SELECT COUNT(*) FROM webhook_deliveries",
];

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
        Ok(Self {
            memory: Memory::Sqlite(pool),
            capacity,
        })
    }

    /// The memory in the shared PostgreSQL `pool` (migrated by bosun).
    pub fn shared(pool: PgPool, capacity: u32) -> Self {
        Self {
            memory: Memory::Postgres(pool),
            capacity,
        }
    }

    /// [`DedupStore::shared`] in the database at `url` (the standalone
    /// shim's; it applies bosun's migrations, as `bosun migrate` would),
    /// else [`DedupStore::open`] in `data_dir`.
    pub async fn open_configured(
        data_dir: &Path,
        url: Option<&DatabaseUrl>,
        capacity: u32,
    ) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Self::open(data_dir, capacity).await;
        };
        crate::storage::postgres::migrate(url).await?;
        let options = url.connect_options().map_err(anyhow::Error::msg)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to {}", url.describe()))?;
        Ok(Self::shared(pool, capacity))
    }

    fn pick(&self, texts: [&'static str; 2]) -> crate::storage::sql::Query<'static> {
        query_per_engine(texts[0], texts[1])
    }

    async fn read(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.memory {
            Memory::Sqlite(pool) => Pooled::Sqlite(pool.acquire().await?),
            Memory::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        match &self.memory {
            Memory::Sqlite(pool) => Tx::begin_sqlite(pool).await,
            Memory::Postgres(pool) => Tx::begin_postgres(pool).await,
        }
    }

    /// Whether `key` of `source` was acknowledged before.
    pub async fn seen(&self, source: Source, key: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .pick(SEEN)
            .bind(source.as_str())
            .bind(key)
            .fetch_optional_scalar(&mut self.read().await?.conn())
            .await?;
        Ok(found.is_some())
    }

    /// Remembers `key` (a second time changes nothing), then forgets what
    /// falls beyond the capacity.
    pub async fn remember(&self, source: Source, key: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut conn: Conn<'_> = tx.conn();
        self.pick(REMEMBER)
            .bind(source.as_str())
            .bind(key)
            .bind(crate::time::UnixMicros::now().0)
            .execute(&mut conn)
            .await?;
        self.pick(FORGET_DELIVERIES)
            .bind(i64::from(self.capacity))
            .execute(&mut conn)
            .await?;
        tx.finish().await
    }

    /// The highest rank applied for `entity` of `source`.
    pub async fn position(&self, source: Source, entity: &str) -> Result<Option<Rank>, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .pick(POSITION)
            .bind(source.as_str())
            .bind(entity)
            .fetch_optional(&mut self.read().await?.conn())
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
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut conn: Conn<'_> = tx.conn();
        self.pick(ADVANCE)
            .bind(source.as_str())
            .bind(entity)
            .bind(rank[0])
            .bind(rank[1])
            .bind(rank[2])
            .execute(&mut conn)
            .await?;
        self.pick(FORGET_POSITIONS)
            .bind(i64::from(self.capacity))
            .execute(&mut conn)
            .await?;
        tx.finish().await
    }

    /// How many deliveries are remembered.
    pub async fn remembered(&self) -> Result<i64, StoreError> {
        self.pick(COUNT)
            .fetch_scalar(&mut self.read().await?.conn())
            .await
    }

    pub async fn close(&self) {
        match &self.memory {
            Memory::Sqlite(pool) => pool.close().await,
            // The pool is the server's (or the shim's own, closed on drop).
            Memory::Postgres(_) => {}
        }
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
