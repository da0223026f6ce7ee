//! Every published GitHub example of the events the shim reads
//! (`@octokit/webhooks-examples`, pinned in scripts/lib/toolchain.sh:
//! pull_request, pull_request_review, check_run, check_suite, status,
//! workflow_run) replayed through the real server: a project on the
//! example's repository and a task in development on the branch it
//! concerns, whose pull request is at the head it names; then the example,
//! signed and posted, and the STATE it leaves checked (the session's pull
//! request and checks, the task's head and CI, the events appended). Each
//! example is then varied as senders vary it: redelivered, from another
//! repository, from a fork, with the repository spelled in another case.

mod common;

use bosun::pb;
use common::TestServer;
use common::forge_payloads::{from_fork, github, published_examples};
use common::webhooks::with_secrets;
use serde_json::{Value, json};

const EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "check_run",
    "check_suite",
    "status",
    "workflow_run",
];

/// What an example concerns: its repository, branch, pull request number
/// and head commit, and (CI) the check's name, commit and expected state.
struct Concern {
    repo: String,
    branch: String,
    number: i64,
    head: String,
    ci: Option<(String, String, pb::CiStatusState)>,
    names_prs: bool,
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The gate's reading of a run's status and conclusion, or a commit
/// status's state, as GitHub documents them.
fn expected_ci(status: &str, conclusion: &str) -> pb::CiStatusState {
    use pb::CiStatusState as S;
    match (status, conclusion) {
        ("completed", "success" | "neutral" | "skipped") => S::Success,
        ("completed", "failure" | "action_required" | "startup_failure") => S::Failure,
        ("completed", "timed_out" | "cancelled" | "stale") => S::Error,
        ("status", "success") => S::Success,
        ("status", "failure") => S::Failure,
        ("status", "error") => S::Error,
        _ => S::Pending,
    }
}

fn concern(event: &str, example: &Value) -> Concern {
    let repo = text(&example["repository"]["full_name"]);
    if event.starts_with("pull_request") {
        let pr = &example["pull_request"];
        return Concern {
            repo,
            branch: text(&pr["head"]["ref"]),
            number: pr["number"].as_i64().unwrap(),
            head: text(&pr["head"]["sha"]),
            ci: None,
            names_prs: true,
        };
    }
    if event == "status" {
        let sha = text(&example["sha"]);
        let state = expected_ci("status", example["state"].as_str().unwrap());
        return Concern {
            repo,
            branch: "changes".into(),
            number: 1,
            head: sha.clone(),
            ci: Some((text(&example["context"]), sha, state)),
            names_prs: false,
        };
    }
    let run = &example[event];
    let name = match event {
        "check_suite" => text(&run["app"]["name"]),
        "workflow_run" => [&run["name"], &example["workflow"]["name"]]
            .iter()
            .map(|v| text(v))
            .find(|n| !n.is_empty())
            .unwrap_or_default(),
        _ => text(&run["name"]),
    };
    let sha = text(&run["head_sha"]);
    let state = expected_ci(
        run["status"].as_str().unwrap_or_default(),
        run["conclusion"].as_str().unwrap_or_default(),
    );
    let branch = run["head_branch"]
        .as_str()
        .or(run["check_suite"]["head_branch"].as_str())
        .unwrap_or("main")
        .to_string();
    let first = run["pull_requests"].as_array().and_then(|prs| prs.first());
    Concern {
        repo,
        branch: first.map_or(branch, |pr| text(&pr["head"]["ref"])),
        number: first.map_or(1, |pr| pr["number"].as_i64().unwrap()),
        head: first.map_or(sha.clone(), |pr| text(&pr["head"]["sha"])),
        ci: Some((name, sha, state)),
        names_prs: first.is_some(),
    }
}

/// A server with project "p" on the concern's repository and a task in
/// development on its branch, the pull request at its head.
async fn set_up(concern: &Concern) -> (TestServer, pb::Task) {
    let server = TestServer::start_with(with_secrets).await;
    let origin = format!("https://github.com/{}.git", concern.repo);
    server.project("p", |p| p.origin_url = origin).await;
    let task = server
        .tasks()
        .start_task(pb::StartTaskRequest {
            project_id: "p".into(),
            tracker_issue_id: "issue".into(),
            work_item_id: "P-1".into(),
            branch: concern.branch.clone(),
            ..Default::default()
        })
        .await
        .expect("start task")
        .into_inner()
        .task
        .unwrap();
    server.walk_to(task.id, pb::Stage::Development).await;
    let task = server.task(task.id).await;
    server
        .sessions_client()
        .report_pull_request(pb::ReportPullRequestRequest {
            session_id: task.stage_session_id.clone(),
            fetched: true,
            pull_request: Some(pb::PullRequest {
                url: format!(
                    "https://github.com/{}/pull/{}",
                    concern.repo, concern.number
                ),
                number: concern.number,
                state: pb::PullRequestState::Open.into(),
                mergeability: pb::Mergeability::Mergeable.into(),
                head_sha: concern.head.clone(),
                branch: concern.branch.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("report pull request");
    let task = server.task(task.id).await;
    (server, task)
}

/// The state the example must leave.
async fn check_state(
    server: &TestServer,
    task: &pb::Task,
    event: &str,
    example: &Value,
    concern: &Concern,
    what: &str,
) {
    let now = server.task(task.id).await;
    let session = server.session(&task.stage_session_id).await;
    let pr = session
        .pull_request
        .clone()
        .expect("the session's pull request");
    let facts = common::pipeline::facts(server, task.id).await;
    match (event, &concern.ci) {
        ("pull_request", _) => {
            let facts_pr = &example["pull_request"];
            let merged = facts_pr["merged"].as_bool() == Some(true);
            let state = match (merged, text(&facts_pr["state"]).as_str()) {
                (true, _) => pb::PullRequestState::Merged,
                (false, "open") => pb::PullRequestState::Open,
                _ => pb::PullRequestState::Closed,
            };
            assert_eq!(pr.state, state as i32, "{what}: state");
            assert_eq!(pr.head_sha, concern.head, "{what}: head");
            assert_eq!(pr.number, concern.number, "{what}: number");
            if let Some(draft) = facts_pr["draft"].as_bool() {
                assert_eq!(pr.draft, draft, "{what}: draft");
            }
            assert_eq!(
                now.head_sha, concern.head,
                "{what}: the task's head is the PR's"
            );
            if merged {
                assert_eq!(
                    session.termination_reason,
                    pb::TerminationReason::PrMerged as i32,
                    "{what}"
                );
            }
        }
        ("pull_request_review", _) => {
            let decision = match text(&example["review"]["state"]).as_str() {
                "approved" => pb::ReviewDecision::Approved,
                "changes_requested" => pb::ReviewDecision::ChangesRequested,
                _ => pb::ReviewDecision::Unspecified,
            };
            assert_eq!(pr.review_decision, decision as i32, "{what}: review");
            assert_eq!(
                pr.mergeability,
                pb::Mergeability::Mergeable as i32,
                "{what}: a review carries no mergeability"
            );
            let verdicts = facts.verdicts.len();
            let decides = decision != pb::ReviewDecision::Unspecified;
            assert_eq!(
                verdicts,
                usize::from(decides) + 1,
                "{what}: the walk's and the review's verdicts"
            );
        }
        (_, Some((name, sha, state))) => {
            assert_eq!(
                now.head_sha, concern.head,
                "{what}: CI never moves the head"
            );
            let on_head: Vec<(&str, i32)> = facts
                .ci_statuses
                .iter()
                .filter(|s| s.context == *name)
                .map(|s| (s.sha.as_str(), s.state))
                .collect();
            if *sha == concern.head {
                assert_eq!(
                    on_head,
                    [(sha.as_str(), *state as i32)],
                    "{what}: CI on the head"
                );
                let check = pr.checks.iter().find(|c| c.name == *name);
                assert!(
                    check.is_some_and(|c| c.commit_sha == *sha),
                    "{what}: check {name} in {:?}",
                    pr.checks
                );
            } else {
                assert!(
                    on_head.is_empty(),
                    "{what}: CI on another commit is no gate fact: {on_head:?}"
                );
            }
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn every_published_example_leaves_the_state_it_describes() {
    let Some(index) = published_examples() else {
        return;
    };
    let mut replayed = 0;
    for entry in index.as_array().expect("a list of events") {
        let event = text(&entry["name"]);
        if !EVENTS.contains(&event.as_str()) {
            continue;
        }
        for (i, example) in entry["examples"].as_array().unwrap().iter().enumerate() {
            let what = format!("{event} #{i} ({})", text(&example["action"]));
            let concern = concern(&event, example);
            let (server, task) = set_up(&concern).await;
            let before = server.head().await;

            let answer = server
                .deliver(&github(&event, &format!("{event}-{i}"), example))
                .await;
            assert_eq!(
                (answer.status, answer.outcome.as_str()),
                (200, "processed"),
                "{what}: {answer:?}"
            );
            let after = server.head().await;
            // A CI result is always recorded (ci_status.recorded); a pull
            // request event that repeats what bosun knows writes nothing.
            if concern.ci.is_some() {
                assert!(after > before, "{what}: events appended");
            }
            check_state(&server, &task, &event, example, &concern, &what).await;

            // Redelivered: a duplicate, nothing written.
            let again = server
                .deliver(&github(&event, &format!("{event}-{i}"), example))
                .await;
            assert_eq!(again.outcome, "duplicate", "{what}");
            // Another repository: nothing bosun tracks.
            let mut other = example.clone();
            other["repository"]["full_name"] = json!("someone/else");
            let answer = server
                .deliver(&github(&event, &format!("{event}-{i}-other"), &other))
                .await;
            assert_eq!(
                (answer.status, answer.outcome.as_str()),
                (202, "ignored"),
                "{what}: {answer:?}"
            );
            // From a fork: never the agent's pull request.
            if concern.names_prs {
                let fork = from_fork(example.clone(), "mallory");
                let answer = server
                    .deliver(&github(&event, &format!("{event}-{i}-fork"), &fork))
                    .await;
                assert_eq!(
                    (answer.status, answer.outcome.as_str()),
                    (202, "ignored"),
                    "{what} from a fork: {answer:?}"
                );
            }
            assert_eq!(
                server.head().await,
                after,
                "{what}: the variants wrote nothing"
            );
            // The repository in another case: the same repository.
            let mut shouting = example.clone();
            shouting["repository"]["full_name"] = json!(concern.repo.to_uppercase());
            let answer = server
                .deliver(&github(&event, &format!("{event}-{i}-case"), &shouting))
                .await;
            assert_eq!(answer.status, 200, "{what} in capitals: {answer:?}");
            check_state(&server, &task, &event, example, &concern, &what).await;
            replayed += 1;
        }
    }
    assert!(replayed >= 60, "replayed {replayed} examples");
}
