//! The order of deliveries about one forge or tracker entity. Senders retry, redeliver
//! and send in parallel, so a delivery can arrive after a newer one about
//! the same pull request, check run, check suite, workflow run or commit
//! status. Each delivery that says where it stands carries a [`Position`]:
//! the entity's key and a rank compared lexicographically. The shim keeps
//! the highest rank it applied per entity (in its own file, beside the
//! dedup memory); a delivery ranked below it is stale: answered 200
//! `stale`, nothing called.
//!
//! | entity | rank |
//! | --- | --- |
//! | pull request (events and reviews) | `updated_at` |
//! | check run (by id) | status (queued < in_progress < completed), then `completed_at` or `started_at` |
//! | check suite (by id) | `updated_at`, then status |
//! | workflow run (by id) | `run_attempt`, then `updated_at`, then status |
//! | commit status (commit and context) | `updated_at` |
//! | Plane issue (by id) | `data.updated_at`; rises only when a change was applied |
//!
//! A delivery without the fields of its rank has no position and is always
//! applied (an equal rank is applied too: GitHub sends several events with
//! one `updated_at`).

use chrono::DateTime;

/// Where a delivery stands among those about one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The entity, e.g. "codertocat/hello-world/check_run/128620228".
    pub entity: String,
    pub rank: Rank,
}

/// Compared lexicographically: higher is newer.
pub type Rank = [i64; 3];

/// Whether a delivery at `incoming` is older than what was applied.
pub fn is_stale(applied: Option<Rank>, incoming: Rank) -> bool {
    applied.is_some_and(|applied| incoming < applied)
}

/// A check's or run's progress: queued (and requested, waiting, pending)
/// below in_progress below completed.
pub fn status_rank(status: &str) -> i64 {
    match status.to_ascii_lowercase().as_str() {
        "completed" => 2,
        "in_progress" | "running" => 1,
        _ => 0,
    }
}

/// An RFC 3339 time as microseconds since the epoch; `None` when absent or
/// unreadable.
pub fn micros(time: Option<&str>) -> Option<i64> {
    DateTime::parse_from_rfc3339(time?)
        .ok()
        .map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_ranks_are_stale() {
        let cases = [
            (None, [1, 0, 0], false),
            (Some([2, 5, 0]), [0, 5, 0], true),
            (Some([2, 5, 0]), [2, 5, 0], false),
            (Some([2, 5, 0]), [2, 6, 0], false),
            (Some([2, 5, 0]), [2, 4, 9], true),
            (Some([1, 9, 9]), [2, 0, 0], false),
        ];
        for (applied, incoming, stale) in cases {
            assert_eq!(
                is_stale(applied, incoming),
                stale,
                "{applied:?} {incoming:?}"
            );
        }
    }

    #[test]
    fn statuses_and_times() {
        let ranks: Vec<i64> = ["queued", "requested", "waiting", "in_progress", "COMPLETED"]
            .iter()
            .map(|s| status_rank(s))
            .collect();
        assert_eq!(ranks, [0, 0, 0, 1, 2]);
        assert_eq!(
            micros(Some("2019-05-15T15:20:33Z")),
            Some(1_557_933_633_000_000)
        );
        assert_eq!(
            micros(Some("2019-05-15T17:20:33+02:00")),
            micros(Some("2019-05-15T15:20:33Z"))
        );
        assert_eq!(micros(Some("yesterday")), None);
        assert_eq!(micros(None), None);
    }
}
