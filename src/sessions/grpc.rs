//! The Sessions gRPC adapter: validate -> call the service -> convert.

use tonic::{Request, Response, Status};

use super::{
    ReportOutcome, SessionError, SessionOrder, SessionsService, convert, convert_answers,
    convert_projects, convert_reads,
};
use crate::error::{Violations, to_status};
use crate::pagination::{self, next_page_token};
use crate::pb;

pub struct SessionsApi {
    service: SessionsService,
}

impl SessionsApi {
    pub fn new(service: SessionsService) -> Self {
        Self { service }
    }
}

fn status(err: impl Into<SessionError>) -> Status {
    to_status(err.into())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::sessions_server::Sessions for SessionsApi {
    #[tracing::instrument(name = "sessions.register_project", skip_all)]
    async fn register_project(
        &self,
        request: Request<pb::RegisterProjectRequest>,
    ) -> Reply<pb::Project> {
        let (request_id, new) =
            convert_projects::new_project(request.into_inner()).map_err(status)?;
        let project = self
            .service
            .register_project(new, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_projects::project_to_pb(project)))
    }

    #[tracing::instrument(name = "sessions.get_project", skip_all)]
    async fn get_project(&self, request: Request<pb::GetProjectRequest>) -> Reply<pb::Project> {
        let mut v = Violations::new();
        let id = convert_projects::project_key(&mut v, request.into_inner().project_id);
        v.finish(()).map_err(status)?;
        let project = self.service.get_project(&id).await.map_err(status)?;
        Ok(Response::new(convert_projects::project_to_pb(project)))
    }

    #[tracing::instrument(name = "sessions.list_projects", skip_all)]
    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let request = request.into_inner();
        let fingerprint = pagination::fingerprint(&request.include_archived);
        let (size, after) =
            pagination::text_page_request(request.page_size, &request.page_token, &fingerprint)
                .map_err(status)?;
        let (projects, next) = self
            .service
            .list_projects(request.include_archived, after, size)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects
                .into_iter()
                .map(convert_projects::project_to_pb)
                .collect(),
            next_page_token: next
                .map(|id| next_page_token(id, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "sessions.update_project", skip_all)]
    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Reply<pb::Project> {
        let (id, patch) = convert_projects::project_patch(request.into_inner()).map_err(status)?;
        let project = self
            .service
            .update_project(id, patch)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_projects::project_to_pb(project)))
    }

    #[tracing::instrument(name = "sessions.archive_project", skip_all)]
    async fn archive_project(
        &self,
        request: Request<pb::ArchiveProjectRequest>,
    ) -> Reply<pb::Project> {
        let mut v = Violations::new();
        let id = convert_projects::project_key(&mut v, request.into_inner().project_id);
        v.finish(()).map_err(status)?;
        let project = self.service.archive_project(id).await.map_err(status)?;
        Ok(Response::new(convert_projects::project_to_pb(project)))
    }

    #[tracing::instrument(name = "sessions.spawn", skip_all)]
    async fn spawn_session(&self, request: Request<pb::SpawnSessionRequest>) -> Reply<pb::Session> {
        let (request_id, new) = convert::new_session(request.into_inner()).map_err(status)?;
        let view = self.service.spawn(new, request_id).await.map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.complete_spawn", skip_all)]
    async fn complete_spawn(
        &self,
        request: Request<pb::CompleteSpawnRequest>,
    ) -> Reply<pb::Session> {
        let (request_id, id, launch) = convert::launch(request.into_inner()).map_err(status)?;
        let view = self
            .service
            .complete_spawn(id, launch, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.fail_spawn", skip_all)]
    async fn fail_spawn(&self, request: Request<pb::FailSpawnRequest>) -> Reply<pb::Session> {
        let (request_id, id, error) = convert::fail_spawn(request.into_inner()).map_err(status)?;
        let view = self
            .service
            .fail_spawn(id, error, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.finish", skip_all)]
    async fn finish_session(
        &self,
        request: Request<pb::FinishSessionRequest>,
    ) -> Reply<pb::Session> {
        let request = request.into_inner();
        let (request_id, id) =
            convert::session_call(request.request_id, request.session_id).map_err(status)?;
        let view = self.service.finish(id, request_id).await.map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.kill", skip_all)]
    async fn kill_session(
        &self,
        request: Request<pb::KillSessionRequest>,
    ) -> Reply<pb::KillSessionResponse> {
        let (request_id, id, reason, detail) =
            convert::kill(request.into_inner()).map_err(status)?;
        let (view, already_terminal) = self
            .service
            .kill(id, reason, detail, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::KillSessionResponse {
            session: Some(convert_answers::view_to_pb(view)),
            already_terminal,
        }))
    }

    #[tracing::instrument(name = "sessions.restore", skip_all)]
    async fn restore_session(
        &self,
        request: Request<pb::RestoreSessionRequest>,
    ) -> Reply<pb::Session> {
        let request = request.into_inner();
        let (request_id, id) =
            convert::session_call(request.request_id, request.session_id).map_err(status)?;
        let view = self.service.restore(id, request_id).await.map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.report_activity", skip_all)]
    async fn report_activity(
        &self,
        request: Request<pb::ReportActivityRequest>,
    ) -> Reply<pb::Session> {
        let (request_id, id, state, source) =
            convert::activity(request.into_inner()).map_err(status)?;
        let view = self
            .service
            .report_activity(id, state, source, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.report_probe", skip_all)]
    async fn report_runtime_probe(
        &self,
        request: Request<pb::ReportRuntimeProbeRequest>,
    ) -> Reply<pb::Session> {
        let (request_id, id, probe) = convert::probe(request.into_inner()).map_err(status)?;
        let view = self
            .service
            .report_probe(id, probe, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.report_pull_request", skip_all)]
    async fn report_pull_request(
        &self,
        request: Request<pb::ReportPullRequestRequest>,
    ) -> Reply<pb::ReportPullRequestResponse> {
        let (request_id, target, report) =
            convert::pull_request_report(request.into_inner()).map_err(status)?;
        let (view, outcome) = self
            .service
            .report_pull_request(target, report, request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReportPullRequestResponse {
            session: Some(convert_answers::view_to_pb(view)),
            dropped: outcome == ReportOutcome::Dropped,
            stale: outcome == ReportOutcome::Stale,
        }))
    }

    #[tracing::instrument(name = "sessions.get", skip_all)]
    async fn get_session(&self, request: Request<pb::GetSessionRequest>) -> Reply<pb::Session> {
        let (_, id) = convert::session_call(String::new(), request.into_inner().session_id)
            .map_err(status)?;
        let view = self.service.get_session(&id).await.map_err(status)?;
        Ok(Response::new(convert_answers::view_to_pb(view)))
    }

    #[tracing::instrument(name = "sessions.list", skip_all)]
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        let request = request.into_inner();
        let filter = convert_reads::session_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let by_activity = filter.query.order == SessionOrder::LastActivity;
        let page = pagination::ordered_page_request(
            request.page_size,
            &request.page_token,
            &fingerprint,
            by_activity,
        )
        .map_err(status)?;
        let (views, next) = self
            .service
            .list_sessions(&filter, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: views.into_iter().map(convert_answers::view_to_pb).collect(),
            next_page_token: next
                .map(|cursor| next_page_token(cursor, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "sessions.list_reactions", skip_all)]
    async fn list_reactions(
        &self,
        request: Request<pb::ListReactionsRequest>,
    ) -> Reply<pb::ListReactionsResponse> {
        let request = request.into_inner();
        let filter = convert_reads::reaction_filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let page = pagination::page_request(request.page_size, &request.page_token, &fingerprint)
            .map_err(status)?;
        let (reactions, next) = self
            .service
            .list_reactions(&filter, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListReactionsResponse {
            reactions: reactions
                .into_iter()
                .map(convert_answers::reaction_to_pb)
                .collect(),
            next_page_token: next
                .map(|cursor| next_page_token(cursor, &fingerprint))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(name = "sessions.list_attention", skip_all)]
    async fn list_attention(
        &self,
        request: Request<pb::ListAttentionRequest>,
    ) -> Reply<pb::ListAttentionResponse> {
        let project_id = convert_reads::attention_project(&request.into_inner()).map_err(status)?;
        let items = self
            .service
            .list_attention(project_id.as_deref())
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAttentionResponse {
            items: items
                .into_iter()
                .map(convert_reads::attention_item_to_pb)
                .collect(),
        }))
    }
}
