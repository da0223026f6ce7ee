//! A tracker that fails, is unmapped, is slower than the timeout or refuses
//! the key costs only its own project; one issue that cannot be replayed
//! does not stop the others.

use super::*;

#[tokio::test]
async fn a_failing_or_unmapped_tracker_costs_only_its_own_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_DOWN,
        "DOWN",
        vec![issue("iss-down", 1, "Down", IN_PROGRESS, LONG_AGO)],
    );
    plane.set_fault(PLANE_DOWN, Fault::Status(500));
    plane.add(
        PLANE_OTHER,
        "ODD",
        vec![issue("iss-odd", 1, "Odd", IN_PROGRESS, LONG_AGO)],
    );
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    // Projects are polled in id order: the failing ones come first.
    bound_project(&server, "a-down", PLANE_DOWN).await;
    server
        .project("b-odd", |p| {
            p.plane = Some(pb::PlaneBinding {
                approved_state: "Signed Off".into(),
                ..binding(PLANE_OTHER)
            })
        })
        .await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Unspecified).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.error.is_empty());
    assert_eq!(run.projects_polled, 3);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 2), "{run:?}");
    let failures: Vec<_> = run
        .error_details
        .iter()
        .map(|e| {
            (
                e.side(),
                e.project_id.as_str(),
                e.task_id,
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (ReconcilerSide::Tracker, "a-down", 0, "TRACKER_UNAVAILABLE"),
            (
                ReconcilerSide::Tracker,
                "b-odd",
                0,
                "TRACKER_STATE_UNMAPPED"
            ),
        ]
    );
    assert!(
        run.error_details[0].message.contains("500"),
        "{:?}",
        run.error_details[0]
    );
    assert!(
        run.error_details[1].message.contains("Signed Off"),
        "{:?}",
        run.error_details[1]
    );
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(started, ["iss-1"]);
    assert_eq!(run.actions.len(), 1);
    assert_eq!(run.actions[0].project_id, "shop");
    // The unmapped project's issues were never listed.
    assert!(plane.issue_cursors(PLANE_OTHER).is_empty());
}

#[tokio::test]
async fn one_issue_that_cannot_be_replayed_does_not_stop_the_others() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-clash", 1, "Clash", IN_PROGRESS, LONG_AGO),
            issue("iss-2", 2, "Two", IN_PROGRESS, LONG_AGO),
        ],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // Started by hand for another issue, on the branch SHOP-1 would take.
    let manual = server
        .start_task("shop", "manual-1", "SHOP-1")
        .await
        .task
        .unwrap();
    assert_eq!(manual.branch, "feature/SHOP-1");

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(2, 0, 1, 0, 1), "{run:?}");
    let [failure] = run.error_details.as_slice() else {
        panic!("one failure: {run:?}");
    };
    assert_eq!(
        (
            failure.side(),
            failure.project_id.as_str(),
            failure.tracker_issue_id.as_str(),
            failure.reason.as_str()
        ),
        (
            ReconcilerSide::Tracker,
            "shop",
            "iss-clash",
            "REPLAY_FAILED"
        )
    );
    let issues: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.tracker_issue_id)
        .collect();
    assert_eq!(issues, ["manual-1", "iss-2"]);
}

#[tokio::test]
async fn a_tracker_slower_than_the_timeout_costs_only_its_own_project() {
    let plane = FakePlane::start().await;
    plane.add(PLANE_DOWN, "SLOW", vec![]);
    plane.set_fault(PLANE_DOWN, Fault::Hang);
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.timeout = Duration::from_millis(500);
    })
    .await;
    bound_project(&server, "a-slow", PLANE_DOWN).await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 1), "{run:?}");
    let [failure] = run.error_details.as_slice() else {
        panic!("one failure: {run:?}");
    };
    assert_eq!(
        (failure.project_id.as_str(), failure.reason.as_str()),
        ("a-slow", "TRACKER_TIMEOUT")
    );
    assert_eq!(run.actions.len(), 1);
    assert_eq!(all_tasks(&server).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_api_key_or_no_plane_configured_is_an_error_of_the_project() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![issue("iss-1", 7, "Good", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.api_key = "not-the-key".into();
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let run = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(run.tracker_side, counts(0, 0, 0, 0, 1));
    assert_eq!(run.error_details[0].reason, "TRACKER_UNAVAILABLE");
    assert!(
        run.error_details[0].message.contains("401"),
        "{:?}",
        run.error_details
    );
    assert!(
        !run.error_details[0].message.contains("not-the-key"),
        "the key leaked"
    );
    assert_eq!(plane.unauthorized(), 1);
    assert!(all_tasks(&server).await.is_empty());

    let unconfigured = TestServer::start().await;
    bound_project(&unconfigured, "shop", PLANE_SHOP).await;
    let run = run_once(&unconfigured, ReconcilerSide::Tracker).await;
    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert_eq!(run.tracker_side, counts(0, 0, 0, 0, 1));
    assert_eq!(run.error_details[0].reason, "TRACKER_NOT_CONFIGURED");
    assert_eq!(run.error_details[0].project_id, "shop");
}
