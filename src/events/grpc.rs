//! The Events gRPC adapter.

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::wire::{self, WatchResponse};
use super::{EventError, Watchers, convert, store};
use crate::error::{Violations, to_status};
use crate::pagination::{self, next_page_token};
use crate::pb;
use crate::storage::Db;

pub struct EventsApi {
    db: Db,
    watchers: Watchers,
}

impl EventsApi {
    pub fn new(db: Db, watchers: Watchers) -> Self {
        Self { db, watchers }
    }
}

/// A negative seq is bad input.
fn after_seq(after_seq: i64) -> Result<i64, Violations> {
    if after_seq < 0 {
        Err(Violations::one("after_seq", "must not be negative"))
    } else {
        Ok(after_seq)
    }
}

fn status(err: impl Into<EventError>) -> Status {
    to_status(err.into())
}

/// Served by [`wire::EventsServer`]: Watch replies carry events encoded once.
#[tonic::async_trait]
impl wire::Events for EventsApi {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    #[tracing::instrument(name = "events.watch", skip_all)]
    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let after_seq = after_seq(request.after_seq).map_err(status)?;
        let filter = convert::filter(request.filter).map_err(status)?;
        let stream = self
            .watchers
            .open(after_seq, filter)
            .await
            .map_err(status)?;
        Ok(Response::new(stream))
    }

    #[tracing::instrument(name = "events.get_head", skip_all)]
    async fn get_head(
        &self,
        _request: Request<pb::GetHeadRequest>,
    ) -> Result<Response<pb::GetHeadResponse>, Status> {
        let mut reader = self.db.read().await.map_err(status)?;
        let bounds = store::bounds(&mut reader.conn()).await.map_err(status)?;
        Ok(Response::new(pb::GetHeadResponse {
            head_seq: bounds.head_seq,
            oldest_seq: bounds.oldest_seq,
        }))
    }

    #[tracing::instrument(name = "events.list", skip_all)]
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let request = request.into_inner();
        after_seq(request.after_seq).map_err(status)?;
        let filter = convert::filter(request.filter).map_err(status)?;
        let fingerprint = pagination::fingerprint(&(&filter, request.after_seq));
        let page = pagination::page_request(request.page_size, &request.page_token, &fingerprint)
            .map_err(status)?;
        let after_seq = page.after.unwrap_or(request.after_seq);
        let mut reader = self.db.read().await.map_err(status)?;
        let bounds = store::bounds(&mut reader.conn()).await.map_err(status)?;
        if bounds.is_compacted(after_seq) {
            return Err(status(EventError::CursorCompacted {
                after_seq,
                oldest_seq: bounds.oldest_seq,
            }));
        }
        let events = store::list(
            &mut reader.conn(),
            after_seq,
            bounds.head_seq,
            &filter,
            page.size,
        )
        .await
        .map_err(status)?;
        // A full page may have more behind it; a short one read up to the head.
        let next_page_token = match events.last() {
            Some(last) if events.len() == page.size as usize && last.seq < bounds.head_seq => {
                next_page_token(last.seq, &fingerprint)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(convert::event_to_pb).collect(),
            next_page_token,
            head_seq: bounds.head_seq,
        }))
    }
}
