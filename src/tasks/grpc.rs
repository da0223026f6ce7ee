//! The Tasks gRPC adapter: validate -> call the service -> convert.

use tonic::{Request, Response, Status};

use super::{TaskError, TaskOrder, TasksService, convert};
use crate::error::to_status;
use crate::pagination::{self, next_page_token};
use crate::pb;

pub struct TasksApi {
    service: TasksService,
}

impl TasksApi {
    pub fn new(service: TasksService) -> Self {
        Self { service }
    }
}

fn status(err: impl Into<TaskError>) -> Status {
    to_status(err.into())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::tasks_server::Tasks for TasksApi {
    #[tracing::instrument(name = "tasks.start_task", skip_all)]
    async fn start_task(
        &self,
        request: Request<pb::StartTaskRequest>,
    ) -> Reply<pb::StartTaskResponse> {
        let (request_id, new) = convert::new_task(request.into_inner()).map_err(status)?;
        let started = self.service.start(new, request_id).await.map_err(status)?;
        Ok(Response::new(pb::StartTaskResponse {
            created: started.created,
            task: Some(convert::task_to_pb(started.task)),
            session_id: started.session_id,
        }))
    }

    #[tracing::instrument(name = "tasks.get_task", skip_all)]
    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Reply<pb::Task> {
        let id = convert::task_id("id", request.into_inner().id).map_err(status)?;
        let task = self.service.get(id).await.map_err(status)?;
        Ok(Response::new(convert::task_to_pb(task)))
    }

    #[tracing::instrument(name = "tasks.list_tasks", skip_all)]
    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Reply<pb::ListTasksResponse> {
        let request = request.into_inner();
        let filter = convert::task_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let page = pagination::ordered_page_request(
            request.page_size,
            &request.page_token,
            &fingerprint,
            filter.order == TaskOrder::UpdateTime,
        )
        .map_err(status)?;
        let (tasks, next) = self.service.list(&filter, page).await.map_err(status)?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks: tasks.into_iter().map(convert::task_to_pb).collect(),
            next_page_token: next
                .map(|cursor| next_page_token(cursor, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "tasks.get_task_facts", skip_all)]
    async fn get_task_facts(
        &self,
        request: Request<pb::GetTaskFactsRequest>,
    ) -> Reply<pb::TaskFacts> {
        let id = convert::task_id("task_id", request.into_inner().task_id).map_err(status)?;
        let found = self.service.facts(id).await.map_err(status)?;
        let facts = found.facts;
        Ok(Response::new(pb::TaskFacts {
            task_id: found.task.id,
            head_sha: found.task.head_sha.unwrap_or_default(),
            ci_statuses: facts
                .ci_statuses
                .into_iter()
                .map(convert::ci_status_to_pb)
                .collect(),
            verdicts: facts
                .verdicts
                .into_iter()
                .map(convert::verdict_to_pb)
                .collect(),
            test_reports: facts
                .test_reports
                .into_iter()
                .map(convert::test_report_to_pb)
                .collect(),
            deploy_statuses: facts
                .deploy_statuses
                .into_iter()
                .map(convert::deploy_status_to_pb)
                .collect(),
            deploy_freeze: facts.deploy_freeze.map(convert::deploy_freeze_to_pb),
            current_gate: found.current_gate.map(convert::gate_to_pb),
        }))
    }

    #[tracing::instrument(name = "tasks.record_ci_status", skip_all)]
    async fn record_ci_status(
        &self,
        request: Request<pb::RecordCiStatusRequest>,
    ) -> Reply<pb::RecordCiStatusResponse> {
        let (request_id, new) = convert::new_ci_status(request.into_inner()).map_err(status)?;
        let recorded = self
            .service
            .record_ci_status(new, request_id)
            .await
            .map_err(status)?;
        let (resolution, task_id, candidate_task_ids) =
            convert::resolution_to_pb(recorded.resolution);
        Ok(Response::new(pb::RecordCiStatusResponse {
            status: Some(convert::ci_status_to_pb(recorded.status)),
            resolution: resolution as i32,
            task_id,
            candidate_task_ids,
            advance: recorded.advance.map(convert::advance_to_pb),
        }))
    }

    #[tracing::instrument(name = "tasks.record_verdict", skip_all)]
    async fn record_verdict(
        &self,
        request: Request<pb::RecordVerdictRequest>,
    ) -> Reply<pb::RecordVerdictResponse> {
        let (request_id, new) = convert::new_verdict(request.into_inner()).map_err(status)?;
        let recorded = self
            .service
            .record_verdict(new, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RecordVerdictResponse {
            verdict: Some(convert::verdict_to_pb(recorded.fact)),
            task: Some(convert::task_to_pb(recorded.task)),
            advance: recorded.advance.map(convert::advance_to_pb),
        }))
    }

    #[tracing::instrument(name = "tasks.record_test_report", skip_all)]
    async fn record_test_report(
        &self,
        request: Request<pb::RecordTestReportRequest>,
    ) -> Reply<pb::RecordTestReportResponse> {
        let (request_id, new) = convert::new_test_report(request.into_inner()).map_err(status)?;
        let recorded = self
            .service
            .record_test_report(new, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RecordTestReportResponse {
            report: Some(convert::test_report_to_pb(recorded.fact)),
            task: Some(convert::task_to_pb(recorded.task)),
            advance: recorded.advance.map(convert::advance_to_pb),
        }))
    }

    #[tracing::instrument(name = "tasks.record_deploy_status", skip_all)]
    async fn record_deploy_status(
        &self,
        request: Request<pb::RecordDeployStatusRequest>,
    ) -> Reply<pb::RecordDeployStatusResponse> {
        let (request_id, task_id, health, detail) =
            convert::new_deploy_status(request.into_inner()).map_err(status)?;
        let recorded = self
            .service
            .record_deploy_status(task_id, health, detail, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RecordDeployStatusResponse {
            status: Some(convert::deploy_status_to_pb(recorded.recorded.fact)),
            task: Some(convert::task_to_pb(recorded.recorded.task)),
            deploy_freeze: recorded.freeze.map(convert::deploy_freeze_to_pb),
            advance: recorded.recorded.advance.map(convert::advance_to_pb),
        }))
    }

    #[tracing::instrument(name = "tasks.advance_task", skip_all)]
    async fn advance_task(
        &self,
        request: Request<pb::AdvanceTaskRequest>,
    ) -> Reply<pb::AdvanceResult> {
        let (request_id, report) = convert::stage_report(request.into_inner()).map_err(status)?;
        let result = self
            .service
            .advance(report, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::advance_to_pb(result)))
    }

    #[tracing::instrument(name = "tasks.release_task", skip_all)]
    async fn release_task(
        &self,
        request: Request<pb::ReleaseTaskRequest>,
    ) -> Reply<pb::ReleaseTaskResponse> {
        let (request_id, task_id, action, note) =
            convert::release(request.into_inner()).map_err(status)?;
        let released = self
            .service
            .release(task_id, action, note, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleaseTaskResponse {
            task: Some(convert::task_to_pb(released.task)),
            session_id: released.session_id.unwrap_or_default(),
            advance: released.advance.map(convert::advance_to_pb),
        }))
    }
}
