//! Wake-ups for Watch streams on PostgreSQL: every commit that appends to
//! the change log NOTIFYs [`CHANNEL`] once, with its last seq, delivered
//! after the commit (see `migrations/postgres/0015_counter_once_per_commit.sql`),
//! and [`HeadSignal`] turns that into the same `watch::Receiver<i64>` of the
//! committed head that the SQLite engine's writer gives. A seq that arrives
//! ends a committed transaction, and every seq below it is committed too:
//! appends hold the counter row until they commit, so they commit in seq
//! order. So a published head never falls inside a transaction, and neither
//! does a progress message a stream sends there. A notification lost with a
//! dropped connection delays a wake-up by at most the fallback interval (the
//! head is then re-read from `change_log_head`), and never skips an event:
//! streams read events from the table, never from here.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The channel the change log's trigger notifies.
pub const CHANNEL: &str = "bosun_change_log";
/// How long the listener waits before retrying after an error.
const RETRY: Duration = Duration::from_millis(500);

/// The committed change-log head, kept current by LISTEN/NOTIFY with a
/// periodic re-read as the fallback. Dropping it stops its tasks.
pub struct HeadSignal {
    head_rx: watch::Receiver<i64>,
    listening: JoinHandle<()>,
    following: JoinHandle<()>,
}

impl HeadSignal {
    /// Listens on [`CHANNEL`] through a connection of `pool`, then reads the
    /// head (after LISTEN, so no commit falls between the two), and re-reads
    /// it on every notification and at least every `fallback`.
    /// The head is published on `head_tx` (which the writer of this
    /// replica publishes its own commits on too; the head only moves
    /// forward).
    pub async fn start(
        pool: PgPool,
        head_tx: watch::Sender<i64>,
        fallback: Duration,
    ) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        crate::storage::writer::publish(&head_tx, read_head(&pool).await?);
        let head_rx = head_tx.subscribe();
        let wake = Arc::new(Notify::new());
        let listening = tokio::spawn(listen(listener, head_tx.clone(), wake.clone()));
        let following = tokio::spawn(follow(pool, head_tx, wake, fallback));
        Ok(Self {
            head_rx,
            listening,
            following,
        })
    }

    /// The newest committed seq; changes after every commit that appended.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head_rx.clone()
    }
}

impl Drop for HeadSignal {
    fn drop(&mut self) {
        self.listening.abort();
        self.following.abort();
    }
}

/// The committed head: the counter only a committed append moves.
async fn read_head(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM change_log_head")
        .fetch_one(pool)
        .await
}

/// Publishes the seqs notifications carry (the newest of those already
/// received, at once). A notification without a seq (from a database
/// migrated before notifications carried one) and a lost connection wake
/// the reader instead: notifications sent while it was down are gone.
async fn listen(mut listener: PgListener, head_tx: watch::Sender<i64>, wake: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(first)) => {
                let (mut newest, mut unknown) = (None, false);
                for notification in
                    std::iter::once(first).chain(std::iter::from_fn(|| listener.next_buffered()))
                {
                    match notification.payload().parse::<i64>() {
                        Ok(seq) => newest = newest.max(Some(seq)),
                        Err(_) => unknown = true,
                    }
                }
                if let Some(seq) = newest {
                    crate::storage::writer::publish(&head_tx, seq);
                }
                if unknown {
                    wake.notify_one();
                }
            }
            Ok(None) => {
                tracing::warn!(channel = CHANNEL, "change-log listener lost its connection");
                wake.notify_one();
            }
            Err(err) => {
                tracing::warn!(channel = CHANNEL, error = %err, "change-log listener failed");
                wake.notify_one();
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Re-reads the head on each wake-up and at least every `fallback`.
async fn follow(pool: PgPool, head_tx: watch::Sender<i64>, wake: Arc<Notify>, fallback: Duration) {
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(fallback) => {}
        }
        match read_head(&pool).await {
            Ok(seq) => crate::storage::writer::publish(&head_tx, seq),
            Err(err) => tracing::warn!(error = %err, "cannot read the change-log head"),
        }
    }
}
