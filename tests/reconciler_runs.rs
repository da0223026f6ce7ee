//! The Reconciler's passes as a whole (SPEC §8) through the real server and
//! generated client: the settings and kill-switches, one pass at a time (a
//! fake Plane listing held open keeps a pass running), the history
//! (GetStatus, ListReconcilerRuns, the change log), the background loop, a
//! pass left running by a crash, and the roles.

mod common;

use bosun::storage::sql::query;
use std::time::Duration;

use bosun::pb::{
    self, CiStatusState, EventFilter, ListReconcilerRunsRequest, ReconcilerRunState,
    ReconcilerSide, ReconcilerTrigger, Stage, event::Payload,
};
use common::fake_plane::{
    FakePlane, Fault, IN_PROGRESS, LONG_AGO, PLANE_DOWN, PLANE_SHOP, bound_project, issue,
    start_with_plane,
};
use common::pipeline::{
    SHA_A, all_tasks, counts, events, head_seq, list_runs, run_ids, run_once, status,
    stuck_in_development,
};
use common::{
    ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, assert_error, bad_fields,
    error_metadata, with_token,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic::Streaming;

/// How long a test waits for something that happens at once.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Calls.

async fn run_error(server: &TestServer, side: ReconcilerSide) -> tonic::Status {
    server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: side.into() })
        .await
        .expect_err("run once should fail")
}

async fn switch(
    server: &TestServer,
    settings: pb::ReconcilerSettings,
    paths: &[&str],
) -> Result<pb::ReconcilerSettings, tonic::Status> {
    server
        .reconciler_client()
        .update_reconciler_settings(pb::UpdateReconcilerSettingsRequest {
            settings: Some(settings),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn settings(server: &TestServer) -> pb::ReconcilerSettings {
    server
        .reconciler_client()
        .get_reconciler_settings(pb::GetReconcilerSettingsRequest {})
        .await
        .expect("get settings")
        .into_inner()
}

/// A Watch of the reconciler_run.finished events after `after_seq`.
async fn watch_finished(server: &TestServer, after_seq: i64) -> Streaming<pb::WatchResponse> {
    server
        .events()
        .watch(pb::WatchRequest {
            after_seq,
            filter: Some(EventFilter {
                event_type_prefixes: vec!["reconciler_run.finished".into()],
                ..Default::default()
            }),
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next pass that ends on `stream` (`what`: what the wait is for).
async fn next_finished(stream: &mut Streaming<pb::WatchResponse>, what: &str) -> pb::ReconcilerRun {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("waited too long for {what}"))
            .expect("watch")
            .expect("stream open");
        if let Some(event) = message.events.into_iter().next() {
            let Some(Payload::ReconcilerRun(run)) = event.payload else {
                panic!("a run payload: {event:?}");
            };
            return run;
        }
    }
}

// ---------------------------------------------------------------------------
// Settings and kill-switches.

#[tokio::test]
async fn settings_show_the_configuration_and_the_switches_now() {
    let server = TestServer::start_with(|config| {
        config.reconciler.gate_side_enabled = false;
        config.reconciler.interval = Duration::from_secs(90);
        config.reconciler.grace.review = Duration::from_secs(300);
        config.reconciler.tracker_grace = Duration::from_secs(30);
    })
    .await;
    let secs = |s: i64| {
        Some(prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    };
    let grace = |stage: Stage, s: i64| pb::StageGrace {
        stage: stage.into(),
        grace: secs(s),
    };
    let expected = pb::ReconcilerSettings {
        gate_side_enabled: false,
        tracker_side_enabled: true,
        interval: secs(90),
        stage_grace: vec![
            grace(Stage::Development, 600),
            grace(Stage::Review, 300),
            grace(Stage::Testing, 600),
            grace(Stage::Deploy, 900),
        ],
        tracker_grace: secs(30),
    };
    assert_eq!(settings(&server).await, expected);
    assert_eq!(status(&server).await.settings, Some(expected.clone()));

    let both_off = pb::ReconcilerSettings {
        tracker_side_enabled: false,
        ..expected.clone()
    };
    let changed = switch(&server, both_off, &["tracker_side_enabled"])
        .await
        .unwrap();
    assert!(!changed.gate_side_enabled && !changed.tracker_side_enabled);
    assert_eq!(settings(&server).await, changed);
    assert!(
        status(&server).await.next_run_time.is_none(),
        "no pass is coming with both sides off"
    );
    let err = run_error(&server, ReconcilerSide::Unspecified).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");

    // "*" names both switches; the read-only fields sent along are ignored.
    let on = pb::ReconcilerSettings {
        gate_side_enabled: true,
        tracker_side_enabled: true,
        interval: secs(1),
        ..Default::default()
    };
    let changed = switch(&server, on, &["*"]).await.unwrap();
    assert_eq!(changed, expected_with(&expected, true, true));
    assert!(status(&server).await.next_run_time.is_some());
}

fn expected_with(
    base: &pb::ReconcilerSettings,
    gate: bool,
    tracker: bool,
) -> pb::ReconcilerSettings {
    pb::ReconcilerSettings {
        gate_side_enabled: gate,
        tracker_side_enabled: tracker,
        ..base.clone()
    }
}

#[tokio::test]
async fn read_only_unknown_and_empty_mask_paths_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let before = settings(&server).await;
    let off = pb::ReconcilerSettings {
        gate_side_enabled: false,
        tracker_side_enabled: false,
        interval: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    };
    for paths in [
        &["interval"][..],
        &["stage_grace"],
        &["tracker_grace"],
        &["gate_side_enabled", "interval"],
        &["bogus"],
        &["tracker_side_enabled", "bogus"],
        &[],
    ] {
        let err = switch(&server, off.clone(), paths).await.unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(bad_fields(&err), ["update_mask"], "{paths:?}");
        assert_eq!(
            settings(&server).await,
            before,
            "{paths:?} changed something"
        );
    }
    let err = server
        .reconciler_client()
        .update_reconciler_settings(pb::UpdateReconcilerSettingsRequest {
            settings: Some(off),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(settings(&server).await, before);
}

#[tokio::test]
async fn a_side_switched_off_is_refused_alone_and_not_run_in_a_full_pass() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let id =
        stuck_in_development(&server, "issue-1", "SHOP-1", SHA_A, CiStatusState::Success).await;
    let off = pb::ReconcilerSettings {
        gate_side_enabled: false,
        ..Default::default()
    };
    let changed = switch(&server, off, &["gate_side_enabled"]).await.unwrap();
    assert!(!changed.gate_side_enabled && changed.tracker_side_enabled);

    let err = run_error(&server, ReconcilerSide::Gate).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");
    let run = run_once(&server, ReconcilerSide::Unspecified).await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.side(), ReconcilerSide::Unspecified);
    assert!(!run.gate_side_ran, "{run:?}");
    assert!(run.tracker_side_ran);
    assert_eq!(run.gate_side, counts(0, 0, 0, 0, 0));
    assert_eq!(server.task(id).await.stage(), Stage::Development);
    // Only the refused RunOnce left no row.
    assert_eq!(run_ids(&server, Default::default()).await, [run.id]);

    let on = pb::ReconcilerSettings {
        gate_side_enabled: true,
        ..Default::default()
    };
    switch(&server, on, &["gate_side_enabled"]).await.unwrap();
    let run = run_once(&server, ReconcilerSide::Gate).await;
    assert!(run.gate_side_ran && !run.tracker_side_ran);
    assert_eq!(run.gate_side, counts(1, 1, 0, 0, 0));
    assert_eq!(server.task(id).await.stage(), Stage::Review);

    let off = pb::ReconcilerSettings::default();
    switch(&server, off, &["tracker_side_enabled"])
        .await
        .unwrap();
    let err = run_error(&server, ReconcilerSide::Tracker).await;
    assert_error(&err, Code::FailedPrecondition, "RECONCILER_DISABLED");
    let run = run_once(&server, ReconcilerSide::Unspecified).await;
    assert!(run.gate_side_ran && !run.tracker_side_ran);
}

#[tokio::test]
async fn a_bad_side_is_refused() {
    let server = TestServer::start().await;
    let err = server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: 99 })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&err), ["side"]);
    assert!(run_ids(&server, Default::default()).await.is_empty());
}

