//! The shim's side of bosun's public gRPC API: the generated clients over
//! one lazily connected channel, the bearer token on every call, a metric
//! per call, and [`classify`], the one table of what an error answer means
//! for a delivery.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use super::metrics::ShimMetrics;
use crate::pb;
use crate::pb::sessions_client::SessionsClient;
use crate::pb::tasks_client::TasksClient;

/// How long connecting to bosun may take before the call is UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a readiness probe waits for bosun's health answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What an error answer means for the delivery that caused the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// bosun cannot answer now (down, draining, a transient storage fault,
    /// a timeout): the delivery fails with 503 and the sender retries.
    Unavailable(String),
    /// bosun refused the shim's token: a configuration fault, answered 503
    /// so the delivery is retried once it is fixed.
    Unauthorized(String),
    /// The request_id was used for a different request: an earlier attempt
    /// of this delivery already applied this step.
    AlreadyApplied,
    /// What the delivery names is not there, or its state forbids the call
    /// (no session on the branch, an unknown repo, a task not started):
    /// nothing to do, not an error the sender should retry.
    NotApplicable(String),
    /// bosun found the request invalid: answered 400.
    Rejected(String),
}

/// Maps a status to what it means for the delivery.
pub fn classify(status: &Status) -> CallError {
    let reason = status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_else(|| upper_snake(status.code()));
    match status.code() {
        Code::InvalidArgument if reason == "REQUEST_ID_REUSED" => CallError::AlreadyApplied,
        Code::InvalidArgument | Code::OutOfRange => {
            CallError::Rejected(format!("{reason}: {}", status.message()))
        }
        Code::NotFound | Code::FailedPrecondition | Code::AlreadyExists => {
            CallError::NotApplicable(reason)
        }
        Code::Unauthenticated | Code::PermissionDenied => CallError::Unauthorized(reason),
        _ => CallError::Unavailable(reason),
    }
}

