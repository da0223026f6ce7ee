//! A small client of Plane's REST API (v1): a project's identifier, its
//! states, and its issues with cursor pagination. Authenticated with the
//! `X-API-Key` header; every request has a timeout.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::PlaneConfig;
use crate::time::UnixMicros;

/// Most pages one listing reads: a runaway cursor must not loop forever.
const MAX_PAGES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("Plane did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Plane is unavailable: {0}")]
    Unavailable(String),
    #[error("Plane answered something unexpected: {0}")]
    Malformed(String),
}

impl PlaneError {
    /// The reason a pass records for the project.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "TRACKER_TIMEOUT",
            Self::Unavailable(_) => "TRACKER_UNAVAILABLE",
            Self::Malformed(_) => "TRACKER_MALFORMED",
        }
    }
}

/// One workflow state of a Plane project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
}

/// One issue, reduced to what the reconciler reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub id: String,
    pub name: String,
    pub sequence_id: Option<i64>,
    pub state_id: String,
    pub updated_at: UnixMicros,
}

#[derive(Clone)]
pub struct PlaneClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    timeout: Duration,
    page_size: u32,
}

impl PlaneClient {
    /// `None` when no Plane is configured.
    pub fn new(config: &PlaneConfig) -> Option<Self> {
        if config.base_url.is_empty() {
            return None;
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .ok()?;
        Some(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            timeout: config.timeout,
            page_size: config.page_size.clamp(1, 1000),
        })
    }

    fn project_url(&self, workspace: &str, project: &str, tail: &str) -> String {
        format!(
            "{}/api/v1/workspaces/{workspace}/projects/{project}/{tail}",
            self.base_url
        )
    }

    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, PlaneError> {
        let response = self
            .http
            .get(url)
            .header("X-API-Key", &self.api_key)
            .query(query)
            .send()
            .await
            .map_err(|err| self.transport(err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(PlaneError::Unavailable(format!("HTTP {status} from {url}")));
        }
        response.json().await.map_err(|err| {
            if err.is_timeout() {
                PlaneError::Timeout(self.timeout)
            } else {
                PlaneError::Malformed(format!("{url}: {err}"))
            }
        })
    }

    fn transport(&self, err: reqwest::Error) -> PlaneError {
        if err.is_timeout() {
            PlaneError::Timeout(self.timeout)
        } else {
            // Without the source chain: it may name hosts and paths only.
            PlaneError::Unavailable(err.without_url().to_string().chars().take(200).collect())
        }
    }

    /// The project's identifier, e.g. "ORCH" (work items are "ORCH-98").
    pub async fn identifier(&self, workspace: &str, project: &str) -> Result<String, PlaneError> {
        let body = self
            .get(&self.project_url(workspace, project, ""), &[])
            .await?;
        body.get("identifier")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PlaneError::Malformed("project without an identifier".into()))
    }

    /// The project's workflow states.
    pub async fn states(&self, workspace: &str, project: &str) -> Result<Vec<State>, PlaneError> {
        let url = self.project_url(workspace, project, "states/");
        let mut states = Vec::new();
        self.paginate(&url, |item| {
            let state: State = serde_json::from_value(item)
                .map_err(|err| PlaneError::Malformed(format!("state: {err}")))?;
            states.push(state);
            Ok(())
        })
        .await?;
        Ok(states)
    }

    /// The project's issues whose state is one of `state_ids`, every page.
    pub async fn issues(
        &self,
        workspace: &str,
        project: &str,
        state_ids: &[&str],
    ) -> Result<Vec<Issue>, PlaneError> {
        let url = self.project_url(workspace, project, "issues/");
        let mut issues = Vec::new();
        self.paginate(&url, |item| {
            let issue = issue(&item)?;
            if state_ids.contains(&issue.state_id.as_str()) {
                issues.push(issue);
            }
            Ok(())
        })
        .await?;
        Ok(issues)
    }

    /// Reads every page of a listing: `{"results": [...], "next_cursor",
    /// "next_page_results"}` (a bare array is one page).
    async fn paginate(
        &self,
        url: &str,
        mut each: impl FnMut(Value) -> Result<(), PlaneError>,
    ) -> Result<(), PlaneError> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("per_page", self.page_size.to_string())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let body = self.get(url, &query).await?;
            let (items, next) = match body {
                Value::Array(items) => (items, None),
                Value::Object(mut page) => {
                    let items = match page.remove("results") {
                        Some(Value::Array(items)) => items,
                        _ => return Err(PlaneError::Malformed(format!("{url}: no results"))),
                    };
                    let more = page
                        .get("next_page_results")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let next = page
                        .get("next_cursor")
                        .and_then(Value::as_str)
                        .filter(|c| more && !c.is_empty())
                        .map(str::to_string);
                    (items, next)
                }
                _ => return Err(PlaneError::Malformed(format!("{url}: not a listing"))),
            };
            for item in items {
                each(item)?;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
        Err(PlaneError::Malformed(format!(
            "{url}: more than {MAX_PAGES} pages"
        )))
    }
}

/// An issue from Plane's JSON; its state is an id or an expanded object.
fn issue(item: &Value) -> Result<Issue, PlaneError> {
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
    let id = text("id").ok_or_else(|| PlaneError::Malformed("issue without an id".into()))?;
    let state_id = match item.get("state") {
        Some(Value::String(state)) => state.clone(),
        Some(Value::Object(state)) => state
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let updated_at = text("updated_at")
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| UnixMicros(at.timestamp_micros()))
        .ok_or_else(|| PlaneError::Malformed(format!("issue {id}: no valid updated_at")))?;
    Ok(Issue {
        name: text("name").unwrap_or_default(),
        sequence_id: item.get("sequence_id").and_then(Value::as_i64),
        id,
        state_id,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issues_parse_with_either_state_shape() {
        let rows = [
            json!({"id": "a", "name": "A", "sequence_id": 7, "state": "s1",
                   "updated_at": "2026-01-01T00:00:00Z"}),
            json!({"id": "a", "name": "A", "sequence_id": 7, "state": {"id": "s1", "name": "Approved"},
                   "updated_at": "2026-01-01T00:00:00.000000+00:00"}),
        ];
        for row in rows {
            let issue = issue(&row).unwrap();
            assert_eq!(issue.state_id, "s1");
            assert_eq!(issue.sequence_id, Some(7));
            assert_eq!(issue.updated_at, UnixMicros(1_767_225_600_000_000));
        }
    }

    #[test]
    fn an_issue_without_id_or_time_is_malformed() {
        for row in [
            json!({"name": "A", "state": "s1", "updated_at": "2026-01-01T00:00:00Z"}),
            json!({"id": "a", "state": "s1"}),
            json!({"id": "a", "state": "s1", "updated_at": "yesterday"}),
        ] {
            assert!(
                matches!(issue(&row), Err(PlaneError::Malformed(_))),
                "{row}"
            );
        }
    }
}
