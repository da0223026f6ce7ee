//! The history checker: verifies what Watch streams delivered against the
//! change log's content. For each stream segment (one Watch call) and after
//! EVERY message it received, the events delivered so far must be exactly
//! the table's events that match the filter with seq in (after_seq,
//! resume_seq]. That one check gives:
//! - ordered and unique: delivered seqs equal a sorted set, in order;
//! - reliable: no matching event is missing, and none extra arrives;
//! - truthful cursors: every resume_seq is a safe place to resume from;
//! - resumable: a segment opened after another's last resume_seq continues
//!   with exactly the next matching event (checked like any segment).
//!
//! Atomicity: a progress message never lands inside a transaction, i.e. no
//! known multi-event transaction has seqs on both sides of its resume_seq.

#![allow(dead_code)]

use bosun::pb::{self, EventFilter};

/// A change-log row, as read from the table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TableEvent {
    pub seq: i64,
    pub event_type: String,
    pub project_id: Option<String>,
    pub session_id: Option<String>,
    pub task_id: Option<i64>,
}

bosun::direct_row!(TableEvent {
    seq,
    event_type,
    project_id,
    session_id,
    task_id,
});

/// One message a stream delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub seqs: Vec<i64>,
    pub resume_seq: i64,
    pub progress: bool,
}

impl From<&pb::WatchResponse> for Received {
    fn from(response: &pb::WatchResponse) -> Self {
        Self {
            seqs: response.events.iter().map(|e| e.seq).collect(),
            resume_seq: response.resume_seq,
            progress: response.progress,
        }
    }
}

/// One Watch call: where it started and what it delivered, in order.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub after_seq: i64,
    pub received: Vec<Received>,
}

impl Segment {
    /// Where a resume must start: the last resume_seq, or the start.
    pub fn resume_point(&self) -> i64 {
        self.received
            .last()
            .map_or(self.after_seq, |r| r.resume_seq)
    }
}

/// Everything one watcher saw, across disconnects and resumes.
#[derive(Debug, Clone)]
pub struct WatcherHistory {
    pub filter: EventFilter,
    pub segments: Vec<Segment>,
}

pub fn matches(filter: &EventFilter, event: &TableEvent) -> bool {
    (filter.event_type_prefixes.is_empty()
        || filter
            .event_type_prefixes
            .iter()
            .any(|p| event.event_type.starts_with(p.as_str())))
        && (filter.project_id.is_empty()
            || event.project_id.as_deref() == Some(filter.project_id.as_str()))
        && (filter.session_id.is_empty()
            || event.session_id.as_deref() == Some(filter.session_id.as_str()))
        && (filter.task_id == 0 || event.task_id == Some(filter.task_id))
}

/// Checks one watcher; `transactions` lists the seqs of each known
/// multi-event transaction.
pub fn check(
    history: &WatcherHistory,
    table: &[TableEvent],
    transactions: &[Vec<i64>],
) -> Result<(), String> {
    let matching: Vec<i64> = table
        .iter()
        .filter(|e| matches(&history.filter, e))
        .map(|e| e.seq)
        .collect();
    let head = table.iter().map(|e| e.seq).max().unwrap_or(0);
    for (index, segment) in history.segments.iter().enumerate() {
        if index > 0 {
            let previous = history.segments[index - 1].resume_point();
            if segment.after_seq != previous {
                return Err(format!(
                    "segment {index} resumed after {} but the last cursor was {previous}",
                    segment.after_seq
                ));
            }
        }
        let mut delivered: Vec<i64> = Vec::new();
        let mut last_resume = segment.after_seq;
        for (position, message) in segment.received.iter().enumerate() {
            let at = format!("segment {index} message {position} {message:?}");
            if message.resume_seq < last_resume {
                return Err(format!("{at}: resume_seq went back from {last_resume}"));
            }
            if message.resume_seq > head {
                return Err(format!("{at}: resume_seq beyond the head {head}"));
            }
            if message.progress != message.seqs.is_empty() {
                return Err(format!(
                    "{at}: progress messages, and only they, carry no events"
                ));
            }
            delivered.extend(&message.seqs);
            let expected: Vec<i64> = matching
                .iter()
                .copied()
                .filter(|seq| *seq > segment.after_seq && *seq <= message.resume_seq)
                .collect();
            if delivered != expected {
                let missing = first_ten(expected.iter().filter(|s| !delivered.contains(s)));
                let extra = first_ten(delivered.iter().filter(|s| !expected.contains(s)));
                let at = format!(
                    "segment {index} message {position} (resume_seq {})",
                    message.resume_seq
                );
                return Err(format!(
                    "{at}: delivered {} events, expected {} (missing {missing}, unexpected or repeated {extra}; order {})",
                    delivered.len(),
                    expected.len(),
                    if delivered.windows(2).all(|w| w[0] < w[1]) {
                        "ok"
                    } else {
                        "broken"
                    }
                ));
            }
            if message.progress {
                for transaction in transactions {
                    let (first, last) = (transaction[0], transaction[transaction.len() - 1]);
                    if first <= message.resume_seq && message.resume_seq < last {
                        return Err(format!(
                            "{at}: the bookmark splits transaction {transaction:?}"
                        ));
                    }
                }
            }
            last_resume = message.resume_seq;
        }
    }
    Ok(())
}