/// A code as ErrorInfo reasons are spelled, e.g. DEADLINE_EXCEEDED.
fn upper_snake(code: Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How calls reach bosun: a channel over the network, or, inside `bosun
/// serve`, the server's own service stack (front door, limits and all),
/// called in-process. A transport failure is the status a client would
/// see for it (UNAVAILABLE when bosun cannot be reached).
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Status,
>;

type Authed = InterceptedService<Transport, Bearer>;

#[derive(Clone)]
pub struct Upstream {
    sessions: SessionsClient<Authed>,
    tasks: TasksClient<Authed>,
    health: HealthClient<Transport>,
    metrics: ShimMetrics,
}

impl Upstream {
    /// A client of bosun at `url` (e.g. `http://127.0.0.1:7070`); it
    /// connects on the first call and reconnects as needed. An `https://`
    /// URL is verified against the public roots and, if given, the PEM CA
    /// certificates in `ca_file`.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        token: Option<&str>,
        metrics: ShimMetrics,
    ) -> anyhow::Result<Self> {
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|err| anyhow::anyhow!("invalid upstream URL {url:?}: {err}"))?
            .connect_timeout(CONNECT_TIMEOUT);
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca_file) = ca_file {
                let pem = std::fs::read(ca_file).with_context(|| {
                    format!("cannot read the upstream CA {}", ca_file.display())
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            crate::server::install_ring_provider();
            endpoint = endpoint
                .tls_config(tls)
                .with_context(|| format!("cannot set up TLS for {url}"))?;
        }
        let channel = endpoint
            .connect_lazy()
            .map_err(|err| Status::from_error(Box::new(err)));
        Self::over(BoxCloneSyncService::new(channel), token, metrics)
    }

    /// A client calling `transport` (the server's own stack, in-process).
    pub fn over(
        transport: Transport,
        token: Option<&str>,
        metrics: ShimMetrics,
    ) -> anyhow::Result<Self> {
        let channel = transport;
        let bearer = match token.filter(|t| !t.is_empty()) {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| anyhow::anyhow!("the upstream token is not valid in a header"))?,
            ),
            None => None,
        };
        let bearer = Bearer(bearer);
        Ok(Self {
            sessions: SessionsClient::with_interceptor(channel.clone(), bearer.clone()),
            tasks: TasksClient::with_interceptor(channel.clone(), bearer),
            health: HealthClient::new(channel),
            metrics,
        })
    }

    async fn measured<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let result = call.await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.metrics.call(method, code, started.elapsed());
        result.map(tonic::Response::into_inner)
    }

    pub async fn report_pull_request(
        &self,
        request: pb::ReportPullRequestRequest,
    ) -> Result<pb::ReportPullRequestResponse, Status> {
        let mut client = self.sessions.clone();
        self.measured("ReportPullRequest", client.report_pull_request(request))
            .await
    }

    pub async fn list_projects(
        &self,
        request: pb::ListProjectsRequest,
    ) -> Result<pb::ListProjectsResponse, Status> {
        let mut client = self.sessions.clone();
        self.measured("ListProjects", client.list_projects(request))
            .await
    }

    pub async fn record_ci_status(
        &self,
        request: pb::RecordCiStatusRequest,
    ) -> Result<pb::RecordCiStatusResponse, Status> {
        let mut client = self.tasks.clone();
        self.measured("RecordCiStatus", client.record_ci_status(request))
            .await
    }

    pub async fn record_verdict(
        &self,
        request: pb::RecordVerdictRequest,
    ) -> Result<pb::RecordVerdictResponse, Status> {
        let mut client = self.tasks.clone();
        self.measured("RecordVerdict", client.record_verdict(request))
            .await
    }

    pub async fn start_task(
        &self,
        request: pb::StartTaskRequest,
    ) -> Result<pb::StartTaskResponse, Status> {
        let mut client = self.tasks.clone();
        self.measured("StartTask", client.start_task(request)).await
    }

    /// Every active project, all pages.
    pub async fn projects(&self) -> Result<Vec<pb::Project>, Status> {
        let mut projects = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list_projects(pb::ListProjectsRequest {
                    page_size: 1000,
                    page_token,
                    include_archived: false,
                })
                .await?;
            projects.extend(page.projects);
            if page.next_page_token.is_empty() {
                return Ok(projects);
            }
            page_token = page.next_page_token;
        }
    }

    /// Every session of `project_id`, all pages.
    pub async fn sessions_of(&self, project_id: &str) -> Result<Vec<pb::Session>, Status> {
        let mut sessions = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut client = self.sessions.clone();
            let request = pb::ListSessionsRequest {
                page_size: 1000,
                page_token,
                project_id: project_id.to_string(),
                ..Default::default()
            };
            let page = self
                .measured("ListSessions", client.list_sessions(request))
                .await?;
            sessions.extend(page.sessions);
            if page.next_page_token.is_empty() {
                return Ok(sessions);
            }
            page_token = page.next_page_token;
        }
    }

    /// `Ok` when bosun's health says SERVING, else why not.
    pub async fn ready(&self) -> Result<(), String> {
        let mut client = self.health.clone();
        let check = client.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(READY_TIMEOUT, check).await {
            Ok(Ok(answer)) if answer.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
            Ok(Ok(answer)) => Err(format!(
                "bosun is {:?}",
                ServingStatus::try_from(answer.get_ref().status).unwrap_or(ServingStatus::Unknown)
            )),
            Ok(Err(status)) => Err(format!("bosun is unreachable: {:?}", status.code())),
            Err(_) => Err(format!("bosun did not answer within {READY_TIMEOUT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    fn status(code: Code, reason: &str) -> Status {
        Status::with_error_details(
            code,
            "message",
            ErrorDetails::with_error_info(reason, "bosun", []),
        )
    }

    #[test]
    fn what_answers_mean() {
        let cases = [
            (
                status(Code::InvalidArgument, "REQUEST_ID_REUSED"),
                CallError::AlreadyApplied,
            ),
            (
                status(Code::InvalidArgument, "INVALID_ARGUMENT"),
                CallError::Rejected("INVALID_ARGUMENT: message".into()),
            ),
            (
                status(Code::NotFound, "SESSION_NOT_FOUND"),
                CallError::NotApplicable("SESSION_NOT_FOUND".into()),
            ),
            (
                status(Code::FailedPrecondition, "REPO_AMBIGUOUS"),
                CallError::NotApplicable("REPO_AMBIGUOUS".into()),
            ),
            (
                status(Code::AlreadyExists, "BRANCH_IN_USE"),
                CallError::NotApplicable("BRANCH_IN_USE".into()),
            ),
            (
                status(Code::PermissionDenied, "PERMISSION_DENIED"),
                CallError::Unauthorized("PERMISSION_DENIED".into()),
            ),
            (
                status(Code::Unavailable, "SHUTTING_DOWN"),
                CallError::Unavailable("SHUTTING_DOWN".into()),
            ),
            (
                Status::unavailable("connection refused"),
                CallError::Unavailable("UNAVAILABLE".into()),
            ),
            (
                Status::deadline_exceeded("slow"),
                CallError::Unavailable("DEADLINE_EXCEEDED".into()),
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(classify(&status), expected, "{status:?}");
        }
    }
}
