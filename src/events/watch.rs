//! Events.Watch: one task per stream. It catches up from the table in pages
//! (each read in one snapshot that also checks the cursor was not
//! compacted), then waits for the writer's post-commit head signal, so a
//! commit reaches streams in milliseconds without polling (a slow re-read of
//! the head is only a safety net). Streams near the head take new events
//! from the shared [`Tail`], read and encoded once per commit for all of
//! them. Each stream's queue holds at most [`QUEUE`] messages: a consumer
//! that stops reading parks its own task, never the writer or other streams,
//! and is caught up from the table when it reads again. Progress messages
//! are sent only when caught up to a committed head, which always ends a
//! transaction (on PostgreSQL too: a commit notifies once, with its last
//! seq), so they never split a transaction's events.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::tail::Tail;
use super::wire::{self, WatchResponse};
use super::{EventError, EventFilter, convert, store};
use crate::error::{CommonError, to_status};
use crate::storage::Db;
use crate::storage::feed::Subscription;

/// Events read and sent per message while catching up.
const PAGE: u32 = 256;
/// Messages queued per stream before its task waits for the client.
const QUEUE: usize = 2;
/// How often a stream re-reads the head in case a wake-up was missed.
const SAFETY_POLL: Duration = Duration::from_secs(5);

/// Opens Watch streams and counts the open ones.
#[derive(Clone)]
pub struct Watchers {
    db: Db,
    tail: Arc<Tail>,
    progress_interval: Duration,
    shutdown: CancellationToken,
    open_tx: Arc<watch::Sender<usize>>,
    /// Events sent to streams, for /metrics.
    delivered: Counter,
}

impl Watchers {
    /// `shutdown` ends every stream with UNAVAILABLE (SHUTTING_DOWN).
    pub fn new(db: Db, progress_interval: Duration, shutdown: CancellationToken) -> Self {
        let head = *db.head().borrow();
        Self {
            tail: Tail::new(db.clone(), head),
            db,
            progress_interval,
            shutdown,
            open_tx: Arc::new(watch::channel(0).0),
            delivered: Counter::default(),
        }
    }

    /// How many events have been sent to Watch streams (progress messages
    /// carry none).
    pub fn delivered_events(&self) -> Counter {
        self.delivered.clone()
    }

    /// How many streams are open, updated as they open and close.
    pub fn open_streams(&self) -> watch::Receiver<usize> {
        self.open_tx.subscribe()
    }

    /// Validates the cursor against the kept history and starts a stream.
    pub async fn open(
        &self,
        after_seq: i64,
        filter: EventFilter,
    ) -> Result<ReceiverStream<Result<WatchResponse, Status>>, EventError> {
        let bounds = store::bounds(&mut self.db.read().await?.conn()).await?;
        if bounds.is_compacted(after_seq) {
            return Err(EventError::CursorCompacted {
                after_seq,
                oldest_seq: bounds.oldest_seq,
            });
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let stream = Stream {
            db: self.db.clone(),
            tail: self.tail.clone(),
            filter,
            cursor: after_seq,
            tx,
            shutdown: self.shutdown.clone(),
            progress_interval: self.progress_interval,
            delivered: self.delivered.clone(),
            _open: OpenGuard::new(self.open_tx.clone()),
            _feed: self.db.feed().subscribe(),
        };
        tokio::spawn(stream.run());
        Ok(ReceiverStream::new(rx))
    }
}

/// Counts a stream as open while it lives.
struct OpenGuard(Arc<watch::Sender<usize>>);

impl OpenGuard {
    fn new(open_tx: Arc<watch::Sender<usize>>) -> Self {
        open_tx.send_modify(|open| *open += 1);
        Self(open_tx)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open -= 1);
    }
}

/// Whether a stream goes on.
enum Flow {
    Continue,
    Stop,
}

struct Stream {
    db: Db,
    tail: Arc<Tail>,
    filter: EventFilter,
    /// Every matching event with seq <= cursor has been sent.
    cursor: i64,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
    shutdown: CancellationToken,
    progress_interval: Duration,
    delivered: Counter,
    _open: OpenGuard,
    /// Keeps the writer handing its commits to the tail.
    _feed: Subscription,
}

