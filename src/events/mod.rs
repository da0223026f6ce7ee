//! The change log (SPEC §4): every committed state change appends one row to
//! `change_log` through triggers (see `migrations/0001_change_log.sql`). This
//! module reads it: the head, pages of history, live streams that resume
//! from any kept seq, and the retention job that compacts old history.

mod compaction;
mod convert;
mod grpc;
mod store;
mod tail;
mod watch;
mod wire;

use crate::error::{ErrorCode, FieldViolation, ServiceError, Violations};
use crate::storage::StoreError;
use crate::time::UnixMicros;

pub use compaction::{Compactor, KEEP_NEWEST};
pub use grpc::EventsApi;
pub use watch::Watchers;
pub use wire::EventsServer;

/// Which events to return; unset parts match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventFilter {
    /// Any of these prefixes of event_type; empty = all.
    pub event_type_prefixes: Vec<String>,
    pub project_id: Option<String>,
    pub session_id: Option<String>,
    pub task_id: Option<i64>,
}

/// One row of the change log, payload still JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_type: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub project_id: Option<String>,
    pub session_id: Option<String>,
    pub task_id: Option<i64>,
    pub payload: String,
    pub create_time: UnixMicros,
}

/// The ends of the kept log; both 0 when it is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    pub head_seq: i64,
    pub oldest_seq: i64,
}

impl LogBounds {
    /// Whether events right after `after_seq` were compacted away: a reader
    /// at that cursor would miss them. 0 means "from the oldest kept".
    pub fn is_compacted(&self, after_seq: i64) -> bool {
        after_seq > 0 && self.oldest_seq > after_seq + 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    InvalidArgument(Violations),
    #[error("events after seq {after_seq} were compacted; the oldest kept is {oldest_seq}")]
    CursorCompacted { after_seq: i64, oldest_seq: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for EventError {
    fn from(violations: Violations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl ServiceError for EventError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::CursorCompacted { .. } => ErrorCode::OutOfRange,
            Self::Store(err) => err.code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::CursorCompacted { .. } => "CURSOR_COMPACTED",
            Self::Store(err) => err.reason(),
        }
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::CursorCompacted { oldest_seq, .. } => {
                vec![("oldest_seq", oldest_seq.to_string())]
            }
            _ => Vec::new(),
        }
    }

    fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations.as_slice(),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_is_detected_only_when_events_were_skipped() {
        let bounds = LogBounds {
            head_seq: 100,
            oldest_seq: 50,
        };
        let cases = [
            (0, false),
            (48, true),
            (49, false),
            (50, false),
            (99, false),
            (200, false),
            (1, true),
        ];
        for (after_seq, compacted) in cases {
            assert_eq!(
                bounds.is_compacted(after_seq),
                compacted,
                "after {after_seq}"
            );
        }
        let empty = LogBounds {
            head_seq: 0,
            oldest_seq: 0,
        };
        assert!(!empty.is_compacted(10));
    }
}
