//! What a GitHub or Gitea delivery says, reduced to the facts bosun uses: a
//! pull request's own state (and a review), or one CI result on a commit.
//! The JSON shapes are read in [`super::forge_json`]; this file holds the
//! facts and the pure tables that map forge words onto bosun's enums.

use serde::Deserialize;

use super::ordering::Position;
use crate::pb::{CheckStatus, CiStatusState, Mergeability, PullRequestState};
use crate::repo_id::RepoId;

/// The repository a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// "owner/name", as bosun matches it against project origin URLs.
    pub full_name: String,
    /// The repository's web page, to build a pull request's URL from.
    pub html_url: String,
}

impl ForgeEvent {
    pub fn repo(&self) -> &Repo {
        match self {
            Self::PullRequest(e) => &e.repo,
            Self::Ci(e) => &e.repo,
        }
    }

    pub fn position(&self) -> Option<&Position> {
        match self {
            Self::PullRequest(e) => e.position.as_ref(),
            Self::Ci(e) => e.position.as_ref(),
        }
    }
}

/// A repository as a pull request's `head.repo` or `base.repo` names it:
/// GitHub's pull request events and Gitea give `full_name`; the pull
/// requests inside GitHub's check runs and suites give only `id`, `url` and
/// `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RepoRef {
    pub id: Option<i64>,
    pub full_name: Option<String>,
    pub url: Option<String>,
}

/// Whether a pull request's head lives in another repository than `repo`
/// (a fork). `head` is `None` when the payload does not name a head
/// repository and `Some(None)` when it names none (GitHub's `null` for a
/// deleted fork); `base` is the pull request's base repository, if named.
pub fn from_fork(repo: &Repo, base: Option<&RepoRef>, head: Option<Option<&RepoRef>>) -> bool {
    let Some(head) = head else {
        return false;
    };
    let Some(head) = head else {
        return true;
    };
    let ours = RepoId::parse(&repo.full_name);
    if let Some(name) = &head.full_name {
        return RepoId::parse(name) != ours;
    }
    if let (Some(head_id), Some(base_id)) = (head.id, base.and_then(|b| b.id)) {
        return head_id != base_id;
    }
    if let Some(url) = &head.url {
        return RepoId::from_origin(url) != ours;
    }
    false
}

/// One delivery's facts.
#[derive(Debug, Clone, PartialEq)]
pub enum ForgeEvent {
    /// A pull request event or a review of one: the PR's own facts.
    PullRequest(PullRequestEvent),
    /// A CI result (check run, check suite, workflow run, commit status).
    Ci(CiEvent),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestEvent {
    pub repo: Repo,
    pub pull_request: PullRequestFacts,
    pub review: Review,
    /// Where the delivery stands among those about the pull request.
    pub position: Option<Position>,
}

/// A pull request as the forge describes it in the delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestFacts {
    pub number: i64,
    pub url: String,
    pub state: PullRequestState,
    /// `None` when the payload does not say.
    pub draft: Option<bool>,
    pub head_sha: String,
    pub branch: String,
    /// Empty when the payload does not say.
    pub title: String,
    /// `None` when the delivery does not carry it (reviews).
    pub mergeability: Option<Mergeability>,
    /// The head branch lives in another repository than the base (a fork).
    pub from_fork: bool,
}

/// A review carried by the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Not a review event.
    None,
    Approved {
        author: String,
        body: String,
    },
    ChangesRequested {
        author: String,
        body: String,
    },
    /// A review that only comments: it decides nothing.
    Commented,
    /// A review was dismissed: no decision stands.
    Dismissed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CiEvent {
    pub repo: Repo,
    /// The check name, suite app, workflow name or status context.
    pub name: String,
    pub sha: String,
    pub check: CheckStatus,
    pub ci: CiStatusState,
    pub url: String,
    /// A one-line description (statuses).
    pub description: String,
    /// Output for the agent (check run title, summary and text).
    pub log: String,
    /// The branch the forge names for the run, if any.
    pub branch: Option<String>,
    /// The open pull requests the run belongs to (check runs and suites,
    /// workflow runs).
    pub pull_requests: Vec<PullRequestRef>,
    /// Branches whose head is `sha` (GitHub statuses).
    pub branch_heads: Vec<String>,
    /// Branches that contain `sha` below their head (GitHub statuses).
    pub containing_branches: Vec<String>,
    /// Where the delivery stands among those about the run or status.
    pub position: Option<Position>,
}

