//! A fake Plane API served on loopback for the Reconciler's tracker side:
//! projects with their states and issues, faults to inject (an HTTP status,
//! a hang, a listing that waits to be released), and a record of every
//! request it answered; with the builders of Plane issues and bindings and a
//! server set up to poll it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bosun::pb;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::TestServer;

pub const PLANE_KEY: &str = "plane-key-0123456789";
pub const WORKSPACE: &str = "acme";
/// Plane project ids (UUIDs in Plane).
pub const PLANE_SHOP: &str = "5b1e6c2a-0000-4000-8000-000000000001";
pub const PLANE_DOWN: &str = "5b1e6c2a-0000-4000-8000-000000000002";
pub const PLANE_OTHER: &str = "5b1e6c2a-0000-4000-8000-000000000003";
/// Long past any tracker grace.
pub const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// State ids of `standard_states`.
pub const BACKLOG: &str = "st-backlog";
pub const IN_PROGRESS: &str = "st-in-progress";
pub const APPROVED: &str = "st-approved";
pub const REJECTED: &str = "st-rejected";
pub const DONE: &str = "st-done";

/// What a Plane project answers with.
#[derive(Clone, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every request of the project answers this HTTP status.
    Status(u16),
    /// Every request of the project never answers.
    Hang,
    /// The first page of the issue listing waits: `entered` is notified when
    /// it arrives, and it answers once `release` is notified. Once only.
    Block {
        entered: Arc<Notify>,
        release: Arc<Notify>,
    },
}

#[derive(Clone, Default)]
pub struct PlaneProject {
    pub identifier: String,
    pub states: Vec<Value>,
    pub issues: Vec<Value>,
    pub fault: Fault,
}

/// One request the fake answered (or refused).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneRequest {
    pub project: String,
    /// "project", "states" or "issues".
    pub listing: String,
    pub per_page: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Default)]
struct PlaneData {
    projects: HashMap<String, PlaneProject>,
    requests: Vec<PlaneRequest>,
    unauthorized: usize,
}

#[derive(Clone)]
pub struct FakePlane {
    url: String,
    data: Arc<Mutex<PlaneData>>,
}

impl FakePlane {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind plane");
        let plane = FakePlane {
            url: format!("http://{}", listener.local_addr().expect("plane addr")),
            data: Arc::default(),
        };
        let app = Router::new()
            .fallback(serve_plane)
            .with_state(plane.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        plane
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlaneData> {
        self.data.lock().unwrap()
    }

    /// Adds Plane project `id` ("SHOP"-like `identifier`) with the standard
    /// states and `issues`.
    pub fn add(&self, id: &str, identifier: &str, issues: Vec<Value>) {
        self.add_project(
            id,
            PlaneProject {
                identifier: identifier.into(),
                states: standard_states(),
                issues,
                fault: Fault::None,
            },
        );
    }

    pub fn add_project(&self, id: &str, project: PlaneProject) {
        self.lock().projects.insert(id.into(), project);
    }

    pub fn set_fault(&self, id: &str, fault: Fault) {
        self.lock()
            .projects
            .get_mut(id)
            .expect("plane project")
            .fault = fault;
    }

    /// Blocks the next issue listing of project `id`; returns (entered,
    /// release).
    pub fn block(&self, id: &str) -> (Arc<Notify>, Arc<Notify>) {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        self.set_fault(
            id,
            Fault::Block {
                entered: entered.clone(),
                release: release.clone(),
            },
        );
        (entered, release)
    }

    pub fn requests(&self) -> Vec<PlaneRequest> {
        self.lock().requests.clone()
    }

    /// The cursors of project `id`'s issue listings, in order.
    pub fn issue_cursors(&self, id: &str) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .filter(|r| r.project == id && r.listing == "issues")
            .map(|r| r.cursor)
            .collect()
    }

    pub fn unauthorized(&self) -> usize {
        self.lock().unauthorized
    }
}

