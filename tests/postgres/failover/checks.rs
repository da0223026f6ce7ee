//! What the test reads back to check: lessons and events through a
//! replica, holes in the change log, and overlapping background passes.

use super::*;
use sqlx::PgPool;

/// 1 and 2, through the replicas: every acknowledged lesson is listed, and
/// every acknowledged session read, by a replica other than the one that
/// acknowledged it, as it was acknowledged.
pub async fn acknowledged_writes_read_elsewhere(
    replicas: &Replicas,
    lessons: &LessonLedger,
    sessions: &SessionLedger,
    context: &str,
) {
    let listed: Vec<BTreeMap<String, i64>> = {
        let mut listed = Vec::new();
        for index in 0..REPLICAS {
            let (_, _, channel) = replicas.get(index).unwrap();
            listed.push(list_lessons(channel).await);
        }
        listed
    };
    for (request_id, ack) in &lessons.acked {
        for (index, stored) in listed.iter().enumerate() {
            if index == ack.replica {
                continue;
            }
            assert_eq!(
                stored.get(request_id),
                Some(&ack.value),
                "{context}: lesson {request_id} (id {}, acknowledged by replica {}) as replica {index} lists it",
                ack.value,
                ack.replica
            );
        }
    }
    for (session_id, ack) in &sessions.acked {
        let other = (ack.replica + 1) % REPLICAS;
        let (_, _, channel) = replicas.get(other).unwrap();
        let stored = SessionsClient::new(channel)
            .get_session(GetSessionRequest {
                session_id: session_id.clone(),
            })
            .await
            .unwrap_or_else(|status| {
                panic!("{context}: session {session_id} on replica {other}: {status}")
            })
            .into_inner();
        assert_eq!(
            (stored.issue_id.as_str(), stored.state),
            (ack.value.spawn_request.as_str(), ack.value.state),
            "{context}: session {session_id} as replica {other} reads it (acknowledged by replica {})",
            ack.replica
        );
    }
}

