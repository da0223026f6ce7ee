//! The Processors gRPC adapter: validate -> call the service -> convert.

use tonic::{Request, Response, Status};

use super::{ProcessorError, ProcessorsService, convert};
use crate::error::{Violations, to_status};
use crate::pagination::{self, next_page_token};
use crate::pb;

pub struct ProcessorsApi {
    service: ProcessorsService,
}

impl ProcessorsApi {
    pub fn new(service: ProcessorsService) -> Self {
        Self { service }
    }
}

fn status(err: impl Into<ProcessorError>) -> Status {
    to_status(err.into())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::processors_server::Processors for ProcessorsApi {
    #[tracing::instrument(name = "processors.list", skip_all)]
    async fn list_processors(
        &self,
        request: Request<pb::ListProcessorsRequest>,
    ) -> Reply<pb::ListProcessorsResponse> {
        let request = request.into_inner();
        let fingerprint = pagination::fingerprint(&());
        let (size, after) =
            pagination::text_page_request(request.page_size, &request.page_token, &fingerprint)
                .map_err(status)?;
        let (views, next) = self
            .service
            .list(after.as_deref(), size)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListProcessorsResponse {
            processors: views.into_iter().map(convert::view_to_pb).collect(),
            next_page_token: next
                .map(|name| next_page_token(name, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "processors.run", skip_all)]
    async fn run_processor(
        &self,
        request: Request<pb::RunProcessorRequest>,
    ) -> Reply<pb::ProcessorRun> {
        let mut v = Violations::new();
        let name = convert::processor_name(&mut v, "name", request.into_inner().name);
        v.finish(()).map_err(status)?;
        let run = self.service.run(&name).await.map_err(status)?;
        Ok(Response::new(convert::run_to_pb(run)))
    }

    #[tracing::instrument(name = "processors.list_state", skip_all)]
    async fn list_processor_state(
        &self,
        request: Request<pb::ListProcessorStateRequest>,
    ) -> Reply<pb::ListProcessorStateResponse> {
        let request = request.into_inner();
        let filter = convert::state_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let (size, after) =
            pagination::text_page_request(request.page_size, &request.page_token, &fingerprint)
                .map_err(status)?;
        let after = after
            .map(|text| convert::parse_state_cursor(&text))
            .transpose()
            .map_err(status)?;
        let (states, next) = self
            .service
            .states(&filter, after, size)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListProcessorStateResponse {
            states: states.into_iter().map(convert::state_to_pb).collect(),
            next_page_token: next
                .map(|cursor| next_page_token(convert::state_cursor(&cursor), &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "processors.reset_state", skip_all)]
    async fn reset_processor_state(
        &self,
        request: Request<pb::ResetProcessorStateRequest>,
    ) -> Reply<pb::ResetProcessorStateResponse> {
        let forget = convert::forget(request.into_inner()).map_err(status)?;
        let forgotten = self.service.reset(forget).await.map_err(status)?;
        Ok(Response::new(pb::ResetProcessorStateResponse {
            forgotten: i64::try_from(forgotten).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(name = "processors.get_usage", skip_all)]
    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Reply<pb::GetUsageResponse> {
        let request = request.into_inner();
        let filter = convert::usage_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let (size, after) =
            pagination::text_page_request(request.page_size, &request.page_token, &fingerprint)
                .map_err(status)?;
        let report = self
            .service
            .usage(&filter, after.as_deref(), size)
            .await
            .map_err(status)?;
        let next = report
            .next_after
            .as_ref()
            .map(|key| next_page_token(key, &fingerprint))
            .unwrap_or_default();
        Ok(Response::new(convert::report_to_pb(report, next)))
    }

    #[tracing::instrument(name = "processors.get_tool_errors", skip_all)]
    async fn get_tool_errors(
        &self,
        request: Request<pb::GetToolErrorsRequest>,
    ) -> Reply<pb::GetToolErrorsResponse> {
        let request = request.into_inner();
        let filter = convert::tool_error_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let (size, after) =
            pagination::text_page_request(request.page_size, &request.page_token, &fingerprint)
                .map_err(status)?;
        let report = self
            .service
            .tool_errors(&filter, after.as_deref(), size)
            .await
            .map_err(status)?;
        let next = report
            .next_after
            .as_ref()
            .map(|key| next_page_token(key, &fingerprint))
            .unwrap_or_default();
        Ok(Response::new(convert::tool_error_report_to_pb(
            report, next,
        )))
    }
}
