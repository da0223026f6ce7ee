//! What a pass lists and counts, what it leaves alone, and a second pass
//! that replays nothing.

use super::*;

#[tokio::test]
async fn a_pass_lists_its_first_100_actions_and_counts_them_all() {
    let plane = FakePlane::start().await;
    let issues = (1..=101)
        .map(|n| issue(&format!("iss-{n}"), n, "Bulk", IN_PROGRESS, LONG_AGO))
        .collect();
    plane.add(PLANE_SHOP, "SHOP", issues);
    let server = start_with_plane(&plane, |config| {
        config.reconciler.plane.page_size = 100;
    })
    .await;
    bound_project(&server, "shop", PLANE_SHOP).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(101, 0, 101, 0, 0));
    assert_eq!(run.actions.len(), 100);
    assert_eq!(run.actions[0].tracker_issue_id, "iss-1");
    assert_eq!(run.actions[99].tracker_issue_id, "iss-100");
    assert_eq!(plane.issue_cursors(PLANE_SHOP).len(), 2);
    let stored = list_runs(&server, Default::default()).await.unwrap().runs;
    assert_eq!(stored, [run]);
}

#[tokio::test]
async fn tracker_issues_within_grace_of_busy_tasks_or_without_a_task_are_left_alone() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // In review with the reviewer still at work.
    let busy = server
        .start_task("shop", "iss-busy", "SHOP-1")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(busy, Stage::Review).await;
    server.age_verdicts(busy, Duration::from_secs(3600)).await;
    let busy_before = server.task(busy).await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue(
                "iss-fresh",
                2,
                "Fresh",
                IN_PROGRESS,
                &ago(Duration::from_secs(5)),
            ),
            // Changed after the task's last verdict: only the busy reviewer
            // keeps it from being replayed.
            issue(
                "iss-busy",
                1,
                "Busy",
                APPROVED,
                &ago(Duration::from_secs(300)),
            ),
            issue("iss-unknown", 3, "Unknown", APPROVED, LONG_AGO),
            issue("iss-unknown-2", 4, "Unknown", REJECTED, LONG_AGO),
        ],
    );

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(4, 0, 0, 4, 0), "{run:?}");
    assert!(run.actions.is_empty());
    assert_eq!(
        all_tasks(&server).await.len(),
        1,
        "the fresh issue started nothing"
    );
    assert_eq!(server.task(busy).await, busy_before);
    assert_eq!(
        facts(&server, busy).await.verdicts.len(),
        1,
        "only the analysis approval"
    );
}

#[tokio::test]
async fn a_second_pass_replays_nothing() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    let reviewed = server
        .start_task("shop", "iss-1", "SHOP-1")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(reviewed, Stage::Review).await;
    server.finish_stage(reviewed).await;
    server
        .age_verdicts(reviewed, Duration::from_secs(3600))
        .await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-1", 1, "One", APPROVED, &ago(Duration::from_secs(300))),
            issue("iss-2", 2, "Two", IN_PROGRESS, LONG_AGO),
        ],
    );
    let first = run_once(&server, ReconcilerSide::Tracker).await;
    assert_eq!(first.tracker_side, counts(2, 1, 2, 0, 0), "{first:?}");
    // The tester session is lost at once, so only the recorded verdict can
    // keep the approval from being replayed again.
    let tester = server.task(reviewed).await.stage_session_id;
    server.kill_session(&tester).await;
    let tasks = all_tasks(&server).await;
    let verdicts = facts(&server, reviewed).await.verdicts;

    let second = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(second.tracker_side, counts(2, 0, 0, 2, 0), "{second:?}");
    assert!(second.actions.is_empty());
    assert_eq!(all_tasks(&server).await, tasks);
    assert_eq!(facts(&server, reviewed).await.verdicts, verdicts);
}
