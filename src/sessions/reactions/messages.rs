//! The words of a reaction: what a nudge or an escalation tells the agent
//! or the person (failing checks with their log tails, unresolved review
//! comments), cut to a bounded size, and the digest that tells one set of
//! comments from another.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::sessions::{Check, CheckStatus, Comment};

/// A message never grows past this (log tails are long).
pub(super) const MAX_MESSAGE_BYTES: usize = 16 * 1024;
pub(super) const TRUNCATED: &str = "\n… (truncated)";

/// Every check run, newest first by (create_time, id).
pub(super) fn newest_first(checks: &[Check]) -> Vec<&Check> {
    let mut runs: Vec<&Check> = checks.iter().collect();
    runs.sort_by_key(|run| Reverse((run.create_time, run.id)));
    runs
}

/// The checks whose newest run on the head commit failed, with log tails.
pub(super) fn ci_failure_message(checks: &[Check], head: Option<&str>) -> String {
    let mut seen = BTreeSet::new();
    let mut failed: Vec<&Check> = newest_first(checks)
        .into_iter()
        .filter(|run| Some(run.commit_sha.as_str()) == head && seen.insert(run.name.as_str()))
        .filter(|run| run.status == CheckStatus::Failed)
        .collect();
    failed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut message = format!("CI is failing on {}.", head.unwrap_or("the head commit"));
    for run in failed {
        let log = run.log_tail.as_deref().unwrap_or("(no log recorded)");
        message.push_str(&format!("\n\n## {} failed\n{log}", run.name));
    }
    truncated(message)
}

/// A stable digest of the sorted comment ids: the same set, the same key.
pub(super) fn comment_set_digest(comments: &[&Comment]) -> String {
    let ids: BTreeSet<&str> = comments.iter().map(|comment| comment.id.as_str()).collect();
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.len().to_le_bytes());
        hasher.update(id.as_bytes());
    }
    let digest = hasher.finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(super) fn review_message(unresolved: &[&Comment]) -> String {
    let mut message = String::from("Unresolved review comments:");
    for comment in unresolved {
        let author = comment.author.as_deref().unwrap_or("a reviewer");
        let place = match (&comment.path, comment.line) {
            (Some(path), Some(line)) => format!(" on {path}:{line}"),
            (Some(path), None) => format!(" on {path}"),
            _ => String::new(),
        };
        message.push_str(&format!("\n- {author}{place}: {}", comment.body));
    }
    truncated(message)
}

/// Cuts a message to [`MAX_MESSAGE_BYTES`] on a character boundary.
pub(super) fn truncated(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - TRUNCATED.len();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(TRUNCATED);
    }
    message
}
