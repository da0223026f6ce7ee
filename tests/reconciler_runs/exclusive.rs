//! One pass at a time: RunOnce during a running or scheduled pass is
//! aborted with that pass, a switch turned off mid-pass stops its side, and
//! a pass runs to its end when its caller goes away (a fake Plane listing
//! held open keeps a pass running).

use super::*;

#[tokio::test]
async fn run_once_while_a_pass_runs_is_aborted_with_the_running_pass() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut client = server.reconciler_client();
    let first = tokio::spawn(async move {
        client
            .run_once(pb::RunOnceRequest::default())
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");

    let during = status(&server).await;
    assert!(during.running);
    let running_id = during.running_run_id;
    assert!(running_id > 0);
    let err = run_error(&server, ReconcilerSide::Tracker).await;
    assert_error(&err, Code::Aborted, "RECONCILER_PASS_RUNNING");
    assert_eq!(error_metadata(&err, "run_id"), Some(running_id.to_string()));
    let listed = list_runs(&server, Default::default()).await.unwrap().runs;
    let [running] = listed.as_slice() else {
        panic!("one pass: {listed:?}");
    };
    assert_eq!(running.id, running_id);
    assert_eq!(running.state(), ReconcilerRunState::Running);
    assert!(running.end_time.is_none());
    assert!(during.last_run.is_none(), "no pass has ended");

    release.notify_one();
    let run = first.await.unwrap().expect("the first pass");
    assert_eq!(run.id, running_id);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    let after = status(&server).await;
    assert!(!after.running);
    assert_eq!(after.running_run_id, 0);
    assert_eq!(after.last_run, Some(run));
    // The slot is free again.
    run_once(&server, ReconcilerSide::Unspecified).await;
}

#[tokio::test]
async fn run_once_during_a_scheduled_pass_is_aborted_with_that_pass() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |config| {
        config.reconciler.interval = Duration::from_secs(1);
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("a scheduled pass reached Plane");

    let err = run_error(&server, ReconcilerSide::Unspecified).await;
    assert_error(&err, Code::Aborted, "RECONCILER_PASS_RUNNING");
    let run_id: i64 = error_metadata(&err, "run_id").unwrap().parse().unwrap();
    let during = status(&server).await;
    assert!(during.running);
    assert_eq!(during.running_run_id, run_id);
    let listed = list_runs(&server, Default::default()).await.unwrap().runs;
    assert_eq!(listed[0].id, run_id);
    assert_eq!(listed[0].trigger(), ReconcilerTrigger::Scheduled);
    assert_eq!(listed[0].state(), ReconcilerRunState::Running);
    // Both sides off: once this pass ends, the loop starts no other.
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["gate_side_enabled", "tracker_side_enabled"])
        .await
        .unwrap();
    // From now: an earlier scheduled pass (before the project was
    // registered) may have ended already.
    let mut finished = watch_finished(&server, head_seq(&server).await).await;
    release.notify_one();
    let run = next_finished(&mut finished, "the pass ended").await;
    assert_eq!(run.id, run_id);
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(
        run.tracker_side_ran,
        "switched off after the side had started: {run:?}"
    );
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
}

#[tokio::test]
async fn a_switch_turned_off_during_a_pass_stops_its_side_before_the_next_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_DOWN,
        "AAA",
        vec![issue("iss-a", 1, "A", IN_PROGRESS, LONG_AGO)],
    );
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_DOWN);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "a-first", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut client = server.reconciler_client();
    let pass = tokio::spawn(async move {
        client
            .run_once(pb::RunOnceRequest::default())
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");
    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["tracker_side_enabled"])
        .await
        .unwrap();
    release.notify_one();

    let run = pass.await.unwrap().expect("the pass");
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.tracker_side_ran);
    assert_eq!(run.projects_polled, 1, "{run:?}");
    assert_eq!(
        run.tracker_side,
        counts(1, 0, 1, 0, 0),
        "the project under way finished"
    );
    assert!(plane.requests().iter().all(|r| r.project == PLANE_DOWN));
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(started, ["iss-a"]);
}

#[tokio::test]
async fn a_pass_runs_to_its_end_when_its_caller_goes_away() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let (entered, release) = plane.block(PLANE_SHOP);
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let mut finished = watch_finished(&server, head_seq(&server).await).await;
    let mut client = server.reconciler_client();
    let caller = tokio::spawn(async move { client.run_once(pb::RunOnceRequest::default()).await });
    tokio::time::timeout(PATIENCE, entered.notified())
        .await
        .expect("the pass reached Plane");
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    release.notify_one();

    let run = next_finished(&mut finished, "the pass ended").await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    assert_eq!(all_tasks(&server).await.len(), 1);
    assert_eq!(status(&server).await.last_run, Some(run));
}