// ---------------------------------------------------------------------------
// One pass at a time.

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

// ---------------------------------------------------------------------------
// History: GetStatus, ListReconcilerRuns, the change log.

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

// ---------------------------------------------------------------------------
// Roles.

#[tokio::test]
async fn passes_and_switches_need_an_admin_and_reads_any_token() {
    let server = TestServer::start_with_auth().await;
    let mut client = server.reconciler_client();
    for token in [AGENT_TOKEN, WEBHOOK_TOKEN, READ_TOKEN] {
        let err = client
            .run_once(with_token(pb::RunOnceRequest::default(), token))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
        let err = client
            .update_reconciler_settings(with_token(
                pb::UpdateReconcilerSettingsRequest {
                    settings: Some(pb::ReconcilerSettings::default()),
                    update_mask: Some(FieldMask {
                        paths: vec!["gate_side_enabled".into()],
                    }),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    let err = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let listed = client
        .list_reconciler_runs(with_token(ListReconcilerRunsRequest::default(), READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.runs.is_empty(), "the refused calls ran nothing");
    let read_settings = client
        .get_reconciler_settings(with_token(pb::GetReconcilerSettingsRequest {}, READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(
        read_settings.gate_side_enabled,
        "the refused update changed nothing"
    );

    let run = client
        .run_once(with_token(pb::RunOnceRequest::default(), ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    let seen = client
        .get_status(with_token(pb::GetStatusRequest {}, READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.last_run, Some(run));
    let changed = client
        .update_reconciler_settings(with_token(
            pb::UpdateReconcilerSettingsRequest {
                settings: Some(pb::ReconcilerSettings::default()),
                update_mask: Some(FieldMask {
                    paths: vec!["gate_side_enabled".into()],
                }),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!changed.gate_side_enabled);
}
