//! The JSON of GitHub's and Gitea's webhook payloads, read into
//! [`ForgeEvent`]s. Only the fields bosun uses are declared; everything else
//! in a payload is ignored. Gitea sends GitHub's shapes for pull requests,
//! statuses and workflow runs, and names its review events
//! `pull_request_approved`, `pull_request_rejected` and
//! `pull_request_comment`.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::forge::{
    self, CiEvent, ForgeEvent, PullRequestEvent, PullRequestFacts, PullRequestRef, Repo, Review,
};
use super::{ParseError, Source};

/// The event kinds each forge's deliveries are translated from.
pub const GITHUB_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "check_run",
    "check_suite",
    "status",
    "workflow_run",
];
pub const GITEA_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_approved",
    "pull_request_rejected",
    "pull_request_comment",
    "status",
    "workflow_run",
];

/// Reads a delivery of `event` (the event header); `Ok(None)` for an event
/// kind bosun does not use.
pub fn parse(source: Source, event: &str, body: &[u8]) -> Result<Option<ForgeEvent>, ParseError> {
    let parsed = match (source, event) {
        (Source::GitHub, "pull_request" | "pull_request_review")
        | (Source::Gitea, "pull_request") => pull_request(source, json(body)?, None)?,
        (
            Source::Gitea,
            "pull_request_approved" | "pull_request_rejected" | "pull_request_comment",
        ) => pull_request(source, json(body)?, Some(event))?,
        (Source::GitHub, "check_run") => check_run(json(body)?)?,
        (Source::GitHub, "check_suite") => check_suite(json(body)?)?,
        (Source::GitHub | Source::Gitea, "status") => status(json(body)?)?,
        (Source::GitHub | Source::Gitea, "workflow_run") => workflow_run(json(body)?)?,
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|err| ParseError::Json(err.to_string()))
}

#[derive(Deserialize)]
struct RepoJson {
    full_name: Option<String>,
    html_url: Option<String>,
}

impl RepoJson {
    fn into_repo(self) -> Result<Repo, ParseError> {
        let full_name = nonempty(self.full_name, "repository.full_name")?;
        Ok(Repo {
            html_url: self.html_url.unwrap_or_default(),
            full_name,
        })
    }
}

#[derive(Deserialize)]
struct UserJson {
    login: Option<String>,
    username: Option<String>,
}

fn login(user: Option<UserJson>) -> String {
    user.and_then(|u| u.login.or(u.username))
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct BranchJson {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
}

#[derive(Deserialize)]
struct PullRequestJson {
    number: i64,
    html_url: Option<String>,
    state: String,
    merged: Option<bool>,
    merged_at: Option<String>,
    draft: Option<bool>,
    mergeable: Option<bool>,
    mergeable_state: Option<String>,
    head: BranchJson,
}

#[derive(Deserialize)]
struct ReviewJson {
    /// GitHub: approved, changes_requested, commented, dismissed.
    state: Option<String>,
    body: Option<String>,
    user: Option<UserJson>,
    /// Gitea: the review text.
    content: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    pull_request: Option<PullRequestJson>,
    repository: Option<RepoJson>,
    review: Option<ReviewJson>,
    sender: Option<UserJson>,
}

/// GitHub's pull_request and pull_request_review; Gitea's pull_request and
/// its review events (`gitea_review` names which).
fn pull_request(
    source: Source,
    payload: PullRequestPayload,
    gitea_review: Option<&str>,
) -> Result<ForgeEvent, ParseError> {
    let repo = required(payload.repository, "repository")?.into_repo()?;
    let pr = required(payload.pull_request, "pull_request")?;
    let sha = commit(pr.head.sha, "pull_request.head.sha")?;
    let merged = pr.merged.unwrap_or(false) || pr.merged_at.is_some();
    let mergeability = match source {
        Source::GitHub => forge::mergeability(pr.mergeable, pr.mergeable_state.as_deref()),
        _ => forge::mergeability(pr.mergeable, None),
    };
    let url = pr
        .html_url
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| pull_request_url(source, &repo, pr.number));
    let review = match (gitea_review, payload.review) {
        (Some(event), review) => {
            let body = review.and_then(|r| r.content).unwrap_or_default();
            let author = login(payload.sender);
            match event {
                "pull_request_approved" => Review::Approved { author, body },
                "pull_request_rejected" => Review::ChangesRequested { author, body },
                _ => Review::Commented,
            }
        }
        (None, Some(review)) => {
            let author = login(review.user);
            let body = review.body.unwrap_or_default();
            forge::review(review.state.as_deref().unwrap_or_default(), author, body)
        }
        (None, None) => Review::None,
    };
    Ok(ForgeEvent::PullRequest(PullRequestEvent {
        pull_request: PullRequestFacts {
            number: positive(pr.number, "pull_request.number")?,
            url,
            state: forge::pull_request_state(&pr.state, merged),
            draft: pr.draft,
            head_sha: sha,
            branch: nonempty(Some(pr.head.name), "pull_request.head.ref")?,
            mergeability: Some(mergeability),
        },
        repo,
        review,
    }))
}

/// The web page of pull request `number` when the payload gives none.
pub fn pull_request_url(source: Source, repo: &Repo, number: i64) -> String {
    let base = if repo.html_url.is_empty() {
        format!("https://github.com/{}", repo.full_name)
    } else {
        repo.html_url.trim_end_matches('/').to_string()
    };
    match source {
        Source::Gitea => format!("{base}/pulls/{number}"),
        _ => format!("{base}/pull/{number}"),
    }
}