/// A pull request named inside a CI payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRef {
    pub number: i64,
    pub branch: String,
    pub head_sha: String,
    /// The pull request's head lives in another repository (a fork).
    pub from_fork: bool,
}

/// A check run's, check suite's or workflow run's `status` and
/// `conclusion`: what the check shows and what the task's gate reads.
/// Neutral and skipped count as success for the gate; timeouts and
/// cancellations are the CI's own failures (ERROR); an unknown conclusion
/// stays pending rather than guess.
pub fn run_outcome(status: &str, conclusion: Option<&str>) -> (CheckStatus, CiStatusState) {
    if !status.eq_ignore_ascii_case("completed") {
        return (CheckStatus::Pending, CiStatusState::Pending);
    }
    let conclusion = conclusion.unwrap_or_default().to_ascii_lowercase();
    match conclusion.as_str() {
        "success" => (CheckStatus::Passed, CiStatusState::Success),
        "neutral" | "skipped" => (CheckStatus::Skipped, CiStatusState::Success),
        "failure" | "startup_failure" | "action_required" => {
            (CheckStatus::Failed, CiStatusState::Failure)
        }
        "timed_out" => (CheckStatus::Failed, CiStatusState::Error),
        "cancelled" | "stale" => (CheckStatus::Cancelled, CiStatusState::Error),
        _ => (CheckStatus::Pending, CiStatusState::Pending),
    }
}

/// A commit status's `state` (GitHub: pending, success, failure, error;
/// Gitea adds warning and skipped).
pub fn status_outcome(state: &str) -> (CheckStatus, CiStatusState) {
    match state.to_ascii_lowercase().as_str() {
        "success" => (CheckStatus::Passed, CiStatusState::Success),
        "warning" | "skipped" => (CheckStatus::Skipped, CiStatusState::Success),
        "failure" => (CheckStatus::Failed, CiStatusState::Failure),
        "error" => (CheckStatus::Failed, CiStatusState::Error),
        _ => (CheckStatus::Pending, CiStatusState::Pending),
    }
}

/// Open, closed or merged.
pub fn pull_request_state(state: &str, merged: bool) -> PullRequestState {
    match (state.eq_ignore_ascii_case("open"), merged) {
        (_, true) => PullRequestState::Merged,
        (true, false) => PullRequestState::Open,
        (false, false) => PullRequestState::Closed,
    }
}

/// GitHub's `mergeable` and `mergeable_state`: a known conflict wins, then
/// the state's word, then the boolean.
pub fn mergeability(mergeable: Option<bool>, mergeable_state: Option<&str>) -> Mergeability {
    if mergeable == Some(false) {
        return Mergeability::Conflicting;
    }
    match mergeable_state.map(str::to_ascii_lowercase).as_deref() {
        Some("clean" | "unstable" | "has_hooks") => Mergeability::Mergeable,
        Some("dirty") => Mergeability::Conflicting,
        Some("blocked" | "behind" | "draft") => Mergeability::Blocked,
        _ if mergeable == Some(true) => Mergeability::Mergeable,
        _ => Mergeability::Unknown,
    }
}

/// A GitHub review's `state` (Gitea's review events are told apart by the
/// event name instead).
pub fn review(state: &str, author: String, body: String) -> Review {
    match state.to_ascii_lowercase().as_str() {
        "approved" => Review::Approved { author, body },
        "changes_requested" => Review::ChangesRequested { author, body },
        "dismissed" => Review::Dismissed,
        _ => Review::Commented,
    }
}