impl Stream {
    #[tracing::instrument(name = "events.watch.stream", skip_all, fields(after_seq = self.cursor))]
    async fn run(mut self) {
        let mut head_rx = self.db.head();
        let mut polled_head = 0;
        // The first poll at a random point of the period, so streams opened
        // together (a client reconnecting a thousand watches) poll apart.
        let first_poll = SAFETY_POLL.mul_f64(rand::rng().random_range(0.5..1.5));
        let mut safety = tokio::time::interval_at(Instant::now() + first_poll, SAFETY_POLL);
        let mut next_progress = Instant::now() + self.jittered_interval();
        loop {
            let head = (*head_rx.borrow_and_update()).max(polled_head);
            while self.cursor < head {
                match self.send_page(head).await {
                    Some(true) => next_progress = Instant::now() + self.jittered_interval(),
                    Some(false) => {}
                    None => return,
                }
            }
            tokio::select! {
                changed = head_rx.changed() => {
                    if changed.is_err() {
                        self.end_shutting_down().await;
                        return;
                    }
                }
                () = tokio::time::sleep_until(next_progress) => {
                    let progress = WatchResponse { events: Vec::new(), resume_seq: self.cursor, progress: true };
                    if let Flow::Stop = self.send(Ok(progress)).await {
                        return;
                    }
                    next_progress = Instant::now() + self.jittered_interval();
                }
                _ = safety.tick() => match self.read_bounds().await {
                    Ok(bounds) => polled_head = bounds.head_seq,
                    Err(err) => tracing::warn!(error = ?err, "watch: reading the head failed"),
                },
                () = self.tx.closed() => return,
                () = self.shutdown.cancelled() => {
                    self.end_shutting_down().await;
                    return;
                }
            }
        }
    }

    /// Reads and sends the next page up to `head` and advances the cursor;
    /// `Some(true)` if it sent events, `None` if the stream must end.
    async fn send_page(&mut self, head: i64) -> Option<bool> {
        let recent = self
            .tail
            .read(self.cursor, head, &self.filter, PAGE as usize)
            .await;
        let (page, next_cursor) = match recent {
            Ok(Some(recent)) => recent,
            Ok(None) => self.read_table(head).await?,
            Err(err) => {
                self.send(Err(to_status(EventError::from(err)))).await;
                return None;
            }
        };
        let sent_events = !page.is_empty();
        if sent_events {
            let count = page.len() as u64;
            let message = WatchResponse {
                events: page,
                resume_seq: next_cursor,
                progress: false,
            };
            if let Flow::Stop = self.send(Ok(message)).await {
                return None;
            }
            self.delivered.inc_by(count);
        }
        self.cursor = next_cursor;
        Some(sent_events)
    }

    /// The next page from the table (the stream is behind the tail),
    /// encoded, and the cursor after it; `None` if the stream must end.
    async fn read_table(&mut self, head: i64) -> Option<(Vec<bytes::Bytes>, i64)> {
        let page = match store::read_page(&self.db, self.cursor, head, &self.filter, PAGE).await {
            Ok(Ok(page)) => page,
            Ok(Err(bounds)) => {
                let err = EventError::CursorCompacted {
                    after_seq: self.cursor,
                    oldest_seq: bounds.oldest_seq,
                };
                self.send(Err(to_status(err))).await;
                return None;
            }
            Err(err) => {
                self.send(Err(to_status(EventError::from(err)))).await;
                return None;
            }
        };
        // A short page read everything up to the head.
        let next_cursor = match page.last() {
            Some(last) if page.len() == PAGE as usize => last.seq,
            _ => head,
        };
        Some((
            wire::encode_page(page.into_iter().map(convert::event_to_pb).collect()),
            next_cursor,
        ))
    }

    /// Queues a message, waiting for room unless the stream must end.
    async fn send(&self, message: Result<WatchResponse, Status>) -> Flow {
        tokio::select! {
            sent = self.tx.send(message) => if sent.is_ok() { Flow::Continue } else { Flow::Stop },
            () = self.shutdown.cancelled() => Flow::Stop,
        }
    }

    /// Ends the stream with a resumable error the client can act on.
    async fn end_shutting_down(&self) {
        let status = to_status(CommonError::ShuttingDown);
        // A client that is not reading gets the end of the stream instead.
        let _ = tokio::time::timeout(Duration::from_millis(100), self.tx.send(Err(status))).await;
    }

    /// The log's bounds, for the safety poll.
    async fn read_bounds(&self) -> Result<super::LogBounds, crate::storage::StoreError> {
        store::bounds(&mut self.db.read().await?.conn()).await
    }

    /// The progress interval +-20%, so streams opened together spread out.
    fn jittered_interval(&self) -> Duration {
        self.progress_interval
            .mul_f64(rand::rng().random_range(0.8..1.2))
    }
}
