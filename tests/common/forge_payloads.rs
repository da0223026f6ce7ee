//! A small builder of forge deliveries for the webhook rules' tests: each
//! starts from a published example (`tests/fixtures/webhooks`, GitHub's own
//! from `@octokit/webhooks-examples`) and changes only what a test is about,
//! the way real senders vary it: another commit, a fork's head, another
//! spelling of the repository, a later or earlier `updated_at`, a payload
//! without a field.

use serde_json::{Value, json};

use super::webhooks::{Delivery, fixture_json};

/// The published example's repository id (`Codertocat/Hello-World`).
pub const HELLO_ID: i64 = 186_853_002;

/// A GitHub delivery of `event` with body `body`.
pub fn github(event: &str, id: &str, body: &Value) -> Delivery {
    Delivery::github(event, id, body.to_string().into_bytes())
}

/// A published GitHub example, parsed.
pub fn example(name: &str) -> Value {
    fixture_json(&format!("github/{name}.json"))
}

/// `payload` about repository `full_name` (another spelling, another repo):
/// the repository and, where the payload names them, the pull request's
/// head and base repositories.
pub fn on_repo(mut payload: Value, full_name: &str) -> Value {
    payload["repository"]["full_name"] = json!(full_name);
    payload["repository"]["html_url"] = json!(format!("https://github.com/{full_name}"));
    for side in ["head", "base"] {
        if payload["pull_request"][side]["repo"].is_object() {
            payload["pull_request"][side]["repo"]["full_name"] = json!(full_name);
        }
    }
    payload
}

/// `payload` with its pull request's head in `owner`'s fork: GitHub's pull
/// request events name the fork by `full_name`, the pull requests inside
/// check runs and suites by `id` and `url`.
pub fn from_fork(mut payload: Value, owner: &str) -> Value {
    let fork = format!("{owner}/Hello-World");
    if payload["pull_request"]["head"].is_object() {
        payload["pull_request"]["head"]["repo"]["full_name"] = json!(fork);
        payload["pull_request"]["head"]["repo"]["id"] = json!(HELLO_ID + 1);
    }
    for holder in ["check_run", "check_suite", "workflow_run"] {
        if let Some(prs) = payload[holder]["pull_requests"].as_array_mut() {
            for pr in prs {
                pr["head"]["repo"] = json!({
                    "id": HELLO_ID + 1,
                    "url": format!("https://api.github.com/repos/{fork}"),
                    "name": "Hello-World",
                });
            }
        }
    }
    payload
}

/// A pull_request delivery body for PR #2 on `branch` at `head`, `state`
/// ("open" or "closed"), `merged`, last updated at `updated_at`.
pub fn pull_request(
    branch: &str,
    head: &str,
    state: &str,
    merged: bool,
    updated_at: &str,
) -> Value {
    let mut payload = example(if state == "open" {
        "pull_request.opened"
    } else {
        "pull_request.closed"
    });
    let pr = &mut payload["pull_request"];
    pr["head"]["ref"] = json!(branch);
    pr["head"]["sha"] = json!(head);
    pr["state"] = json!(state);
    pr["merged"] = json!(merged);
    pr["merged_at"] = if merged {
        json!(updated_at)
    } else {
        Value::Null
    };
    pr["updated_at"] = json!(updated_at);
    if merged {
        payload["action"] = json!("closed");
    }
    payload
}

/// `payload`'s pull request with a known mergeability (`mergeable`,
/// `mergeable_state`).
pub fn mergeable(mut payload: Value, mergeable: bool, state: &str) -> Value {
    payload["pull_request"]["mergeable"] = json!(mergeable);
    payload["pull_request"]["mergeable_state"] = json!(state);
    payload
}

/// The published check run `name` (`check_run.created` queued,
/// `check_run.completed.success`, ...) on `head` for PR #2 on `branch`.
pub fn check_run(name: &str, branch: &str, head: &str) -> Value {
    let mut payload = example(name);
    let run = &mut payload["check_run"];
    run["head_sha"] = json!(head);
    run["check_suite"]["head_sha"] = json!(head);
    run["check_suite"]["head_branch"] = json!(branch);
    if let Some(prs) = run["pull_requests"].as_array_mut() {
        for pr in prs {
            pr["head"]["ref"] = json!(branch);
            pr["head"]["sha"] = json!(head);
        }
    }
    payload
}

/// Where `@octokit/webhooks-examples` is installed by the test tooling
/// (scripts/lib/toolchain.sh, `ensure_webhook_examples`).
pub const EXAMPLES_DIR: &str = ".tools/webhooks-examples/node_modules/@octokit/webhooks-examples";

/// GitHub's published examples (`api.github.com/index.json`: one entry per
/// event with its examples), from `$TEST_BOSUN_WEBHOOK_EXAMPLES` or
/// [`EXAMPLES_DIR`]. Missing: a failure under CI (CI=true), else `None`
/// with how to install them.
pub fn published_examples() -> Option<Value> {
    let file = std::env::var_os("TEST_BOSUN_WEBHOOK_EXAMPLES").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(EXAMPLES_DIR)
                .join("api.github.com/index.json")
        },
        std::path::PathBuf::from,
    );
    match std::fs::read(&file) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("the examples' JSON")),
        Err(err) if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
            "@octokit/webhooks-examples is missing under CI ({}: {err}); scripts/test installs it",
            file.display()
        ),
        Err(err) => {
            eprintln!(
                "skipped: {} ({err}); install with: source scripts/lib/toolchain.sh && ensure_webhook_examples",
                file.display()
            );
            None
        }
    }
}

/// A Gitea delivery of `event` with body `body`.
pub fn gitea(event: &str, id: &str, body: &Value) -> Delivery {
    Delivery::gitea(event, id, body.to_string().into_bytes())
}