/// Up to ten seqs, and how many more there are.
fn first_ten<'a>(seqs: impl Iterator<Item = &'a i64>) -> String {
    let seqs: Vec<i64> = seqs.copied().collect();
    match seqs.len() {
        0..=10 => format!("{seqs:?}"),
        n => format!("{:?} and {} more", &seqs[..10], n - 10),
    }
}

/// The whole change log, read directly from the database.
pub async fn read_table(conn: &mut bosun::storage::Conn<'_>) -> Vec<TableEvent> {
    bosun::storage::sql::query(
        "SELECT seq, event_type, project_id, session_id, task_id FROM change_log ORDER BY seq",
    )
    .fetch_all(conn)
    .await
    .expect("read change_log")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<TableEvent> {
        (1..=6)
            .map(|seq| TableEvent {
                seq,
                event_type: if seq % 2 == 0 {
                    "lesson.updated".into()
                } else {
                    "lesson.created".into()
                },
                project_id: None,
                session_id: None,
                task_id: None,
            })
            .collect()
    }

    fn events(seqs: &[i64], resume_seq: i64) -> Received {
        Received {
            seqs: seqs.to_vec(),
            resume_seq,
            progress: false,
        }
    }

    fn progress(resume_seq: i64) -> Received {
        Received {
            seqs: vec![],
            resume_seq,
            progress: true,
        }
    }

    fn history(segments: Vec<Segment>) -> WatcherHistory {
        WatcherHistory {
            filter: EventFilter::default(),
            segments,
        }
    }

    #[test]
    fn accepts_a_good_history_and_catches_each_broken_guarantee() {
        let table = table();
        let good = history(vec![
            Segment {
                after_seq: 0,
                received: vec![events(&[1, 2], 2), events(&[3], 3)],
            },
            Segment {
                after_seq: 3,
                received: vec![events(&[4, 5, 6], 6), progress(6)],
            },
        ]);
        assert_eq!(check(&good, &table, &[vec![4, 5]]), Ok(()));
        let broken = [
            (
                "gap",
                history(vec![Segment {
                    after_seq: 0,
                    received: vec![events(&[1, 3], 3)],
                }]),
            ),
            (
                "duplicate",
                history(vec![Segment {
                    after_seq: 0,
                    received: vec![events(&[1, 2], 2), events(&[2, 3], 3)],
                }]),
            ),
            (
                "order",
                history(vec![Segment {
                    after_seq: 0,
                    received: vec![events(&[2, 1], 2)],
                }]),
            ),
            (
                "lying cursor",
                history(vec![Segment {
                    after_seq: 0,
                    received: vec![events(&[1], 2)],
                }]),
            ),
            (
                "bad resume",
                history(vec![
                    Segment {
                        after_seq: 0,
                        received: vec![events(&[1], 1)],
                    },
                    Segment {
                        after_seq: 2,
                        received: vec![events(&[3], 3)],
                    },
                ]),
            ),
            (
                "split transaction",
                history(vec![Segment {
                    after_seq: 0,
                    received: vec![events(&[1, 2, 3, 4], 4), progress(4)],
                }]),
            ),
        ];
        for (name, history) in broken {
            assert!(
                check(&history, &table, &[vec![4, 5]]).is_err(),
                "{name} must be caught"
            );
        }
    }
}
