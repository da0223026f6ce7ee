//! SQLite's WAL checkpoints, off the writer. Left to itself, SQLite
//! checkpoints inside the COMMIT that takes the WAL past 1,000 pages: every
//! so often one write, and every event it carried, waited while pages were
//! copied into the database file and synced (the change stream's p99 showed
//! it). This task checkpoints on a connection of its own instead, shortly
//! after commits. It asks for a PASSIVE checkpoint, which never waits for
//! the writer or a reader: it copies what no reader still needs, and SQLite
//! starts the WAL over at the writer's next transaction once all of it was
//! copied. While commits keep coming it never copies the last one, so the
//! writer checkpoints too, past a bound of its own (see
//! `sql::direct::WRITER_WAL_PAGES`): then only the few frames this task has
//! not copied yet are left for it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// After a commit, how long the checkpointer lets further commits gather
/// before it checkpoints them together.
const GATHER: Duration = Duration::from_millis(200);

/// The checkpointing task; [`Checkpointer::stop`] ends it.
pub struct Checkpointer {
    stop: CancellationToken,
    task: JoinHandle<()>,
    done: watch::Receiver<u64>,
}

impl Checkpointer {
    /// Checkpoints on `conn` (a connection that may write, which it never
    /// does otherwise) after the writer's commits (`committed`), at most
    /// once per [`GATHER`].
    pub fn start(conn: SqliteConnection, committed: Arc<Notify>) -> Self {
        let stop = CancellationToken::new();
        let (done_tx, done) = watch::channel(0);
        let task = tokio::spawn(run(conn, committed, stop.clone(), done_tx));
        Self { stop, task, done }
    }

    /// How many checkpoints have succeeded so far, updated after each (for
    /// whoever needs to know the WAL was copied back, such as a test).
    pub fn done(&self) -> watch::Receiver<u64> {
        self.done.clone()
    }

    /// Checkpoints once more, then closes the connection.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "the checkpointer failed");
        }
    }
}

async fn run(
    mut conn: SqliteConnection,
    committed: Arc<Notify>,
    stop: CancellationToken,
    done: watch::Sender<u64>,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = committed.notified() => {}
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(GATHER) => {}
        }
        if checkpoint(&mut conn).await {
            done.send_modify(|n| *n += 1);
        }
    }
    checkpoint(&mut conn).await;
    if let Err(err) = conn.close().await {
        tracing::warn!(error = %err, "closing the checkpointer's connection failed");
    }
}

/// Whether the checkpoint ran.
async fn checkpoint(conn: &mut SqliteConnection) -> bool {
    match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(conn)
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(error = %err, "a WAL checkpoint failed; the next commit retries it");
            false
        }
    }
}