/// Every lesson a replica lists: work_item_id -> id.
pub async fn list_lessons(channel: Channel) -> BTreeMap<String, i64> {
    let mut client = LessonsClient::new(channel);
    let mut lessons = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_lessons(ListLessonsRequest {
                page_size: 1000,
                page_token,
                ..ListLessonsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        for lesson in page.lessons {
            lessons.insert(lesson.work_item_id, lesson.id);
        }
        if page.next_page_token.is_empty() {
            return lessons;
        }
        page_token = page.next_page_token;
    }
}

/// A replica's ListEvents pages up to `head`: (seq, event_type).
pub async fn list_events(channel: Channel, head: i64) -> Vec<(i64, String)> {
    let mut client = EventsClient::new(channel);
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_events(ListEventsRequest {
                page_size: 1000,
                page_token,
                ..ListEventsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        events.extend(
            page.events
                .into_iter()
                .take_while(|event| event.seq <= head)
                .map(|event| (event.seq, event.event_type)),
        );
        if page.next_page_token.is_empty() || events.last().is_some_and(|e| e.0 >= head) {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Up to ten seqs of 1..=head missing from `seqs`.
pub fn first_holes(seqs: impl Iterator<Item = i64>, head: i64) -> Vec<i64> {
    let present: std::collections::HashSet<i64> = seqs.collect();
    (1..=head)
        .filter(|seq| !present.contains(seq))
        .take(10)
        .collect()
}

/// Check 2, on the database: one row per request_id, and exactly the
/// acknowledged ones; the project registered once.
pub async fn each_request_stored_once(
    db: &PgPool,
    lessons: &LessonLedger,
    sessions: &SessionLedger,
    context: &str,
) {
    let stored_lessons: Vec<(String, i64)> =
        sqlx::query_as("SELECT work_item_id, id FROM lessons WHERE work_item_id LIKE 'lesson-%'")
            .fetch_all(db)
            .await
            .unwrap();
    let by_request: BTreeMap<&str, Vec<i64>> =
        stored_lessons
            .iter()
            .fold(BTreeMap::new(), |mut by_request, (request_id, id)| {
                by_request
                    .entry(request_id.as_str())
                    .or_insert_with(Vec::new)
                    .push(*id);
                by_request
            });
    let doubled: Vec<_> = by_request.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "{context}: request_ids applied twice: {doubled:?}"
    );
    assert_eq!(
        stored_lessons.len(),
        lessons.acked.len(),
        "{context}: lessons stored vs distinct acknowledged request_ids"
    );
    for (request_id, ack) in &lessons.acked {
        assert_eq!(
            by_request.get(request_id.as_str()),
            Some(&vec![ack.value]),
            "{context}: lesson {request_id}"
        );
    }
    let stored_sessions: Vec<(String, String)> =
        sqlx::query_as("SELECT id, issue_id FROM sessions WHERE project_id = $1")
            .bind(PROJECT)
            .fetch_all(db)
            .await
            .unwrap();
    let mut issues: Vec<&str> = stored_sessions.iter().map(|(_, i)| i.as_str()).collect();
    issues.sort_unstable();
    issues.dedup();
    assert_eq!(
        issues.len(),
        stored_sessions.len(),
        "{context}: a SpawnSession request_id stored twice"
    );
    assert_eq!(
        stored_sessions.len(),
        sessions.acked.len(),
        "{context}: sessions stored vs acknowledged spawns"
    );
    let projects_stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(projects_stored, 1, "{context}: the project registered once");
}

/// Check 5's findings, all at once: they tell apart a lease that does not
/// exclude from bookkeeping that records what did not happen. Each job must
/// have run passes, some after the last failover, or the check would prove
/// nothing. `ends` are the kills' times, where a killed replica's pass ended
/// at the latest.
pub async fn background_pass_findings(
    db: &PgPool,
    runs: &[Run],
    ends: &[i64],
    last_kill: i64,
    context: &str,
    tails: &str,
) -> Vec<String> {
    let mut findings = Vec::new();
    for job in ["usage", "tool_errors", "reconciler"] {
        let runs: Vec<&Run> = runs.iter().filter(|run| run.job == job).collect();
        let minimum = if job == "reconciler" { 4 } else { 20 };
        assert!(
            runs.len() >= minimum && runs.iter().any(|run| run.start_time > last_kill),
            "{context}: {job} ran {} passes, none after the last failover: check 5 would prove nothing\n{tails}",
            runs.len()
        );
        let ran: Vec<(i64, i64, i64)> = runs
            .iter()
            .map(|run| (run.id, run.start_time, run.ran_until(ends)))
            .collect();
        if let Some(overlap) = overlap(&ran) {
            findings.push(format!("{job} passes ran at once: {overlap}"));
        }
        let recorded: Vec<(i64, i64, i64)> = runs
            .iter()
            .filter_map(|run| Some((run.id, run.start_time, run.end_time?)))
            .collect();
        if let Some(overlap) = overlap(&recorded) {
            findings.push(format!(
                "{job} passes RECORDED (start_time, end_time) as running at once: {overlap}"
            ));
        }
    }
    let ended_twice: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT entity_kind, entity_id, COUNT(*) FROM change_log \
         WHERE entity_kind IN ('processor_run', 'reconciler_run') \
           AND payload->>'state' <> 'running' \
         GROUP BY entity_kind, entity_id HAVING COUNT(*) > 1 ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    if !ended_twice.is_empty() {
        findings.push(format!(
            "{} passes ended twice in the change log (ended by another replica's start while \
             running, then by their own end), e.g. {:?}",
            ended_twice.len(),
            &ended_twice[..ended_twice.len().min(5)]
        ));
    }
    findings
}

/// A background pass as its table records it.
#[derive(Debug, sqlx::FromRow)]
pub struct Run {
    pub job: String,
    pub id: i64,
    pub state: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub error: Option<String>,
}

impl Run {
    /// Left unfinished by a killed replica: RUNNING still, or ended by the
    /// next start of a replica.
    pub fn interrupted(&self) -> bool {
        self.state == "running"
            || self
                .error
                .as_deref()
                .is_some_and(|error| error.contains("before the pass ended"))
    }

    /// Until when the pass surely ran. A finished pass: its end. An
    /// interrupted one ran until its replica was killed, which is no
    /// earlier than the first kill after its start (`kills`, in order; the
    /// last ones end the test), nor than its recorded end if that is
    /// earlier.
    pub fn ran_until(&self, kills: &[i64]) -> i64 {
        if !self.interrupted() {
            return self.end_time.expect("a finished pass has an end");
        }
        let killed = kills
            .iter()
            .copied()
            .find(|kill| *kill >= self.start_time)
            .unwrap_or(i64::MAX);
        self.end_time.unwrap_or(i64::MAX).min(killed)
    }
}

/// How many of the (id, start, end) intervals start while an earlier one
/// still runs, and the first such pair, described.
pub fn overlap(runs: &[(i64, i64, i64)]) -> Option<String> {
    let mut runs = runs.to_vec();
    runs.sort_by_key(|run| (run.1, run.2));
    let mut latest: Option<(i64, i64, i64)> = None;
    let mut first = None;
    let mut count = 0;
    for run in runs {
        if let Some(previous) = latest
            && run.1 < previous.2
        {
            count += 1;
            first.get_or_insert_with(|| {
                format!(
                    "pass {} [{}, {}] and pass {} [{}, {}]",
                    previous.0, previous.1, previous.2, run.0, run.1, run.2
                )
            });
        }
        if latest.is_none_or(|previous| run.2 > previous.2) {
            latest = Some(run);
        }
    }
    first.map(|first| format!("{count} started while another ran; first {first}"))
}

#[test]
pub fn the_overlap_check_finds_overlaps_and_only_them() {
    assert_eq!(overlap(&[(1, 0, 10), (2, 10, 20), (3, 25, 30)]), None);
    assert!(overlap(&[(1, 0, 10), (2, 9, 20)]).is_some());
    // Contained in a long pass, after a short one.
    assert!(overlap(&[(1, 0, 100), (2, 10, 20), (3, 50, 60)]).is_some());
    let killed = Run {
        job: "usage".into(),
        id: 1,
        state: "failed".into(),
        start_time: 5,
        end_time: Some(500),
        error: Some("interrupted: the bosun running the pass stopped, or lost its lease, before the pass ended".into()),
    };
    assert_eq!(killed.ran_until(&[3, 40, 90]), 40);
}
