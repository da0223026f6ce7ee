//! SQL of the change log.

use super::{EventFilter, LogBounds, StoredEvent};
use crate::storage::feed::{CHANGE_ROW_COLUMNS, ChangeRow};
use crate::storage::sql::{Builder, Conn, query};
use crate::storage::{Db, StoreError};
use crate::time::UnixMicros;

impl From<ChangeRow> for StoredEvent {
    fn from(row: ChangeRow) -> Self {
        Self {
            seq: row.seq,
            event_type: row.event_type,
            entity_kind: row.entity_kind,
            entity_id: row.entity_id,
            project_id: row.project_id,
            session_id: row.session_id,
            task_id: row.task_id,
            payload: row.payload.0,
            create_time: UnixMicros(row.create_time),
        }
    }
}

/// The newest and oldest kept seqs. Each is a subquery of its own: SQLite
/// answers a lone MIN or MAX from the primary key, but MIN and MAX in one
/// query scan the whole table (every Watch reads this when it opens and
/// every few seconds after).
const BOUNDS: &str = "SELECT COALESCE((SELECT MAX(seq) FROM change_log), 0), \
    COALESCE((SELECT MIN(seq) FROM change_log), 0)";

/// The newest and oldest kept seqs, read in one statement.
///
/// On PostgreSQL, MAX(seq) is a safe head too: appends hold the counter row
/// until they commit, so no smaller seq can commit after a larger one.
pub async fn bounds(conn: &mut Conn<'_>) -> Result<LogBounds, StoreError> {
    let (head_seq, oldest_seq): (i64, i64) = query(BOUNDS).fetch_one(conn).await?;
    Ok(LogBounds {
        head_seq,
        oldest_seq,
    })
}

/// Up to `limit` events with seq > `after_seq` and seq <= `up_to`, matching
/// `filter`, in seq order.
pub async fn list(
    conn: &mut Conn<'_>,
    after_seq: i64,
    up_to: i64,
    filter: &EventFilter,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut query = Builder::new(format!(
        "SELECT {CHANGE_ROW_COLUMNS} FROM change_log WHERE seq > "
    ));
    query
        .push_bind(after_seq)
        .push(" AND seq <= ")
        .push_bind(up_to);
    if !filter.event_type_prefixes.is_empty() {
        query.push(" AND (");
        for (i, prefix) in filter.event_type_prefixes.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push("substr(event_type, 1, CAST(")
                .push_bind(prefix.len() as i64)
                .push(" AS INTEGER)) = ")
                .push_bind(prefix);
        }
        query.push(")");
    }
    if let Some(project_id) = &filter.project_id {
        query.push(" AND project_id = ").push_bind(project_id);
    }
    if let Some(session_id) = &filter.session_id {
        query.push(" AND session_id = ").push_bind(session_id);
    }
    if let Some(task_id) = filter.task_id {
        query.push(" AND task_id = ").push_bind(task_id);
    }
    query
        .push(" ORDER BY seq LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<ChangeRow> = query.build().fetch_all(conn).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// One page of a Watch or ListEvents, read in one snapshot that also checks
/// the cursor is still kept: events with seq in (`after_seq`, `up_to`].
pub async fn read_page(
    db: &Db,
    after_seq: i64,
    up_to: i64,
    filter: &EventFilter,
    limit: u32,
) -> Result<Result<Vec<StoredEvent>, LogBounds>, StoreError> {
    let mut snapshot = db.snapshot().await?;
    let oldest_seq: i64 = query("SELECT COALESCE(MIN(seq), 0) FROM change_log")
        .fetch_scalar(&mut snapshot.conn())
        .await?;
    let bounds = LogBounds {
        head_seq: up_to,
        oldest_seq,
    };
    if bounds.is_compacted(after_seq) {
        return Ok(Err(bounds));
    }
    let events = list(&mut snapshot.conn(), after_seq, up_to, filter, limit).await?;
    snapshot.finish().await?;
    Ok(Ok(events))
}

const FRONT: &str = "SELECT seq, create_time FROM change_log \
    WHERE seq <= (SELECT COALESCE(MAX(seq), 0) FROM change_log) - $1 \
    ORDER BY seq LIMIT $2";

/// The seq and create_time of up to `limit` of the oldest events, leaving
/// out the newest `keep_newest`: what compaction may delete, front first.
/// One seek for the head and one read along the primary key from its start,
/// however long the log is.
pub async fn front(
    conn: &mut Conn<'_>,
    keep_newest: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    query(FRONT)
        .bind(keep_newest)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Deletes every event up to and including `last`; returns how many. Only
/// ever called with the end of a [`front`] prefix, so the kept log stays a
/// gapless suffix.
pub async fn delete_through(conn: &mut Conn<'_>, last: i64) -> Result<u64, StoreError> {
    query("DELETE FROM change_log WHERE seq <= $1")
        .bind(last)
        .execute(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for the bounds looks up each end of the primary key
    /// and scans nothing (with MIN and MAX in one query it scanned the
    /// whole log, for every Watch, every few seconds).
    #[tokio::test]
    async fn the_bounds_are_read_from_the_ends_of_the_log() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path()).await?;
        let plan: Vec<(i64, i64, i64, String)> = query(&format!("EXPLAIN QUERY PLAN {BOUNDS}"))
            .fetch_all(&mut db.read().await?.conn())
            .await?;
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN change_log")),
            "{steps:?}"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|step| step.starts_with("SEARCH change_log"))
                .count(),
            2,
            "{steps:?}"
        );
        let bounds = bounds(&mut db.read().await?.conn()).await?;
        assert_eq!((bounds.head_seq, bounds.oldest_seq), (0, 0), "an empty log");
        db.close().await;
        Ok(())
    }

    /// Compaction's read of the log's front walks the primary key from its
    /// start and seeks the head: no scan of the log, and no walk of the
    /// recent events (it used to find the first recent event through the
    /// time index, a walk over every event kept, in each 1,000-event
    /// transaction).
    #[tokio::test]
    async fn compaction_reads_the_front_along_the_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path()).await?;
        let plan: Vec<(i64, i64, i64, String)> = query(&format!("EXPLAIN QUERY PLAN {FRONT}"))
            .bind(10_000_i64)
            .bind(1_000_i64)
            .fetch_all(&mut db.read().await?.conn())
            .await?;
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        assert!(
            steps.contains(&"SEARCH change_log USING INTEGER PRIMARY KEY (rowid<?)"),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN")
                || step.contains("change_log_by_time")
                || step.contains("TEMP B-TREE")),
            "{steps:?}"
        );
        db.close().await;
        Ok(())
    }
}