async fn serve_plane(
    State(plane): State<FakePlane>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(PLANE_KEY) {
        plane.lock().unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "Invalid API key"})),
        )
            .into_response();
    }
    let Some(rest) = uri.path().strip_prefix("/api/v1/workspaces/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (workspace, project_id, listing) = match parts.as_slice() {
        [workspace, "projects", project, ""] => (*workspace, *project, "project"),
        [
            workspace,
            "projects",
            project,
            listing @ ("states" | "issues"),
            "",
        ] => (*workspace, *project, *listing),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if workspace != WORKSPACE {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (project, fault) = {
        let mut data = plane.lock();
        data.requests.push(PlaneRequest {
            project: project_id.into(),
            listing: listing.into(),
            per_page: query.get("per_page").cloned(),
            cursor: query.get("cursor").cloned(),
        });
        let Some(project) = data.projects.get_mut(project_id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let fault = project.fault.clone();
        if matches!(fault, Fault::Block { .. }) && listing == "issues" {
            project.fault = Fault::None;
        }
        (project.clone(), fault)
    };
    match fault {
        Fault::None => {}
        Fault::Status(code) => {
            return StatusCode::from_u16(code).expect("status").into_response();
        }
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Block { entered, release } => {
            if listing == "issues" {
                entered.notify_one();
                release.notified().await;
            }
        }
    }
    let body = match listing {
        "project" => json!({"id": project_id, "identifier": project.identifier, "name": "Shop"}),
        "states" => page(&project.states, &query),
        _ => page(&project.issues, &query),
    };
    axum::Json(body).into_response()
}

/// One page of a listing, as Plane pages them: cursor "<per_page>:<page>:0".
fn page(items: &[Value], query: &HashMap<String, String>) -> Value {
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let page: usize = query
        .get("cursor")
        .and_then(|c| c.split(':').nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let start = (page * per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    json!({
        "grouped_by": null,
        "next_cursor": format!("{per_page}:{}:0", page + 1),
        "prev_cursor": format!("{per_page}:{}:0", page.saturating_sub(1)),
        "next_page_results": end < items.len(),
        "prev_page_results": page > 0,
        "count": end - start,
        "total_pages": items.len().div_ceil(per_page),
        "total_results": items.len(),
        "results": items[start..end],
    })
}

pub fn state(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "color": "#60646C", "group": "started"})
}

pub fn standard_states() -> Vec<Value> {
    vec![
        state(BACKLOG, "Backlog"),
        state(IN_PROGRESS, "In Progress"),
        state(APPROVED, "Approved"),
        state(REJECTED, "Rejected"),
        state(DONE, "Done"),
    ]
}

pub fn issue(id: &str, sequence: i64, name: &str, state: &str, updated_at: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "sequence_id": sequence,
        "state": state,
        "priority": "none",
        "created_at": LONG_AGO,
        "updated_at": updated_at,
    })
}

/// RFC 3339 time `age` ago.
pub fn ago(age: Duration) -> String {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - age;
    chrono::DateTime::<chrono::Utc>::from_timestamp(at.as_secs() as i64, at.subsec_nanos())
        .expect("time")
        .to_rfc3339()
}

pub fn binding(plane_project: &str) -> pb::PlaneBinding {
    pb::PlaneBinding {
        workspace_slug: WORKSPACE.into(),
        plane_project_id: plane_project.into(),
        ..Default::default()
    }
}

/// A server polling `plane`, two issues per page.
pub async fn start_with_plane(
    plane: &FakePlane,
    tweak: impl FnOnce(&mut bosun::config::Config),
) -> TestServer {
    let url = plane.url.clone();
    TestServer::start_with(move |config| {
        config.reconciler.plane.base_url = url;
        config.reconciler.plane.api_key = PLANE_KEY.into();
        config.reconciler.plane.page_size = 2;
        tweak(config);
    })
    .await
}

/// Registers project `id` bound to Plane project `plane_project`.
pub async fn bound_project(server: &TestServer, id: &str, plane_project: &str) -> pb::Project {
    server
        .project(id, |p| p.plane = Some(binding(plane_project)))
        .await
}