/// Whether `sha` is a full commit id (SHA-1 or SHA-256, hex).
pub fn is_commit_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_outcomes() {
        use CheckStatus as C;
        use CiStatusState as G;
        let cases = [
            ("queued", None, C::Pending, G::Pending),
            ("in_progress", None, C::Pending, G::Pending),
            ("waiting", Some("success"), C::Pending, G::Pending),
            ("completed", Some("success"), C::Passed, G::Success),
            ("completed", Some("neutral"), C::Skipped, G::Success),
            ("completed", Some("skipped"), C::Skipped, G::Success),
            ("completed", Some("failure"), C::Failed, G::Failure),
            ("completed", Some("startup_failure"), C::Failed, G::Failure),
            ("completed", Some("action_required"), C::Failed, G::Failure),
            ("completed", Some("timed_out"), C::Failed, G::Error),
            ("completed", Some("cancelled"), C::Cancelled, G::Error),
            ("completed", Some("stale"), C::Cancelled, G::Error),
            ("COMPLETED", Some("FAILURE"), C::Failed, G::Failure),
            ("completed", None, C::Pending, G::Pending),
            ("completed", Some("something_new"), C::Pending, G::Pending),
        ];
        for (status, conclusion, check, ci) in cases {
            assert_eq!(
                run_outcome(status, conclusion),
                (check, ci),
                "{status} {conclusion:?}"
            );
        }
    }

    #[test]
    fn status_outcomes() {
        use CheckStatus as C;
        use CiStatusState as G;
        let cases = [
            ("pending", C::Pending, G::Pending),
            ("success", C::Passed, G::Success),
            ("warning", C::Skipped, G::Success),
            ("skipped", C::Skipped, G::Success),
            ("failure", C::Failed, G::Failure),
            ("error", C::Failed, G::Error),
            ("mystery", C::Pending, G::Pending),
        ];
        for (state, check, ci) in cases {
            assert_eq!(status_outcome(state), (check, ci), "{state}");
        }
    }

    #[test]
    fn pull_request_states_and_mergeability() {
        use Mergeability as M;
        assert_eq!(pull_request_state("open", false), PullRequestState::Open);
        assert_eq!(
            pull_request_state("closed", false),
            PullRequestState::Closed
        );
        assert_eq!(pull_request_state("closed", true), PullRequestState::Merged);
        let cases = [
            (None, None, M::Unknown),
            (None, Some("unknown"), M::Unknown),
            (Some(true), Some("clean"), M::Mergeable),
            (Some(true), Some("unstable"), M::Mergeable),
            (Some(true), Some("has_hooks"), M::Mergeable),
            (Some(true), Some("blocked"), M::Blocked),
            (Some(true), Some("behind"), M::Blocked),
            (Some(true), Some("draft"), M::Blocked),
            (None, Some("dirty"), M::Conflicting),
            (Some(false), Some("clean"), M::Conflicting),
            (Some(true), None, M::Mergeable),
            (Some(false), None, M::Conflicting),
        ];
        for (mergeable, state, expected) in cases {
            assert_eq!(
                mergeability(mergeable, state),
                expected,
                "{mergeable:?} {state:?}"
            );
        }
    }

    #[test]
    fn forks_are_told_by_the_head_repository() {
        let repo = Repo {
            full_name: "Codertocat/Hello-World".into(),
            html_url: String::new(),
        };
        let named = |name: &str| RepoRef {
            full_name: Some(name.into()),
            ..Default::default()
        };
        let numbered = |id: i64, url: &str| RepoRef {
            id: Some(id),
            url: Some(url.into()),
            ..Default::default()
        };
        let api = "https://api.github.com/repos/Codertocat/Hello-World";
        let fork_api = "https://api.github.com/repos/mallory/Hello-World";
        let cases = [
            (None, None, false),
            (None, Some(None), true),
            (None, Some(Some(named("codertocat/hello-world"))), false),
            (None, Some(Some(named("mallory/Hello-World"))), true),
            (Some(numbered(1, api)), Some(Some(numbered(1, api))), false),
            (
                Some(numbered(1, api)),
                Some(Some(numbered(2, fork_api))),
                true,
            ),
            (None, Some(Some(numbered(2, fork_api))), true),
            (None, Some(Some(numbered(1, api))), false),
            (None, Some(Some(RepoRef::default())), false),
        ];
        for (base, head, expected) in cases {
            assert_eq!(
                from_fork(&repo, base.as_ref(), head.as_ref().map(Option::as_ref)),
                expected,
                "{base:?} {head:?}"
            );
        }
    }

    #[test]
    fn reviews_and_shas() {
        let (a, b) = (String::from("octocat"), String::from("fix it"));
        assert!(matches!(
            review("approved", a.clone(), b.clone()),
            Review::Approved { .. }
        ));
        assert!(matches!(
            review("CHANGES_REQUESTED", a.clone(), b.clone()),
            Review::ChangesRequested { .. }
        ));
        assert_eq!(review("dismissed", a.clone(), b.clone()), Review::Dismissed);
        assert_eq!(review("commented", a, b), Review::Commented);
        assert!(is_commit_sha(&"a".repeat(40)));
        assert!(is_commit_sha(&"0F".repeat(32)));
        assert!(!is_commit_sha("ec26c3e5"));
        assert!(!is_commit_sha(&"g".repeat(40)));
    }
}
