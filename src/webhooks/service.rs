//! The shim's work for one delivery, once its body is read: verify, dedup,
//! parse, call bosun, remember. See the module docs of [`super`], the
//! merge rules in [`super::translate`], and forge deliveries in
//! [`super::forge_service`].

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::config::Verification;
use super::locks::KeyedLocks;
use super::ordering;
use super::plane::{self, IssueEvent, Meaning};
use super::steps::Steps;
use super::translate::clip;
use super::upstream::Upstream;
use super::{
    DedupStore, ParseError, ShimMetrics, Source, WebhookError, WebhooksConfig, forge_json,
    signature,
};
use crate::pb;
use crate::reconciler::plane::PlaneClient;

/// How a delivery was answered when nothing went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its calls were made (200).
    Processed(String),
    /// Seen before: nothing done (200).
    Duplicate,
    /// Older than what was applied about the same entity: nothing done
    /// (200).
    Stale(String),
    /// Understood, but it concerns nothing bosun tracks (202).
    Ignored(String),
    /// An event kind bosun does not use (202).
    Unused,
}

impl Answer {
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Processed(_) => "processed",
            Self::Duplicate => "duplicate",
            Self::Stale(_) => "stale",
            Self::Ignored(_) => "ignored",
            Self::Unused => "unused",
        }
    }
}

/// One delivery's identity, from its headers.
pub struct Delivery {
    pub source: Source,
    /// The event kind, as the sender named it.
    pub event: String,
    /// The sender's delivery id (Plane: absent or new on every retry).
    pub id: Option<String>,
}

pub struct Shim {
    pub(super) config: WebhooksConfig,
    pub(super) store: DedupStore,
    pub(super) upstream: Upstream,
    pub(super) metrics: ShimMetrics,
    /// Plane's API, to learn a project's identifier (work items "ORCH-98").
    plane_api: Option<PlaneClient>,
    identifiers: Mutex<HashMap<String, String>>,
    pub(super) branches: KeyedLocks,
    pub(super) entities: KeyedLocks,
}

