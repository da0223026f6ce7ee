//! The history of passes: GetStatus, ListReconcilerRuns and the change log
//! show every pass; the background loop runs at its interval; a pass left
//! running by a crash is marked failed on the next start.

use super::*;

#[tokio::test]
async fn status_runs_and_the_change_log_show_every_pass() {
    let plane = FakePlane::start().await;
    plane.add(PLANE_DOWN, "DOWN", vec![]);
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |config| {
        config.replica_name = Some("replica-a".into());
    })
    .await;
    bound_project(&server, "down", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let empty = status(&server).await;
    assert!(empty.last_run.is_none() && !empty.running && empty.recent_unblocks.is_empty());
    assert_eq!(
        empty.totals.unwrap(),
        pb::ReconcilerTotals {
            gate_side: counts(0, 0, 0, 0, 0),
            tracker_side: counts(0, 0, 0, 0, 0),
            ..Default::default()
        }
    );
    assert!(
        empty.next_run_time.is_some(),
        "the loop is waiting for its first pass"
    );
    let seq = head_seq(&server).await;

    // 1: the tracker side starts a task.
    let first = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(first.actions.len(), 1);
    // 2: one tracker is down; nothing to do otherwise.
    plane.set_fault(PLANE_DOWN, Fault::Status(503));
    let second = run_once(&server, ReconcilerSide::Unspecified).await;
    assert_eq!(second.error_details.len(), 1);
    assert!(second.actions.is_empty());
    // 3: the gate side advances a stuck task.
    let stuck = stuck_in_development(
        &server,
        "manual-1",
        "SHOP-100",
        SHA_A,
        CiStatusState::Success,
    )
    .await;
    let third = run_once(&server, ReconcilerSide::Gate).await;
    assert_eq!(third.actions.len(), 1);
    assert_eq!(third.actions[0].task_id, stuck);
    assert!(first.id < second.id && second.id < third.id);
    for run in [&first, &second, &third] {
        assert_eq!(run.replica, "replica-a", "the replica that ran it");
    }

    let now = status(&server).await;
    assert!(!now.running);
    assert_eq!(now.running_run_id, 0);
    assert_eq!(now.last_run, Some(third.clone()));
    let sum = |side: fn(&pb::ReconcilerRun) -> pb::ReconcilerSideCounts| {
        let mut total = pb::ReconcilerSideCounts::default();
        for run in [&first, &second, &third] {
            let c = side(run);
            total.scanned += c.scanned;
            total.advanced += c.advanced;
            total.replayed += c.replayed;
            total.skipped += c.skipped;
            total.errors += c.errors;
        }
        total
    };
    let totals = now.totals.unwrap();
    assert_eq!((totals.passes, totals.failed_passes), (3, 0));
    assert_eq!(totals.gate_side, Some(sum(|r| r.gate_side.unwrap())));
    assert_eq!(totals.tracker_side, Some(sum(|r| r.tracker_side.unwrap())));
    assert_eq!(totals.tracker_side.unwrap().errors, 1);
    assert_eq!(totals.gate_side.unwrap().advanced, 1);
    assert_eq!(
        now.recent_unblocks,
        [third.actions[0].clone(), first.actions[0].clone()],
        "newest first"
    );

    let all = list_runs(&server, Default::default()).await.unwrap();
    assert_eq!(all.runs, [third.clone(), second.clone(), first.clone()]);
    assert!(all.next_page_token.is_empty());
    let filtered = |f: fn(&mut ListReconcilerRunsRequest)| {
        let mut request = ListReconcilerRunsRequest::default();
        f(&mut request);
        request
    };
    assert_eq!(
        run_ids(&server, filtered(|r| r.with_actions_only = true)).await,
        [third.id, first.id]
    );
    assert_eq!(
        run_ids(&server, filtered(|r| r.with_errors_only = true)).await,
        [second.id]
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| {
                r.with_errors_only = true;
                r.with_actions_only = true;
            })
        )
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| r.trigger = ReconcilerTrigger::Manual.into())
        )
        .await,
        [third.id, second.id, first.id]
    );
    assert!(
        run_ids(
            &server,
            filtered(|r| r.trigger = ReconcilerTrigger::Scheduled.into())
        )
        .await
        .is_empty()
    );
    assert_eq!(
        run_ids(
            &server,
            filtered(|r| r.state = ReconcilerRunState::Succeeded.into())
        )
        .await
        .len(),
        3
    );
    assert!(
        run_ids(
            &server,
            filtered(|r| r.state = ReconcilerRunState::Failed.into())
        )
        .await
        .is_empty()
    );

    // Paging.
    let page = list_runs(
        &server,
        ListReconcilerRunsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.runs, [third.clone(), second.clone()]);
    assert!(!page.next_page_token.is_empty());
    let rest = list_runs(
        &server,
        ListReconcilerRunsRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.runs, std::slice::from_ref(&first));
    assert!(rest.next_page_token.is_empty());
    for bad in [
        ListReconcilerRunsRequest {
            page_token: page.next_page_token.clone(),
            with_errors_only: true,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            page_size: -1,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            trigger: 42,
            ..Default::default()
        },
        ListReconcilerRunsRequest {
            state: 42,
            ..Default::default()
        },
    ] {
        let err = list_runs(&server, bad.clone()).await.unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert!(!bad_fields(&err).is_empty(), "{bad:?}");
    }

    // The change log: started and finished for each pass, in order, with the
    // pass as it was.
    let logged = events(&server, seq, "reconciler_run.", 0).await;
    let summary: Vec<(String, String, String)> = logged
        .iter()
        .map(|e| {
            (
                e.event_type.clone(),
                e.entity_kind.clone(),
                e.entity_id.clone(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for run in [&first, &second, &third] {
        for verb in ["started", "finished"] {
            expected.push((
                format!("reconciler_run.{verb}"),
                "reconciler_run".to_string(),
                run.id.to_string(),
            ));
        }
    }
    assert_eq!(summary, expected);
    for (pair, run) in logged.chunks(2).zip([&first, &second, &third]) {
        let Some(Payload::ReconcilerRun(started)) = &pair[0].payload else {
            panic!("a run payload: {:?}", pair[0]);
        };
        assert_eq!(started.state(), ReconcilerRunState::Running);
        assert_eq!(
            (started.id, started.trigger, started.side),
            (run.id, run.trigger, run.side)
        );
        assert_eq!(
            (started.gate_side_ran, started.tracker_side_ran),
            (run.gate_side_ran, run.tracker_side_ran)
        );
        assert_eq!(started.start_time, run.start_time);
        assert_eq!(started.replica, "replica-a");
        assert!(started.end_time.is_none() && started.actions.is_empty());
        let Some(Payload::ReconcilerRun(finished)) = &pair[1].payload else {
            panic!("a run payload: {:?}", pair[1]);
        };
        assert_eq!(finished, run);
    }
}

#[tokio::test]
async fn the_background_loop_runs_scheduled_passes_at_its_interval() {
    let server = TestServer::start_with(|config| {
        config.reconciler.interval = Duration::from_secs(1);
    })
    .await;
    let mut stream = watch_finished(&server, 0).await;
    let run = next_finished(&mut stream, "a scheduled pass within the interval").await;
    assert_eq!(run.trigger(), ReconcilerTrigger::Scheduled);
    assert_eq!(run.side(), ReconcilerSide::Unspecified);
    assert!(run.gate_side_ran && run.tracker_side_ran);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);

    // Both sides off: the loop starts nothing more.
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["gate_side_enabled", "tracker_side_enabled"])
        .await
        .unwrap();
    assert!(status(&server).await.next_run_time.is_none());
    let scheduled = run_ids(
        &server,
        ListReconcilerRunsRequest {
            trigger: ReconcilerTrigger::Scheduled.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(scheduled.contains(&run.id));
    assert!(
        run_ids(
            &server,
            ListReconcilerRunsRequest {
                trigger: ReconcilerTrigger::Manual.into(),
                ..Default::default()
            },
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn a_pass_left_running_by_a_crash_is_marked_failed_on_the_next_start() {
    let mut server = TestServer::start().await;
    let finished = run_once(&server, ReconcilerSide::Unspecified).await;
    server.stop().await;
    {
        let mut conn = server.direct().await;
        query(
            "INSERT INTO reconciler_runs (trigger, state, start_time, gate_side_ran, tracker_side_ran) \
             VALUES ('scheduled', 'running', $1, true, true)",
        )
        .bind(finished.end_time.unwrap().seconds * 1_000_000 + 1)
        .execute(&mut conn.conn())
        .await
        .expect("insert a running pass");
    }
    let seq = {
        let mut conn = server.direct().await;
        let seq: i64 = query("SELECT MAX(seq) FROM change_log")
            .fetch_scalar(&mut conn.conn())
            .await
            .unwrap();
        seq
    };
    server.restart().await;

    let runs = list_runs(&server, Default::default()).await.unwrap().runs;
    let [crashed, earlier] = runs.as_slice() else {
        panic!("two passes: {runs:?}");
    };
    assert_eq!(earlier, &finished);
    assert_eq!(crashed.state(), ReconcilerRunState::Failed);
    assert_eq!(crashed.trigger(), ReconcilerTrigger::Scheduled);
    assert!(crashed.end_time.is_some());
    assert!(!crashed.error.is_empty());
    let failed = run_ids(
        &server,
        ListReconcilerRunsRequest {
            state: ReconcilerRunState::Failed.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(failed, [crashed.id]);
    let now = status(&server).await;
    assert!(!now.running);
    assert_eq!(now.last_run.as_ref(), Some(crashed));
    assert_eq!(now.totals.unwrap().failed_passes, 1);
    let logged = events(&server, seq, "reconciler_run.", 0).await;
    let types: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["reconciler_run.failed"]);
    // Nothing holds the slot.
    run_once(&server, ReconcilerSide::Unspecified).await;
}