#[derive(Deserialize)]
struct PullRequestRefJson {
    number: i64,
    head: BranchJson,
}

fn refs(refs: Vec<PullRequestRefJson>) -> Vec<PullRequestRef> {
    refs.into_iter()
        .filter(|r| r.number > 0 && forge::is_commit_sha(&r.head.sha))
        .map(|r| PullRequestRef {
            number: r.number,
            branch: r.head.name,
            head_sha: r.head.sha.to_ascii_lowercase(),
        })
        .collect()
}

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

#[derive(Deserialize)]
struct CheckRunJson {
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
struct CheckRunPayload {
    check_run: CheckRunJson,
    repository: RepoJson,
}

fn check_run(payload: CheckRunPayload) -> Result<ForgeEvent, ParseError> {
    let run = payload.check_run;
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
        repo: payload.repository.into_repo()?,
        name: nonempty(Some(run.name), "check_run.name")?,
        sha: commit(run.head_sha, "check_run.head_sha")?,
        check,
        ci,
        url: run.html_url.or(run.details_url).unwrap_or_default(),
        description: String::new(),
        log,
        branch: run.check_suite.and_then(|s| s.head_branch),
        pull_requests: refs(run.pull_requests),
        branch_heads: Vec::new(),
    }))
}

#[derive(Deserialize)]
struct AppJson {
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Deserialize)]
struct CheckSuiteJson {
    head_sha: String,
    head_branch: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    app: Option<AppJson>,
    #[serde(default)]
    pull_requests: Vec<PullRequestRefJson>,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    check_suite: CheckSuiteJson,
    repository: RepoJson,
}

/// A suite is one check named after its app (e.g. "GitHub Actions").
fn check_suite(payload: CheckSuitePayload) -> Result<ForgeEvent, ParseError> {
    let suite = payload.check_suite;
    let status = suite.status.unwrap_or_default();
    let (check, ci) = forge::run_outcome(&status, suite.conclusion.as_deref());
    let name = suite.app.and_then(|app| app.name.or(app.slug));
    Ok(ForgeEvent::Ci(CiEvent {
        repo: payload.repository.into_repo()?,
        name: nonempty(name, "check_suite.app.name")?,
        sha: commit(suite.head_sha, "check_suite.head_sha")?,
        check,
        ci,
        url: String::new(),
        description: String::new(),
        log: String::new(),
        branch: suite.head_branch,
        pull_requests: refs(suite.pull_requests),
        branch_heads: Vec::new(),
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
struct StatusPayload {
    sha: String,
    context: String,
    state: String,
    target_url: Option<String>,
    description: Option<String>,
    #[serde(default)]
    branches: Vec<StatusBranchJson>,
    repository: RepoJson,
}

fn status(payload: StatusPayload) -> Result<ForgeEvent, ParseError> {
    let sha = commit(payload.sha, "sha")?;
    let (check, ci) = forge::status_outcome(&payload.state);
    let branch_heads = payload
        .branches
        .into_iter()
        .filter(|b| b.commit.sha.eq_ignore_ascii_case(&sha))
        .map(|b| b.name)
        .collect();
    let description = payload.description.unwrap_or_default();
    Ok(ForgeEvent::Ci(CiEvent {
        repo: payload.repository.into_repo()?,
        name: nonempty(Some(payload.context), "context")?,
        sha,
        check,
        ci,
        url: payload.target_url.unwrap_or_default(),
        log: description.clone(),
        description,
        branch: None,
        pull_requests: Vec::new(),
        branch_heads,
    }))
}

#[derive(Deserialize)]
struct NamedJson {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WorkflowRunJson {
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
struct WorkflowRunPayload {
    workflow_run: WorkflowRunJson,
    workflow: Option<NamedJson>,
    repository: RepoJson,
    /// Gitea names the run's pull request here.
    pull_request: Option<PullRequestJson>,
}

fn workflow_run(payload: WorkflowRunPayload) -> Result<ForgeEvent, ParseError> {
    let run = payload.workflow_run;
    let status = run.status.unwrap_or_default();
    let (check, ci) = forge::run_outcome(&status, run.conclusion.as_deref());
    let name = [
        run.name,
        payload.workflow.and_then(|w| w.name),
        run.display_title,
    ]
    .into_iter()
    .flatten()
    .find(|name| !name.is_empty());
    let mut pull_requests = refs(run.pull_requests);
    if let Some(pr) = payload.pull_request.filter(|_| pull_requests.is_empty()) {
        pull_requests = refs(vec![PullRequestRefJson {
            number: pr.number,
            head: pr.head,
        }]);
    }
    Ok(ForgeEvent::Ci(CiEvent {
        repo: payload.repository.into_repo()?,
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
    }))
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ParseError> {
    value.ok_or(ParseError::Missing(field))
}

fn nonempty(value: Option<String>, field: &'static str) -> Result<String, ParseError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or(ParseError::Missing(field))
}

fn positive(number: i64, field: &'static str) -> Result<i64, ParseError> {
    if number > 0 {
        Ok(number)
    } else {
        Err(ParseError::Invalid(field, "must be a positive number"))
    }
}

fn commit(sha: String, field: &'static str) -> Result<String, ParseError> {
    if forge::is_commit_sha(&sha) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(ParseError::Invalid(field, "must be a full commit sha"))
    }
}
