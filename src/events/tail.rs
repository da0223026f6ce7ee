//! The tail of the change log, shared by every live Watch stream. The
//! writer of this process hands over the rows it committed
//! ([`crate::storage::feed`]) before it publishes the new head; the first
//! stream to need them converts them to proto once, and every stream takes
//! them from memory. Rows this process did not write (another PostgreSQL
//! replica's) or that the feed dropped are read from the table once, by the
//! first stream that needs them. So a commit costs no read at all, or one
//! however many streams follow. Streams further behind than the tail holds
//! read the table themselves.
//!
//! The tail holds the newest [`CAPACITY`] events, far fewer than compaction
//! always keeps, so nothing it serves can have been compacted away.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::Mutex;

use super::wire::EncodedEvent;
use super::{EventFilter, KEEP_NEWEST, StoredEvent, convert, store};
use crate::storage::feed::ChangeRow;
use crate::storage::{Db, StoreError};

/// Events kept in memory.
const CAPACITY: usize = 2048;
/// Events read per statement while filling the tail.
const FILL_PAGE: u32 = 512;

const _: () = assert!((CAPACITY as i64) < KEEP_NEWEST);

pub struct Tail {
    db: Db,
    recent: RwLock<Recent>,
    /// One reader of the table at a time; the others wait, then share.
    filling: Mutex<()>,
}

/// Events with contiguous seqs ending at `head`.
struct Recent {
    events: VecDeque<EncodedEvent>,
    head: i64,
}

impl Recent {
    /// The seq of the oldest event held (head + 1 when empty).
    fn first_seq(&self) -> i64 {
        self.head + 1 - self.events.len() as i64
    }
}

impl Tail {
    /// A tail that starts (empty) at `head`.
    pub fn new(db: Db, head: i64) -> Arc<Self> {
        Arc::new(Self {
            db,
            recent: RwLock::new(Recent {
                events: VecDeque::with_capacity(CAPACITY),
                head,
            }),
            filling: Mutex::new(()),
        })
    }

    /// Up to `limit` events matching `filter` with seq in (`after`, `up_to`],
    /// encoded, and the seq the reader has then seen everything up to; `None` if the
    /// tail does not hold all of (`after`, `up_to`] (the caller reads the
    /// table).
    pub async fn read(
        &self,
        after: i64,
        up_to: i64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Option<(Vec<Bytes>, i64)>, StoreError> {
        if self.head() < up_to {
            self.fill(up_to).await?;
        }
        let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
        if after + 1 < recent.first_seq() || recent.head < up_to {
            return Ok(None);
        }
        let skip = (after + 1 - recent.first_seq()) as usize;
        let mut events = Vec::new();
        let mut seen = up_to;
        for event in recent.events.iter().skip(skip) {
            if event.seq > up_to {
                break;
            }
            if matches(filter, event) {
                if events.len() == limit {
                    seen = event.seq - 1;
                    break;
                }
                events.push(event.bytes.clone());
            }
        }
        Ok(Some((events, seen)))
    }

    fn head(&self) -> i64 {
        self.recent.read().unwrap_or_else(|e| e.into_inner()).head
    }

    /// Brings the tail up to `up_to`: first from what the writer handed
    /// over, then, for what is still missing, from the table.
    async fn fill(&self, up_to: i64) -> Result<(), StoreError> {
        let _filling = self.filling.lock().await;
        for batch in self.db.feed().drain() {
            self.absorb(batch).await?;
        }
        self.read_table(up_to).await
    }

    /// Appends a batch of committed rows (contiguous seqs), after reading
    /// from the table whatever lies between the tail's head and the batch.
    async fn absorb(&self, batch: Vec<ChangeRow>) -> Result<(), StoreError> {
        let Some(first) = batch.first().map(|row| row.seq) else {
            return Ok(());
        };
        if first > self.head() + 1 {
            self.read_table(first - 1).await?;
        }
        let head = self.head();
        let converted = batch
            .into_iter()
            .filter(|row| row.seq > head)
            .map(|row| EncodedEvent::new(convert::event_to_pb(StoredEvent::from(row))));
        self.append(head, converted.collect());
        Ok(())
    }

    /// Reads the committed events after the tail's head, up to `up_to`.
    async fn read_table(&self, up_to: i64) -> Result<(), StoreError> {
        let everything = EventFilter::default();
        loop {
            let head = self.head();
            if head >= up_to {
                return Ok(());
            }
            // Only the newest CAPACITY events are worth reading.
            let from = head.max(up_to - CAPACITY as i64);
            let mut reader = self.db.read().await?;
            let page = store::list(&mut reader.conn(), from, up_to, &everything, FILL_PAGE).await?;
            drop(reader);
            if page.is_empty() {
                // Nothing readable: streams read the table themselves.
                return Ok(());
            }
            let converted = page
                .into_iter()
                .map(|event| EncodedEvent::new(convert::event_to_pb(event)))
                .collect();
            self.append(head, converted);
        }
    }

    /// Appends events with contiguous seqs; if they do not follow `head`
    /// (the tail's head when they were read), the tail restarts from them.
    fn append(&self, head: i64, events: Vec<EncodedEvent>) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let (contiguous, last) = (first.seq == head + 1, last.seq);
        let mut recent = self.recent.write().unwrap_or_else(|e| e.into_inner());
        if !contiguous {
            recent.events.clear();
        }
        recent.events.extend(events);
        recent.head = last;
        let excess = recent.events.len().saturating_sub(CAPACITY);
        recent.events.drain(..excess);
    }
}