impl Shim {
    pub fn new(
        config: WebhooksConfig,
        store: DedupStore,
        upstream: Upstream,
        metrics: ShimMetrics,
        plane_api: Option<PlaneClient>,
    ) -> Self {
        Self {
            config,
            store,
            upstream,
            metrics,
            plane_api,
            identifiers: Mutex::new(HashMap::new()),
            branches: KeyedLocks::default(),
            entities: KeyedLocks::default(),
        }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Reads the delivery's identity from `headers` (never fails: a missing
    /// header is reported by [`Self::handle`] after the signature check).
    pub fn delivery(source: Source, headers: &HeaderMap) -> Delivery {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Delivery {
            source,
            event: header(source.event_header()).unwrap_or_default(),
            id: header(source.delivery_header()),
        }
    }

    /// Everything after the body was read.
    pub async fn handle(
        &self,
        delivery: &Delivery,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Answer, WebhookError> {
        let source = delivery.source;
        match self.config.verification(source) {
            Verification::Refuse => return Err(WebhookError::NotConfigured(source.as_str())),
            Verification::Secret(secret) => {
                let header = headers.get(source.signature_header()).map(|v| v.as_bytes());
                signature::verify(source, secret, header, body)?;
            }
            Verification::Unsigned => {}
        }
        if !is_token(&delivery.event) {
            return Err(WebhookError::BadHeader(source.event_header()));
        }
        let key = match source {
            Source::Plane => hex::encode(Sha256::digest(body)),
            _ => delivery
                .id
                .clone()
                .filter(|id| is_token(id))
                .ok_or(WebhookError::BadHeader(source.delivery_header()))?,
        };
        // Malformed JSON is refused whatever the event kind.
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_err(|err| ParseError::Json(err.to_string()))?;
        if self
            .store
            .seen(source, &key)
            .await
            .map_err(WebhookError::Store)?
        {
            return Ok(Answer::Duplicate);
        }
        let prefix = format!("{}:{}", source.request_prefix(), &key[..key.len().min(64)]);
        let answer = match source {
            Source::Plane => match plane::parse(&delivery.event, body)? {
                Some(event) => self.ordered_plane(&prefix, event).await?,
                None => return Ok(Answer::Unused),
            },
            _ => match forge_json::parse(source, &delivery.event, body)? {
                Some(event) => self.ordered_forge(source, &prefix, event).await?,
                None => return Ok(Answer::Unused),
            },
        };
        self.store
            .remember(source, &key)
            .await
            .map_err(WebhookError::Store)?;
        Ok(answer)
    }

    /// A Plane issue event in order: one older than the last state change
    /// applied about its issue is stale (Plane retries and sends in
    /// parallel). The issue's rank rises only when a change was applied: an
    /// ignored update (another field) must not hide an older state change.
    async fn ordered_plane(&self, prefix: &str, event: IssueEvent) -> Result<Answer, WebhookError> {
        let Some(position) = event.position.clone() else {
            return self.plane(prefix, event).await;
        };
        let _turn = self.entities.lock(position.entity.clone()).await;
        let applied = self
            .store
            .position(Source::Plane, &position.entity)
            .await
            .map_err(WebhookError::Store)?;
        if ordering::is_stale(applied, position.rank) {
            return Ok(Answer::Stale(format!(
                "older than what was applied about {}",
                position.entity
            )));
        }
        let answer = self.plane(prefix, event).await?;
        if matches!(answer, Answer::Processed(_)) {
            self.store
                .advance(Source::Plane, &position.entity, position.rank)
                .await
                .map_err(WebhookError::Store)?;
        }
        Ok(answer)
    }

    /// A Plane issue event: the project binding that names its Plane
    /// project decides what the state means.
    async fn plane(&self, prefix: &str, event: IssueEvent) -> Result<Answer, WebhookError> {
        let mut steps = Steps::default();
        let projects = steps
            .read("projects", self.upstream.projects().await)?
            .unwrap_or_default();
        let bound: Vec<&pb::Project> = projects
            .iter()
            .filter(|p| {
                p.plane
                    .as_ref()
                    .is_some_and(|b| b.plane_project_id == event.project_id)
            })
            .collect();
        let (project, binding) = match bound.as_slice() {
            [project] => (*project, project.plane.clone().unwrap_or_default()),
            [] => {
                let why = format!("no project binds Plane project {}", event.project_id);
                return Ok(Answer::Ignored(why));
            }
            several => {
                let ids: Vec<&str> = several.iter().map(|p| p.id.as_str()).collect();
                let why = format!(
                    "Plane project {} is bound by several projects: {}",
                    event.project_id,
                    ids.join(", ")
                );
                return Ok(Answer::Ignored(why));
            }
        };
        let meaning = match plane::meaning(&event, &binding) {
            Ok(meaning) => meaning,
            Err(no_action) => return Ok(Answer::Ignored(no_action.to_string())),
        };
        let decision = match meaning {
            Meaning::InProgress => {
                let identifier = self.identifier(&event, &binding).await?;
                let request = pb::StartTaskRequest {
                    request_id: format!("{prefix}:start"),
                    project_id: project.id.clone(),
                    tracker_issue_id: event.issue_id.clone(),
                    work_item_id: clip(&plane::work_item_id(&event, identifier.as_deref()), 256),
                    title: clip(&event.title, 256),
                    ..Default::default()
                };
                steps.call(&event.issue_id, self.upstream.start_task(request).await)?;
                return Ok(steps.answer());
            }
            Meaning::Approved => pb::VerdictDecision::Approved,
            Meaning::Rejected => pb::VerdictDecision::Rejected,
        };
        let state = event.state.name.as_deref().unwrap_or(&event.state.id);
        let request = pb::RecordVerdictRequest {
            request_id: format!("{prefix}:verdict"),
            task_ref: Some(pb::record_verdict_request::TaskRef::TrackerIssueId(
                event.issue_id.clone(),
            )),
            decision: decision as i32,
            source: pb::VerdictSource::Tracker as i32,
            author: clip(event.actor.as_deref().unwrap_or_default(), 256),
            comment: clip(&format!("Plane issue moved to {state}"), 1024),
        };
        steps.call(&event.issue_id, self.upstream.record_verdict(request).await)?;
        Ok(steps.answer())
    }

    /// The Plane project's identifier when the payload lacks it: from
    /// Plane's API (cached), or `None` when no Plane API is configured.
    async fn identifier(
        &self,
        event: &IssueEvent,
        binding: &pb::PlaneBinding,
    ) -> Result<Option<String>, WebhookError> {
        if !plane::needs_identifier(event) {
            return Ok(None);
        }
        let project = &binding.plane_project_id;
        if let Some(known) = self.cached_identifier(project) {
            return Ok(Some(known));
        }
        let Some(api) = &self.plane_api else {
            tracing::warn!(plane_project = %project, issue = %event.issue_id,
                "reconciler.plane is not configured: the work item id falls back to the Plane issue id");
            return Ok(None);
        };
        let identifier = api
            .identifier(&binding.workspace_slug, project)
            .await
            .map_err(|err| WebhookError::Tracker(err.to_string()))?;
        if let Ok(mut cache) = self.identifiers.lock() {
            cache.insert(project.clone(), identifier.clone());
        }
        Ok(Some(identifier))
    }

    fn cached_identifier(&self, project: &str) -> Option<String> {
        self.identifiers.lock().ok()?.get(project).cloned()
    }
}

/// A header value usable in a request_id: 1 to 64 printable ASCII
/// characters.
fn is_token(value: &str) -> bool {
    (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}
