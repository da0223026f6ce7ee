//! The Reconciler gRPC adapter: validate -> call the service -> convert.

use tonic::{Request, Response, Status};

use super::{Reconciler, ReconcilerError, RunTrigger, convert};
use crate::error::to_status;
use crate::pagination::{self, next_page_token};
use crate::pb;

pub struct ReconcilerApi {
    service: Reconciler,
}

impl ReconcilerApi {
    pub fn new(service: Reconciler) -> Self {
        Self { service }
    }
}

fn status(err: impl Into<ReconcilerError>) -> Status {
    to_status(err.into())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::reconciler_server::Reconciler for ReconcilerApi {
    #[tracing::instrument(name = "reconciler.run_once", skip_all)]
    async fn run_once(&self, request: Request<pb::RunOnceRequest>) -> Reply<pb::ReconcilerRun> {
        let side = convert::run_once_side(request.get_ref()).map_err(status)?;
        let run = self
            .service
            .run_once(RunTrigger::Manual, side)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::run_to_pb(run)))
    }

    #[tracing::instrument(name = "reconciler.get_status", skip_all)]
    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> Reply<pb::ReconcilerStatus> {
        let found = self.service.status().await.map_err(status)?;
        Ok(Response::new(convert::status_to_pb(found)))
    }

    #[tracing::instrument(name = "reconciler.list_reconciler_runs", skip_all)]
    async fn list_reconciler_runs(
        &self,
        request: Request<pb::ListReconcilerRunsRequest>,
    ) -> Reply<pb::ListReconcilerRunsResponse> {
        let request = request.into_inner();
        let filter = convert::run_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let page = pagination::page_request(request.page_size, &request.page_token, &fingerprint)
            .map_err(status)?;
        let (runs, next) = self
            .service
            .list_runs(&filter, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListReconcilerRunsResponse {
            runs: runs.into_iter().map(convert::run_to_pb).collect(),
            next_page_token: next
                .map(|id| next_page_token(id, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "reconciler.get_reconciler_settings", skip_all)]
    async fn get_reconciler_settings(
        &self,
        _: Request<pb::GetReconcilerSettingsRequest>,
    ) -> Reply<pb::ReconcilerSettings> {
        Ok(Response::new(convert::settings_to_pb(
            self.service.settings(),
        )))
    }

    #[tracing::instrument(name = "reconciler.update_reconciler_settings", skip_all)]
    async fn update_reconciler_settings(
        &self,
        request: Request<pb::UpdateReconcilerSettingsRequest>,
    ) -> Reply<pb::ReconcilerSettings> {
        let (gate, tracker) = convert::switches_update(request.into_inner()).map_err(status)?;
        let settings = self.service.update_switches(gate, tracker);
        Ok(Response::new(convert::settings_to_pb(settings)))
    }
}
