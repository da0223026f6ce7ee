//! On SQLite each batch statement reads an element of its row set once,
//! however many fields it takes from it (see `usage_store`).

use sqlx::{Connection, Row};

use super::{INSERT_RESPONSES_SQLITE, UPSERT_USAGE_SQLITE};
use crate::processors::store::UPSERT_STATE_SQLITE;

/// How many times SQLite's program for `sql` reads a column of a
/// virtual table (here `json_each`'s `value`) per row.
async fn column_reads(sql: &str) -> anyhow::Result<usize> {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    crate::storage::MIGRATOR.run(&mut conn).await?;
    let program = sqlx::query(&format!("EXPLAIN {sql}"))
        .fetch_all(&mut conn)
        .await?;
    Ok(program
        .iter()
        .filter(|row| row.get::<String, _>("opcode") == "VColumn")
        .count())
}

/// Each row set's element is read once per row, however many fields
/// the statement takes from it: json_each renders it as text per read.
#[tokio::test]
async fn row_sets_are_read_once_per_row() -> anyhow::Result<()> {
    for sql in [
        INSERT_RESPONSES_SQLITE,
        UPSERT_USAGE_SQLITE,
        UPSERT_STATE_SQLITE,
    ] {
        assert_eq!(column_reads(sql).await?, 1, "{sql}");
    }
    // What the test would see if a statement read `value` per field.
    assert_eq!(
        column_reads("SELECT value ->> 0, value ->> 1 FROM json_each('[]')").await?,
        2
    );
    Ok(())
}
