//! What the writer committed, handed to the Watch streams of this process
//! without a second read: while any stream is open, the writer reads the
//! change-log rows its batch appended (one statement, inside the batch's
//! transaction, in place of the head read it makes anyway), and after
//! COMMIT puts them here before it publishes the new head. Streams waking
//! on that head find the events already in memory.
//!
//! The table stays the source of truth: a batch dropped here (nobody drained
//! the feed for [`CAPACITY`] rows) or rows another PostgreSQL replica
//! committed leave a gap that the reader fills from the table, so nothing is
//! skipped and nothing is read twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::FromRow;

use super::StoreError;
use super::sql::{Conn, JsonText, query};

/// Committed rows kept for a reader that has not drained them yet.
const CAPACITY: usize = 4096;

/// The columns of a [`ChangeRow`], for `SELECT ... FROM change_log`.
pub const CHANGE_ROW_COLUMNS: &str = "seq, event_type, entity_kind, entity_id, project_id, session_id, task_id, payload, create_time";

/// One change-log row, as stored.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ChangeRow {
    pub seq: i64,
    pub event_type: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub project_id: Option<String>,
    pub session_id: Option<String>,
    pub task_id: Option<i64>,
    pub payload: JsonText,
    pub create_time: i64,
}

crate::direct_row!(ChangeRow {
    seq,
    event_type,
    entity_kind,
    entity_id,
    project_id,
    session_id,
    task_id,
    payload,
    create_time,
});

/// Batches of committed change-log rows, newest last, each with contiguous
/// seqs.
#[derive(Default)]
pub struct Feed {
    readers: AtomicUsize,
    batches: std::sync::Mutex<Batches>,
}

#[derive(Default)]
struct Batches {
    queue: VecDeque<Vec<ChangeRow>>,
    rows: usize,
}

impl Feed {
    /// Asks the writer to hand over what it commits while the returned
    /// guard lives (one per open stream).
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.readers.fetch_add(1, Ordering::Relaxed);
        Subscription(self.clone())
    }

    /// Whether anyone follows the feed, so the writer should read its rows.
    pub(super) fn wanted(&self) -> bool {
        self.readers.load(Ordering::Relaxed) > 0
    }

    /// Adds a committed batch, dropping the oldest beyond [`CAPACITY`].
    pub(super) fn push(&self, rows: Vec<ChangeRow>) {
        if rows.is_empty() {
            return;
        }
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        batches.rows += rows.len();
        batches.queue.push_back(rows);
        while batches.rows > CAPACITY && batches.queue.len() > 1 {
            if let Some(dropped) = batches.queue.pop_front() {
                batches.rows -= dropped.len();
            }
        }
    }

    /// Takes every batch committed since the last call, oldest first.
    pub fn drain(&self) -> Vec<Vec<ChangeRow>> {
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        batches.rows = 0;
        batches.queue.drain(..).collect()
    }
}

/// Keeps the writer handing over its commits; see [`Feed::subscribe`].
pub struct Subscription(Arc<Feed>);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The change-log rows with seq > `after`, in seq order: inside the
/// writer's transaction, what its batch appended.
pub(super) async fn appended(
    conn: &mut Conn<'_>,
    after: i64,
) -> Result<Vec<ChangeRow>, StoreError> {
    let sql = format!("SELECT {CHANGE_ROW_COLUMNS} FROM change_log WHERE seq > $1 ORDER BY seq");
    query(&sql).bind(after).fetch_all(conn).await
}

/// [`appended`] on PostgreSQL, as the text of a simple query (it goes in one
/// message with COMMIT, so `after`, an integer of bosun's own, is written
/// into it). The upper bound is the batch's last seq, which the append
/// trigger keeps in the transaction's setting `bosun.seq`
/// (`migrations/postgres/0015_counter_once_per_commit.sql`; unset when the
/// batch appended nothing, and then no row matches). The read does not need
/// it, since the batch holds the counter-row lock and no other rows can lie
/// past `after`, but the planner does: with `seq > after` alone, on a
/// change log not yet analyzed it guessed a third of the table and scanned
/// all of it (10 ms a commit at 43,000 rows, while holding that lock); a
/// bounded range it reads through the primary key, analyzed or not.
pub fn appended_postgres(after: i64) -> String {
    format!(
        "SELECT {CHANGE_ROW_COLUMNS} FROM change_log WHERE seq > {after} \
         AND seq <= NULLIF(current_setting('bosun.seq', true), '')::bigint ORDER BY seq"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seqs: std::ops::RangeInclusive<i64>) -> Vec<ChangeRow> {
        seqs.map(|seq| ChangeRow {
            seq,
            event_type: "lesson.created".into(),
            entity_kind: "lesson".into(),
            entity_id: seq.to_string(),
            project_id: None,
            session_id: None,
            task_id: None,
            payload: JsonText("{}".into()),
            create_time: seq,
        })
        .collect()
    }

    #[test]
    fn wanted_while_a_subscription_lives() {
        let feed = Arc::new(Feed::default());
        assert!(!feed.wanted());
        let first = feed.subscribe();
        let second = feed.subscribe();
        assert!(feed.wanted());
        drop(first);
        assert!(feed.wanted());
        drop(second);
        assert!(!feed.wanted());
    }

    #[test]
    fn drains_batches_in_order_and_once() {
        let feed = Feed::default();
        feed.push(rows(1..=3));
        feed.push(Vec::new());
        feed.push(rows(4..=4));
        let drained: Vec<Vec<i64>> = feed
            .drain()
            .iter()
            .map(|batch| batch.iter().map(|row| row.seq).collect())
            .collect();
        assert_eq!(drained, vec![vec![1, 2, 3], vec![4]]);
        assert!(feed.drain().is_empty());
    }

    #[test]
    fn keeps_the_newest_batches_when_nobody_drains() {
        let feed = Feed::default();
        let batch = 1000;
        for i in 0..10 {
            feed.push(rows(i * batch + 1..=(i + 1) * batch));
        }
        let drained = feed.drain();
        let kept: usize = drained.iter().map(Vec::len).sum();
        assert!(kept <= CAPACITY, "kept {kept}");
        assert_eq!(
            drained.last().and_then(|b| b.last()).map(|r| r.seq),
            Some(10 * batch)
        );
        // What is kept is a contiguous suffix: a reader sees one gap at most,
        // before the first kept batch.
        let seqs: Vec<i64> = drained.iter().flatten().map(|row| row.seq).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1));
    }
}