/// Whether `event` passes `filter`: the same rule as the SQL in
/// [`store::list`] (ids are never empty, so an empty proto field is unset).
fn matches(filter: &EventFilter, event: &EncodedEvent) -> bool {
    (filter.event_type_prefixes.is_empty()
        || filter
            .event_type_prefixes
            .iter()
            .any(|prefix| event.event_type.starts_with(prefix.as_str())))
        && filter
            .project_id
            .as_ref()
            .is_none_or(|id| *id == event.project_id)
        && filter
            .session_id
            .as_ref()
            .is_none_or(|id| *id == event.session_id)
        && filter.task_id.is_none_or(|id| id == event.task_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn event(event_type: &str, project: &str, session: &str, task: i64) -> EncodedEvent {
        EncodedEvent::new(pb::Event {
            seq: 1,
            event_type: event_type.into(),
            project_id: project.into(),
            session_id: session.into(),
            task_id: task,
            ..Default::default()
        })
    }

    #[test]
    fn filters_match_as_the_sql_does() {
        let filter =
            |prefixes: &[&str], project: Option<&str>, session: Option<&str>, task| EventFilter {
                event_type_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
                project_id: project.map(str::to_string),
                session_id: session.map(str::to_string),
                task_id: task,
            };
        let session_event = event("session.updated", "mer", "mer-1", 0);
        let task_event = event("task.stage_changed", "mer", "", 7);
        let cases = [
            (filter(&[], None, None, None), &session_event, true),
            (
                filter(&["session."], None, None, None),
                &session_event,
                true,
            ),
            (filter(&["sess"], None, None, None), &session_event, true),
            (
                filter(&["task.", "lesson."], None, None, None),
                &session_event,
                false,
            ),
            (filter(&[], Some("mer"), None, None), &session_event, true),
            (
                filter(&[], Some("other"), None, None),
                &session_event,
                false,
            ),
            (filter(&[], None, Some("mer-1"), None), &session_event, true),
            (filter(&[], None, Some("mer-1"), None), &task_event, false),
            (filter(&[], None, None, Some(7)), &task_event, true),
            (filter(&[], None, None, Some(7)), &session_event, false),
            (
                filter(&["task."], Some("mer"), None, Some(7)),
                &task_event,
                true,
            ),
        ];
        for (filter, event, expected) in cases {
            assert_eq!(matches(&filter, event), expected, "{filter:?} on {event:?}");
        }
    }
}
