//! The Events gRPC adapter.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{EventError, convert, store};
use crate::error::{CommonError, to_status};
use crate::pagination::{self, next_page_token};
use crate::pb;
use crate::storage::Db;

pub struct EventsApi {
    db: Db,
}

impl EventsApi {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn status(err: impl Into<EventError>) -> Status {
    to_status(err.into())
}

#[tonic::async_trait]
impl pb::events_server::Events for EventsApi {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    #[tracing::instrument(name = "events.watch", skip_all)]
    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(to_status(CommonError::NotImplemented {
            domain: "events.watch",
        }))
    }

    #[tracing::instrument(name = "events.get_head", skip_all)]
    async fn get_head(
        &self,
        _request: Request<pb::GetHeadRequest>,
    ) -> Result<Response<pb::GetHeadResponse>, Status> {
        let bounds = store::bounds(self.db.reader()).await.map_err(status)?;
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
        if request.after_seq < 0 {
            let violations = crate::error::Violations::one("after_seq", "must not be negative");
            return Err(status(violations));
        }
        let filter = convert::filter(request.filter).map_err(status)?;
        let fingerprint = pagination::fingerprint(&(&filter, request.after_seq));
        let page = pagination::page_request(request.page_size, &request.page_token, &fingerprint)
            .map_err(status)?;
        let after_seq = page.after.unwrap_or(request.after_seq);
        let bounds = store::bounds(self.db.reader()).await.map_err(status)?;
        if bounds.is_compacted(after_seq) {
            return Err(status(EventError::CursorCompacted {
                after_seq,
                oldest_seq: bounds.oldest_seq,
            }));
        }
        let events = store::list(
            self.db.reader(),
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
