//! The JSON of CI results: GitHub's check runs and check suites, and the
//! commit statuses and workflow runs GitHub and Gitea both send.

use serde::Deserialize;

use super::ParseError;
use super::forge::{self, CiEvent, ForgeEvent, Repo};
use super::forge_json::{PullRequestJson, PullRequestRefJson, RepoJson, commit, nonempty, refs};
use super::ordering::{self, Position, status_rank};
use crate::repo_id::RepoId;

#[derive(Deserialize)]
struct OutputJson {
    title: Option<String>,
    summary: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct SuiteRefJson {
    head_branch: Option<String>,
}

/// The position of run `id` of `kind` on `repo` ranked `rank`.
fn position(repo: &Repo, kind: &str, id: Option<i64>, rank: Option<[i64; 3]>) -> Option<Position> {
    Some(Position {
        entity: format!("{}/{kind}/{}", RepoId::canonical(&repo.full_name), id?),
        rank: rank?,
    })
}

#[derive(Deserialize)]
struct CheckRunJson {
    id: Option<i64>,
    started_at: Option<String>,
    completed_at: Option<String>,
    name: String,
    head_sha: String,
    status: String,
    conclusion: Option<String>,
    html_url: Option<String>,
    details_url: Option<String>,
    output: Option<OutputJson>,
    check_suite: Option<SuiteRefJson>,
    #[serde(default)]
    pull_requests: Vec<PullRequestRefJson>,
}

#[derive(Deserialize)]
pub(super) struct CheckRunPayload {
    check_run: CheckRunJson,
    repository: RepoJson,
}

pub(super) fn check_run(payload: CheckRunPayload) -> Result<ForgeEvent, ParseError> {
    let run = payload.check_run;
    let repo = payload.repository.into_repo()?;
    let pull_requests = refs(&repo, run.pull_requests);
    let at = ordering::micros(run.completed_at.as_deref())
        .or_else(|| ordering::micros(run.started_at.as_deref()))
        .unwrap_or_default();
    let position = position(
        &repo,
        "check_run",
        run.id,
        Some([status_rank(&run.status), at, 0]),
    );
    let (check, ci) = forge::run_outcome(&run.status, run.conclusion.as_deref());
    let log = run
        .output
        .map(|o| {
            [o.title, o.summary, o.text]
                .into_iter()
                .flatten()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .unwrap_or_default();
    Ok(ForgeEvent::Ci(CiEvent {
        repo,
        name: nonempty(Some(run.name), "check_run.name")?,
        sha: commit(run.head_sha, "check_run.head_sha")?,
        check,
        ci,
        url: run.html_url.or(run.details_url).unwrap_or_default(),
        description: String::new(),
        log,
        branch: run.check_suite.and_then(|s| s.head_branch),
        pull_requests,
        branch_heads: Vec::new(),
        containing_branches: Vec::new(),
        position,
    }))
}

#[derive(Deserialize)]
struct AppJson {
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Deserialize)]
struct CheckSuiteJson {
    id: Option<i64>,
    updated_at: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    app: Option<AppJson>,
    #[serde(default)]
    pull_requests: Vec<PullRequestRefJson>,
}

#[derive(Deserialize)]
pub(super) struct CheckSuitePayload {
    check_suite: CheckSuiteJson,
    repository: RepoJson,
}

/// A suite is one check named after its app (e.g. "GitHub Actions").
pub(super) fn check_suite(payload: CheckSuitePayload) -> Result<ForgeEvent, ParseError> {
    let suite = payload.check_suite;
    let repo = payload.repository.into_repo()?;
    let pull_requests = refs(&repo, suite.pull_requests);
    let status = suite.status.unwrap_or_default();
    let rank =
        ordering::micros(suite.updated_at.as_deref()).map(|at| [at, status_rank(&status), 0]);
    let position = position(&repo, "check_suite", suite.id, rank);
    let (check, ci) = forge::run_outcome(&status, suite.conclusion.as_deref());
    let name = suite.app.and_then(|app| app.name.or(app.slug));
    Ok(ForgeEvent::Ci(CiEvent {
        repo,
        name: nonempty(name, "check_suite.app.name")?,
        sha: commit(suite.head_sha, "check_suite.head_sha")?,
        check,
        ci,
        url: String::new(),
        description: String::new(),
        log: String::new(),
        branch: suite.head_branch,
        pull_requests,
        branch_heads: Vec::new(),
        containing_branches: Vec::new(),
        position,
    }))
}

#[derive(Deserialize)]
struct CommitRefJson {
    sha: String,
}

#[derive(Deserialize)]
struct StatusBranchJson {
    name: String,
    commit: CommitRefJson,
}

#[derive(Deserialize)]
pub(super) struct StatusPayload {
    updated_at: Option<String>,
    sha: String,
    context: String,
    state: String,
    target_url: Option<String>,
    description: Option<String>,
    #[serde(default)]
    branches: Vec<StatusBranchJson>,
    repository: RepoJson,
}

pub(super) fn status(payload: StatusPayload) -> Result<ForgeEvent, ParseError> {
    let repo = payload.repository.into_repo()?;
    let sha = commit(payload.sha, "sha")?;
    let (check, ci) = forge::status_outcome(&payload.state);
    let position = ordering::micros(payload.updated_at.as_deref()).map(|at| Position {
        entity: format!(
            "{}/status/{sha}/{}",
            RepoId::canonical(&repo.full_name),
            payload.context
        ),
        rank: [at, 0, 0],
    });
    let (heads, containing): (Vec<_>, Vec<_>) = payload
        .branches
        .into_iter()
        .partition(|b| b.commit.sha.eq_ignore_ascii_case(&sha));
    let description = payload.description.unwrap_or_default();
    Ok(ForgeEvent::Ci(CiEvent {
        repo,
        name: nonempty(Some(payload.context), "context")?,
        sha,
        check,
        ci,
        url: payload.target_url.unwrap_or_default(),
        log: description.clone(),
        description,
        branch: None,
        pull_requests: Vec::new(),
        branch_heads: heads.into_iter().map(|b| b.name).collect(),
        containing_branches: containing.into_iter().map(|b| b.name).collect(),
        position,
    }))
}

#[derive(Deserialize)]
struct NamedJson {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WorkflowRunJson {
    id: Option<i64>,
    run_attempt: Option<i64>,
    updated_at: Option<String>,
    name: Option<String>,
    display_title: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    html_url: Option<String>,
    #[serde(default)]
    pull_requests: Vec<PullRequestRefJson>,
}

#[derive(Deserialize)]
pub(super) struct WorkflowRunPayload {
    workflow_run: WorkflowRunJson,
    workflow: Option<NamedJson>,
    repository: RepoJson,
    /// Gitea names the run's pull request here.
    pull_request: Option<PullRequestJson>,
}

pub(super) fn workflow_run(payload: WorkflowRunPayload) -> Result<ForgeEvent, ParseError> {
    let run = payload.workflow_run;
    let repo = payload.repository.into_repo()?;
    let status = run.status.unwrap_or_default();
    let rank = ordering::micros(run.updated_at.as_deref())
        .map(|at| [run.run_attempt.unwrap_or(1), at, status_rank(&status)]);
    let position = position(&repo, "workflow_run", run.id, rank);
    let (check, ci) = forge::run_outcome(&status, run.conclusion.as_deref());
    let name = [
        run.name,
        payload.workflow.and_then(|w| w.name),
        run.display_title,
    ]
    .into_iter()
    .flatten()
    .find(|name| !name.is_empty());
    let mut pull_requests = refs(&repo, run.pull_requests);
    if let Some(pr) = payload.pull_request.filter(|_| pull_requests.is_empty()) {
        pull_requests = refs(
            &repo,
            vec![PullRequestRefJson {
                number: pr.number,
                head: pr.head,
                base: pr.base,
            }],
        );
    }
    Ok(ForgeEvent::Ci(CiEvent {
        repo,
        name: nonempty(name, "workflow_run.name")?,
        sha: commit(run.head_sha, "workflow_run.head_sha")?,
        check,
        ci,
        url: run.html_url.unwrap_or_default(),
        description: String::new(),
        log: String::new(),
        branch: run.head_branch,
        pull_requests,
        branch_heads: Vec::new(),
        containing_branches: Vec::new(),
        position,
    }))
}
