//! The stream's guarantees under random schedules (proptest): writers,
//! watchers with filters, disconnects and resumes; then a slow reader and a
//! resume across a server restart.

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Write {
        lesson_type: usize,
        session: usize,
        task: usize,
        concurrent: usize,
    },
    ExternalTransaction {
        size: usize,
        session: usize,
    },
    Open {
        filter: usize,
        from_head: bool,
    },
    Disconnect {
        watcher: usize,
    },
    Resume {
        watcher: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..4usize, 1..6usize)
            .prop_map(|(lesson_type, session, task, concurrent)| Op::Write { lesson_type, session, task, concurrent }),
        1 => (2..5usize, 0..3usize).prop_map(|(size, session)| Op::ExternalTransaction { size, session }),
        2 => (0..6usize, any::<bool>()).prop_map(|(filter, from_head)| Op::Open { filter, from_head }),
        1 => (0..8usize).prop_map(|watcher| Op::Disconnect { watcher }),
        1 => (0..8usize).prop_map(|watcher| Op::Resume { watcher }),
    ]
}

async fn run_ops(ops: Vec<Op>) -> Result<(), String> {
    let server = start().await;
    let filters = filters();
    let mut watchers: Vec<Watcher> = Vec::new();
    let mut transactions = Vec::new();
    for op in ops {
        match op {
            Op::Write {
                lesson_type,
                session,
                task,
                concurrent,
            } => {
                let lesson_type = ["gate_failure", "merge_hold", "transient_retry"][lesson_type];
                let session = format!("s-{session}");
                join_all(
                    (0..concurrent)
                        .map(|_| write(&server, lesson_type, session.clone(), task as i64)),
                )
                .await;
            }
            Op::ExternalTransaction { size, session } => {
                transactions.push(external_transaction(&server, size, session).await)
            }
            Op::Open { filter, from_head } => {
                let after = if from_head { head(&server).await } else { 0 };
                watchers.push(Watcher::open(&server, after, filters[filter].clone()).await);
            }
            Op::Disconnect { watcher } => {
                if let Some(watcher) = watchers.get_mut(watcher) {
                    watcher.disconnect();
                }
            }
            Op::Resume { watcher } => {
                if let Some(watcher) = watchers.get_mut(watcher) {
                    watcher.resume(&server).await;
                }
            }
        }
    }
    // A last write wakes every stream (external writes do not), then every
    // live stream must reach the head.
    write(&server, "sentinel", "s-9", 9).await;
    let head = head(&server).await;
    for watcher in &mut watchers {
        if let Some(live) = watcher.live.as_mut() {
            live.reach(head).await;
        }
    }
    let table = read_table(&mut server.direct().await.conn()).await;
    for (index, watcher) in watchers.into_iter().enumerate() {
        check(&watcher.history(), &table, &transactions)
            .map_err(|err| format!("watcher {index}: {err}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        // Each case starts a server: bound the shrinking a failure triggers.
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_of_writers_watchers_disconnects_and_resumes(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run_ops(ops)).map_err(TestCaseError::fail)?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_back_nobody_and_still_gets_everything() {
    let server = start().await;
    // The slow watcher's stream is open but nobody reads it yet.
    let mut slow_stream = server
        .events()
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut fast = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    // ~10 MB of events: far more than transport buffers hold, so the slow
    // stream really falls behind and must be caught up from the table.
    let root_cause = "x".repeat(4096);
    for chunk in 0..40 {
        join_all((0..64).map(|i| {
            let lesson = Lesson {
                lesson_type: "gate_failure".into(),
                session_id: format!("s-{}", (chunk + i) % 3),
                root_cause: root_cause.clone(),
                ..Lesson::default()
            };
            let mut client = server.lessons();
            async move {
                client
                    .record_lesson(RecordLessonRequest {
                        request_id: String::new(),
                        lesson: Some(lesson),
                    })
                    .await
                    .unwrap()
            }
        }))
        .await;
    }
    let head = head(&server).await;
    assert_eq!(
        head,
        40 * 64,
        "every write committed while a reader was stalled"
    );
    fast.reach(head).await;

    let mut slow = Segment::default();
    while slow.resume_point() < head {
        let message = tokio::time::timeout(PATIENCE, slow_stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        slow.received.push(Received::from(&message));
    }
    let table = read_table(&mut server.direct().await.conn()).await;
    for segment in [fast.disconnect(), slow] {
        check(
            &WatcherHistory {
                filter: EventFilter::default(),
                segments: vec![segment],
            },
            &table,
            &[],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_stream_resumes_across_a_server_restart_with_nothing_lost_or_repeated() {
    let mut server = start().await;
    let filter = EventFilter {
        session_id: "s-1".into(),
        ..Default::default()
    };
    let mut all = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    let mut mine = Watcher::open(&server, 0, filter.clone()).await;
    for i in 0..60 {
        write(&server, "gate_failure", format!("s-{}", i % 3), 1).await;
    }
    let before = head(&server).await;
    all.reach(before).await;
    mine.live.as_mut().unwrap().reach(before).await;

    // Stop mid-stream: each stream ends with a resumable error.
    let (all_before, status) = {
        let stopping = server.stop();
        let ((), ended) = tokio::join!(stopping, all.ended());
        ended
    };
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
    let (mine_before, status) = mine.live.take().unwrap().ended().await;
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
    mine.done.push(mine_before);

    server.restart().await;
    mine.resume(&server).await;
    let mut all_after = Live::open(&server, all_before.resume_point(), EventFilter::default())
        .await
        .unwrap();
    for i in 0..60 {
        write(&server, "merge_hold", format!("s-{}", i % 3), 2).await;
    }
    let after = head(&server).await;
    all_after.reach(after).await;
    mine.live.as_mut().unwrap().reach(after).await;

    let table = read_table(&mut server.direct().await.conn()).await;
    assert_eq!(table.len(), 120);
    let all_history = WatcherHistory {
        filter: EventFilter::default(),
        segments: vec![all_before, all_after.disconnect()],
    };
    check(&all_history, &table, &[]).unwrap();
    check(&mine.history(), &table, &[]).unwrap();
}
