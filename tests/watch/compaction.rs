//! Retention: what compaction deletes (by count and by age, from the
//! front), cursors it compacted refused with the oldest kept seq, and a
//! stream whose cursor it takes mid-flight.

use super::*;

/// Waits for the compaction pass the server runs at start-up. On a loaded
/// machine it can start late, wait for a test's append to release the write
/// lock, and then compact the test's old events itself before the test's
/// own pass.
async fn startup_compaction_done(server: &TestServer) {
    let mut passes = server.compactor.passes();
    tokio::time::timeout(PATIENCE, passes.wait_for(|passes| *passes >= 1))
        .await
        .expect("the start-up compaction pass ran")
        .expect("the compactor is alive");
}

/// The log's (oldest kept seq, head seq), as GetHead tells them.
async fn bounds(server: &TestServer) -> (i64, i64) {
    let head = server
        .events()
        .get_head(GetHeadRequest {})
        .await
        .unwrap()
        .into_inner();
    (head.oldest_seq, head.head_seq)
}

/// Appends `count` events dated at the epoch, i.e. far past any retention.
async fn append_old_events(server: &TestServer, count: usize) {
    append_events(server, &[(true, count)], 1).await;
}

/// Appends runs of events in one transaction, behind the server's back:
/// each run `(old, count)` is dated at the epoch (far past any retention)
/// when `old`, else now; each event's entity id is `id_len` bytes long
/// (the id is sent on the wire; a test kind's payload is not).
async fn append_events(server: &TestServer, runs: &[(bool, usize)], id_len: usize) {
    let entity_id = "0".repeat(id_len.max(1));
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let mut db = server.direct().await;
    let mut conn = db.conn();
    begin_external(&mut conn).await;
    for &(old, count) in runs {
        let event_type = if old { "test.old" } else { "test.young" };
        for _ in 0..count {
            query("INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time) VALUES ($1, 'test', $2, $3, $4)")
                .bind(event_type)
                .bind(&entity_id)
                .bind(Json("{}"))
                .bind(now)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    // On PostgreSQL the append trigger stamps the time: set the old ones back.
    query("UPDATE change_log SET create_time = 0 WHERE event_type = 'test.old'")
        .execute(&mut conn)
        .await
        .unwrap();
    query("COMMIT").execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn compaction_keeps_the_newest_10000_and_refuses_compacted_cursors() {
    let server = start().await;
    startup_compaction_done(&server).await;
    append_old_events(&server, 10_100).await;
    for _ in 0..5 {
        write(&server, "gate_failure", "s-0", 1).await;
    }
    let deleted = server.compactor.run_once().await.unwrap();
    assert_eq!(deleted, 105, "old history goes, the newest 10,000 stay");
    assert_eq!(
        server.compactor.run_once().await.unwrap(),
        0,
        "never below the newest 10,000"
    );
    let (oldest_seq, head_seq) = bounds(&server).await;
    assert_eq!((oldest_seq, head_seq), (106, 10_105));

    // A compacted cursor: OUT_OF_RANGE with the oldest kept seq.
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: 50,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::OutOfRange, "CURSOR_COMPACTED");
    assert_eq!(
        error_metadata(&status, "oldest_seq").as_deref(),
        Some("106")
    );

    // A kept cursor continues exactly, and 0 means from the oldest kept.
    let table = read_table(&mut server.direct().await.conn()).await;
    for after_seq in [105, 0, 10_000] {
        let mut live = Live::open(&server, after_seq, EventFilter::default())
            .await
            .unwrap();
        live.reach(head_seq).await;
        let segment = live.disconnect();
        let first = segment
            .received
            .iter()
            .flat_map(|r| &r.seqs)
            .next()
            .copied();
        assert_eq!(
            first,
            Some(if after_seq == 0 { 106 } else { after_seq + 1 })
        );
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

/// With more events than the newest 10,000, compaction still goes by age:
/// it deletes the events older than the retention from the front, over
/// more than one of its 1,000-event transactions, and stops at the first
/// one that is not old enough, even when older ones follow it (a clock
/// stepped back): the kept log stays a gapless suffix.
#[tokio::test]
async fn compaction_deletes_by_age_from_the_front_and_stops_at_the_first_young_event() {
    let server = start().await;
    startup_compaction_done(&server).await;
    assert_eq!(head(&server).await, 0, "a fresh log");
    append_events(
        &server,
        &[(true, 1_500), (false, 1), (true, 200), (false, 12_000)],
        1,
    )
    .await;
    assert_eq!(server.compactor.run_once().await.unwrap(), 1_500);
    assert_eq!(
        server.compactor.run_once().await.unwrap(),
        0,
        "the young event at 1,501 keeps the old ones behind it"
    );
    assert_eq!(bounds(&server).await, (1_501, 13_701));
}

#[tokio::test]
async fn a_stream_whose_cursor_is_compacted_under_it_ends_with_cursor_compacted() {
    let server = start().await;
    startup_compaction_done(&server).await;
    // 2 KiB events over a connection with 64 KiB flow-control windows: the
    // transport and the stream's queue hold about 1,300 of them (measured
    // with all the time in the world), so the unread stream below is parked
    // far before seq 6001 when compaction runs. (With small events, transport buffers could hold the whole
    // backlog: the stream would pass the compacted range before it was
    // deleted and rightly never fail.)
    append_events(&server, &[(true, 16_000)], 2048).await;
    write(&server, "gate_failure", "s-0", 1).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    // Opened at the start, then not read: it is parked far behind.
    let mut stream = bosun::pb::events_client::EventsClient::new(channel)
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(server.compactor.run_once().await.unwrap(), 6_001);
    let mut seqs = Vec::new();
    let status = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
        {
            // A progress message means the stream caught up with the head,
            // which it cannot do across compacted history: fail rather than
            // read progress messages forever.
            Ok(Some(message)) if message.progress => panic!(
                "the stream caught up to {} without ending; it delivered up to {:?}",
                message.resume_seq,
                seqs.last()
            ),
            Ok(Some(message)) => seqs.extend(message.events.iter().map(|e| e.seq)),
            Ok(None) => panic!("the stream must end with an error"),
            Err(status) => break status,
        }
    };
    assert_error(&status, Code::OutOfRange, "CURSOR_COMPACTED");
    // Compaction deletes in small transactions: the stream may have seen any
    // of the intermediate oldest seqs, all beyond what it had delivered.
    let oldest: i64 = error_metadata(&status, "oldest_seq")
        .unwrap()
        .parse()
        .unwrap();
    // after_seq 0 starts at the oldest seq kept when the stream first reads,
    // which under load can come after compaction's first small transactions.
    let first = seqs.first().copied().unwrap_or(1);
    let last = seqs.last().copied().unwrap_or(0);
    assert!(
        oldest > last + 1 && oldest <= 6002,
        "oldest {oldest} after delivering {first}..={last}"
    );
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "what it got before was gapless"
    );
}
