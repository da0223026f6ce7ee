//! The Lessons gRPC adapter: validate -> call the journal -> convert.

use tonic::{Request, Response, Status};

use super::{Journal, LessonError, convert};
use crate::error::to_status;
use crate::pagination::{self, next_page_token};
use crate::pb;

pub struct LessonsApi {
    journal: Journal,
}

impl LessonsApi {
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

fn status(err: impl Into<LessonError>) -> Status {
    to_status(err.into())
}

#[tonic::async_trait]
impl pb::lessons_server::Lessons for LessonsApi {
    #[tracing::instrument(name = "lessons.record", skip_all)]
    async fn record_lesson(
        &self,
        request: Request<pb::RecordLessonRequest>,
    ) -> Result<Response<pb::RecordLessonResponse>, Status> {
        let (request_id, new) = convert::record_request(request.into_inner()).map_err(status)?;
        let recorded = self.journal.record(new, request_id).await.map_err(status)?;
        Ok(Response::new(convert::record_response(recorded)))
    }

    #[tracing::instrument(name = "lessons.get", skip_all)]
    async fn get_lesson(
        &self,
        request: Request<pb::GetLessonRequest>,
    ) -> Result<Response<pb::Lesson>, Status> {
        let id = convert::lesson_id(request.into_inner().id).map_err(status)?;
        let lesson = self.journal.get(id).await.map_err(status)?;
        Ok(Response::new(convert::lesson_to_pb(lesson)))
    }

    #[tracing::instrument(name = "lessons.list", skip_all)]
    async fn list_lessons(
        &self,
        request: Request<pb::ListLessonsRequest>,
    ) -> Result<Response<pb::ListLessonsResponse>, Status> {
        let request = request.into_inner();
        let filter = convert::filter(&request).map_err(status)?;
        let fingerprint = pagination::fingerprint(&filter);
        let page = pagination::page_request(request.page_size, &request.page_token, &fingerprint)
            .map_err(status)?;
        let Some(page) = self.journal.list(&filter, page).await.map_err(status)? else {
            return Ok(Response::new(pb::ListLessonsResponse::default()));
        };
        Ok(Response::new(pb::ListLessonsResponse {
            lessons: page
                .lessons
                .into_iter()
                .map(convert::lesson_to_pb)
                .collect(),
            next_page_token: page
                .next_after
                .map(|after| next_page_token(after, &fingerprint))
                .unwrap_or_default(),
            enabled: true,
        }))
    }

    #[tracing::instrument(name = "lessons.update", skip_all)]
    async fn update_lesson(
        &self,
        request: Request<pb::UpdateLessonRequest>,
    ) -> Result<Response<pb::Lesson>, Status> {
        let (id, patch) = convert::patch(request.into_inner()).map_err(status)?;
        let lesson = self.journal.update(id, patch).await.map_err(status)?;
        Ok(Response::new(convert::lesson_to_pb(lesson)))
    }

    #[tracing::instrument(name = "lessons.stats", skip_all)]
    async fn get_lesson_stats(
        &self,
        _request: Request<pb::GetLessonStatsRequest>,
    ) -> Result<Response<pb::LessonStats>, Status> {
        let stats = self.journal.stats().await.map_err(status)?;
        Ok(Response::new(convert::stats_to_pb(stats)))
    }

    #[tracing::instrument(name = "lessons.get_settings", skip_all)]
    async fn get_lesson_settings(
        &self,
        _request: Request<pb::GetLessonSettingsRequest>,
    ) -> Result<Response<pb::LessonSettings>, Status> {
        Ok(Response::new(convert::settings_to_pb(
            self.journal.settings(),
        )))
    }

    #[tracing::instrument(name = "lessons.update_settings", skip_all)]
    async fn update_lesson_settings(
        &self,
        request: Request<pb::UpdateLessonSettingsRequest>,
    ) -> Result<Response<pb::LessonSettings>, Status> {
        let change = convert::settings_update(request.into_inner()).map_err(status)?;
        let settings = self.journal.update_settings(change);
        Ok(Response::new(convert::settings_to_pb(settings)))
    }
}
