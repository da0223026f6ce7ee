//! The JSON of GitHub's and Gitea's webhook payloads, read into
//! [`ForgeEvent`]s: the dispatch by event kind, pull requests and reviews,
//! and the pieces the CI shapes of [`super::ci_json`] share. Only the fields
//! bosun uses are declared; everything else in a payload is ignored. Gitea sends GitHub's shapes for pull requests,
//! statuses and workflow runs, and names its review events
//! `pull_request_approved`, `pull_request_rejected` and
//! `pull_request_comment`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::forge::{
    self, ForgeEvent, PullRequestEvent, PullRequestFacts, PullRequestRef, Repo, RepoRef, Review,
};
use super::ordering::{self, Position};
use super::{ParseError, Source, ci_json};
use crate::repo_id::RepoId;

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
        (Source::GitHub, "check_run") => ci_json::check_run(json(body)?)?,
        (Source::GitHub, "check_suite") => ci_json::check_suite(json(body)?)?,
        (Source::GitHub | Source::Gitea, "status") => ci_json::status(json(body)?)?,
        (Source::GitHub | Source::Gitea, "workflow_run") => ci_json::workflow_run(json(body)?)?,
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|err| ParseError::Json(err.to_string()))
}

#[derive(Deserialize)]
pub(super) struct RepoJson {
    full_name: Option<String>,
    html_url: Option<String>,
}

impl RepoJson {
    pub(super) fn into_repo(self) -> Result<Repo, ParseError> {
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
pub(super) struct BranchJson {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    /// `None` when absent, `Some(None)` when `null` (a deleted fork).
    #[serde(default, deserialize_with = "present")]
    repo: Option<Option<RepoRef>>,
}

#[derive(Deserialize)]
pub(super) struct BaseJson {
    repo: Option<RepoRef>,
}

/// A field that is there, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
pub(super) struct PullRequestJson {
    pub(super) number: i64,
    html_url: Option<String>,
    title: Option<String>,
    state: String,
    merged: Option<bool>,
    merged_at: Option<String>,
    draft: Option<bool>,
    updated_at: Option<String>,
    mergeable: Option<bool>,
    mergeable_state: Option<String>,
    pub(super) head: BranchJson,
    pub(super) base: Option<BaseJson>,
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
    let base = pr.base.and_then(|b| b.repo);
    let from_fork = forge::from_fork(
        &repo,
        base.as_ref(),
        pr.head.repo.as_ref().map(Option::as_ref),
    );
    let merged = pr.merged.unwrap_or(false) || pr.merged_at.is_some();
    // A review delivery carries no mergeability (GitHub sends the PR
    // without it): the known value stands.
    let mergeability = match source {
        _ if payload.review.is_some() || gitea_review.is_some() => None,
        Source::GitHub => Some(forge::mergeability(
            pr.mergeable,
            pr.mergeable_state.as_deref(),
        )),
        _ => Some(forge::mergeability(pr.mergeable, None)),
    };
    let position = ordering::micros(pr.updated_at.as_deref()).map(|at| Position {
        entity: format!("{}/pull/{}", RepoId::canonical(&repo.full_name), pr.number),
        rank: [at, 0, 0],
    });
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
            title: pr.title.unwrap_or_default(),
            branch: nonempty(Some(pr.head.name), "pull_request.head.ref")?,
            mergeability,
            from_fork,
        },
        repo,
        review,
        position,
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
pub(super) struct PullRequestRefJson {
    pub(super) number: i64,
    pub(super) head: BranchJson,
    pub(super) base: Option<BaseJson>,
}

/// The pull requests a CI payload names on `repo`.
pub(super) fn refs(repo: &Repo, refs: Vec<PullRequestRefJson>) -> Vec<PullRequestRef> {
    refs.into_iter()
        .filter(|r| r.number > 0 && forge::is_commit_sha(&r.head.sha))
        .map(|r| {
            let base = r.base.and_then(|b| b.repo);
            PullRequestRef {
                number: r.number,
                from_fork: forge::from_fork(
                    repo,
                    base.as_ref(),
                    r.head.repo.as_ref().map(Option::as_ref),
                ),
                branch: r.head.name,
                head_sha: r.head.sha.to_ascii_lowercase(),
            }
        })
        .collect()
}

pub(super) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ParseError> {
    value.ok_or(ParseError::Missing(field))
}

pub(super) fn nonempty(value: Option<String>, field: &'static str) -> Result<String, ParseError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or(ParseError::Missing(field))
}

pub(super) fn positive(number: i64, field: &'static str) -> Result<i64, ParseError> {
    if number > 0 {
        Ok(number)
    } else {
        Err(ParseError::Invalid(field, "must be a positive number"))
    }
}

pub(super) fn commit(sha: String, field: &'static str) -> Result<String, ParseError> {
    if forge::is_commit_sha(&sha) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(ParseError::Invalid(field, "must be a full commit sha"))
    }
}