/// A Gitea payload fixture (written from Gitea 1.24's `modules/structs`:
/// `PullRequestPayload`, `PullRequest`, `PRBranchInfo`,
/// `CommitStatusPayload`), parsed.
pub fn gitea_example(name: &str) -> Value {
    fixture_json(&format!("gitea/{name}.json"))
}

/// Gitea's pull request #3 on `feature/passkey` at its head, `state`
/// ("open" or "closed"), `merged`, updated at `updated_at`.
pub fn gitea_pull_request(state: &str, merged: bool, updated_at: &str) -> Value {
    let mut payload = gitea_example("pull_request.opened");
    payload["action"] = json!(if state == "open" { "opened" } else { "closed" });
    let pr = &mut payload["pull_request"];
    pr["state"] = json!(state);
    pr["merged"] = json!(merged);
    pr["merged_at"] = if merged {
        json!(updated_at)
    } else {
        Value::Null
    };
    pr["updated_at"] = json!(updated_at);
    payload
}

/// `payload`'s pull request with its head in `owner`'s fork of the
/// repository (Gitea names the head repository in `head.repo` and
/// `head.repo_id`).
pub fn gitea_from_fork(mut payload: Value, owner: &str) -> Value {
    let head = &mut payload["pull_request"]["head"];
    head["repo_id"] = json!(9_999);
    head["repo"]["id"] = json!(9_999);
    head["repo"]["full_name"] = json!(format!("{owner}/webhooks"));
    head["repo"]["owner"]["login"] = json!(owner);
    payload
}

/// The head of the Gitea fixtures' pull request #3.
pub const GITEA_HEAD: &str = "bffeb74224043ba2feb48d137756c8a9331c449a";

/// A Gitea `pull_request` body as Gitea's notifier builds one
/// (`PullRequestPayload`): `action` is a `HookIssueAction` (`opened`,
/// `synchronized`, `closed`, `reopened`, `edited`), the pull request at
/// `head`, last updated at `updated_at`; a merge fills `merged_at`,
/// `merge_commit_sha` and `merged_by` as Gitea does, an edit carries
/// `changes`.
pub fn gitea_pr(action: &str, head: &str, merged: bool, updated_at: &str) -> Value {
    let mut payload = gitea_example("pull_request.opened");
    payload["action"] = json!(action);
    if action == "edited" {
        payload["changes"] = json!({"title": {"from": "Passkey login"}});
    }
    let user = payload["pull_request"]["user"].clone();
    let pr = &mut payload["pull_request"];
    let closed = action == "closed";
    pr["state"] = json!(if closed { "closed" } else { "open" });
    pr["head"]["sha"] = json!(head);
    pr["updated_at"] = json!(updated_at);
    pr["closed_at"] = if closed {
        json!(updated_at)
    } else {
        Value::Null
    };
    pr["merged"] = json!(merged);
    pr["merged_at"] = if merged {
        json!(updated_at)
    } else {
        Value::Null
    };
    pr["merge_commit_sha"] = if merged {
        json!("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
    } else {
        Value::Null
    };
    pr["merged_by"] = if merged { user } else { Value::Null };
    payload
}

/// A Gitea review delivery body: `event` is the `X-Gitea-Event` value
/// (`pull_request_approved`, `pull_request_rejected`,
/// `pull_request_comment`); Gitea sends action `reviewed` and names the
/// review type (`X-Gitea-Event-Type`) in `review.type`.
pub fn gitea_review(event: &str, updated_at: &str) -> Value {
    let mut payload = gitea_example("pull_request_approved");
    let kind = event.trim_start_matches("pull_request_");
    payload["review"] = json!({
        "type": format!("pull_request_review_{kind}"),
        "content": format!("{kind} by a human"),
    });
    payload["pull_request"]["updated_at"] = json!(updated_at);
    payload
}

/// A Gitea `status` body (`CommitStatusPayload`) for `sha` in `state`
/// (pending, success, error, failure, warning), updated at `updated_at`.
pub fn gitea_status(state: &str, sha: &str, updated_at: &str) -> Value {
    let mut payload = gitea_example("status.failure");
    payload["state"] = json!(state);
    payload["sha"] = json!(sha);
    payload["commit"]["id"] = json!(sha);
    payload["updated_at"] = json!(updated_at);
    payload
}

/// A Plane v1 `issue` delivery body (`webhook_task.py`: `event`, `action`,
/// `webhook_id`, `workspace_id`, `data`, `activity`) for the fixtures'
/// issue #98: `action` created or updated with the state named `state` at
/// `updated_at`; `deleted` carries `{"id"}` only as `data`, as Plane sends.
pub fn plane_issue(action: &str, state: &str, updated_at: &str) -> Value {
    let mut payload = fixture_json("plane/issue.updated.in_progress.json");
    payload["action"] = json!(action);
    if action == "deleted" {
        let id = payload["data"]["id"].clone();
        payload["data"] = json!({ "id": id });
        payload["activity"] = json!({
            "field": null, "new_value": null, "old_value": null,
            "actor": payload["activity"]["actor"].clone(),
        });
        return payload;
    }
    let old = payload["data"]["state"]["name"].clone();
    payload["data"]["state"]["name"] = json!(state);
    payload["data"]["state"]["id"] = json!(format!("state-{}", state.to_lowercase()));
    payload["data"]["updated_at"] = json!(updated_at);
    payload["activity"]["field"] = if action == "created" {
        Value::Null
    } else {
        json!("state")
    };
    payload["activity"]["old_value"] = old;
    payload["activity"]["new_value"] = json!(state);
    payload
}
