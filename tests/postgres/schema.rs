//! The PostgreSQL schema is a faithful port: the same tables with the same
//! columns, the same views and indexes, and a change-log trigger on every
//! table SQLite has one on.

use std::collections::BTreeSet;

use sqlx::{Connection, SqliteConnection};

use super::{migrated_database, pool};

async fn sqlite() -> SqliteConnection {
    let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    bosun::storage::MIGRATOR.run(&mut conn).await.unwrap();
    conn
}

/// A SQLite schema object list.
async fn sqlite_names(conn: &mut SqliteConnection, sql: &str) -> BTreeSet<String> {
    sqlx::query_scalar(sql)
        .fetch_all(conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn every_table_column_view_index_and_trigger_has_its_port() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let pg = pool(&url, 1).await;
    let mut lite = sqlite().await;
    let pg_names = |sql: &'static str| {
        let pg = pg.clone();
        async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(&pg)
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeSet<String>>()
        }
    };

    let tables = sqlite_names(
        &mut lite,
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .await;
    let pg_tables = pg_names(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .await;
    // PostgreSQL only: the change-log counter row, and the webhook shim's
    // memory (on SQLite, the shim's own file).
    let mut expected = tables.clone();
    for pg_only in [
        "change_log_head",
        "lease_fences",
        "webhook_deliveries",
        "webhook_positions",
    ] {
        expected.insert(pg_only.into());
    }
    assert_eq!(pg_tables, expected);

    for table in &tables {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut lite)
                .await
                .unwrap();
        let pg_columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 AND column_name <> 'row_order' \
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&pg)
        .await
        .unwrap();
        assert_eq!(pg_columns, columns, "the columns of {table}");
    }

    let views = sqlite_names(
        &mut lite,
        "SELECT name FROM sqlite_master WHERE type = 'view'",
    )
    .await;
    let pg_views = pg_names(
        "SELECT table_name::text FROM information_schema.views WHERE table_schema = 'public'",
    )
    .await;
    assert_eq!(pg_views, views);

    let indexes = sqlite_names(
        &mut lite,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .await;
    let pg_indexes =
        pg_names("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'").await;
    let missing: Vec<&String> = indexes.difference(&pg_indexes).collect();
    assert!(missing.is_empty(), "indexes without a port: {missing:?}");

    let mut triggered = sqlite_names(
        &mut lite,
        "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'",
    )
    .await;
    // PostgreSQL only: the change log's seq and create_time, and the
    // counter row's one notification per commit.
    triggered.insert("change_log".into());
    triggered.insert("change_log_head".into());
    let pg_triggered = pg_names(
        "SELECT DISTINCT event_object_table::text FROM information_schema.triggers \
         WHERE trigger_schema = 'public'",
    )
    .await;
    assert_eq!(pg_triggered, triggered);
}
