//! Issues replayed as StartTask and as tracker verdicts; every page read,
//! with a binding's own state names.

use super::*;

#[tokio::test]
async fn an_in_progress_issue_without_a_task_is_replayed_as_start_task() {
    let plane = FakePlane::start().await;
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-backlog", 11, "Someday", BACKLOG, LONG_AGO),
            issue("iss-1", 12, "Fix the checkout", IN_PROGRESS, LONG_AGO),
            issue("iss-done", 13, "Shipped", DONE, LONG_AGO),
        ],
    );
    plane.add(
        PLANE_OTHER,
        "OLD",
        vec![issue("iss-old", 1, "Old", IN_PROGRESS, LONG_AGO)],
    );
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    server.project("plain", |_| {}).await;
    bound_project(&server, "old", PLANE_OTHER).await;
    server
        .sessions_client()
        .archive_project(pb::ArchiveProjectRequest {
            project_id: "old".into(),
        })
        .await
        .unwrap();

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.state(), ReconcilerRunState::Succeeded);
    assert!(run.tracker_side_ran && !run.gate_side_ran);
    assert_eq!(
        run.projects_polled, 1,
        "only active projects with a binding"
    );
    assert_eq!(run.tracker_side, counts(1, 0, 1, 0, 0));
    assert!(run.error_details.is_empty(), "{:?}", run.error_details);
    let [task] = all_tasks(&server).await.try_into().expect("one task");
    assert_eq!(task.project_id, "shop");
    assert_eq!(task.tracker_issue_id, "iss-1");
    assert_eq!(task.work_item_id, "SHOP-12");
    assert_eq!(task.title, "Fix the checkout");
    assert_eq!(task.repo, REPO);
    assert_eq!(task.branch, "feature/SHOP-12");
    assert_eq!(task.stage(), Stage::Analysis);
    let analyst = session(&server, &task.stage_session_id).await;
    assert_eq!(
        (analyst.role(), analyst.state()),
        (pb::Role::Analyst, pb::SessionState::NotStarted)
    );
    let [action] = run.actions.as_slice() else {
        panic!("one action: {run:?}");
    };
    assert_eq!(
        action,
        &pb::ReconcilerAction {
            run_id: run.id,
            side: ReconcilerSide::Tracker.into(),
            kind: ReconcilerActionKind::Started.into(),
            task_id: task.id,
            project_id: "shop".into(),
            work_item_id: "SHOP-12".into(),
            tracker_issue_id: "iss-1".into(),
            from_stage: Stage::Unspecified.into(),
            to_stage: Stage::Analysis.into(),
            session_id: task.stage_session_id.clone(),
            action_time: action.action_time,
        }
    );
    assert!(plane.requests().iter().all(|r| r.project == PLANE_SHOP));
    assert_eq!(plane.unauthorized(), 0);
}

#[tokio::test]
async fn approved_and_rejected_issues_are_replayed_as_tracker_verdicts() {
    let plane = FakePlane::start().await;
    let server = start_with_plane(&plane, |_| {}).await;
    bound_project(&server, "shop", PLANE_SHOP).await;
    // Two tasks whose reviewers finished with no verdict yet; their analysis
    // was approved an hour ago.
    let mut reviewed = Vec::new();
    for n in [1, 2] {
        let id = server
            .start_task("shop", &format!("iss-{n}"), &format!("SHOP-{n}"))
            .await
            .task
            .unwrap()
            .id;
        server.walk_to(id, Stage::Review).await;
        let waiting = server.finish_stage(id).await;
        assert_eq!(waiting.outcome(), AdvanceOutcome::Waiting);
        server.age_verdicts(id, Duration::from_secs(3600)).await;
        reviewed.push(id);
    }
    let [approved, rejected] = reviewed[..] else {
        unreachable!()
    };
    let five_minutes_ago = ago(Duration::from_secs(300));
    plane.add(
        PLANE_SHOP,
        "SHOP",
        vec![
            issue("iss-1", 1, "One", APPROVED, &five_minutes_ago),
            issue("iss-2", 2, "Two", REJECTED, &five_minutes_ago),
        ],
    );

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    assert_eq!(run.tracker_side, counts(2, 2, 2, 0, 0), "{run:?}");
    let to_testing = server.task(approved).await;
    assert_eq!(to_testing.stage(), Stage::Testing);
    assert_eq!(to_testing.stage_role(), pb::Role::Tester);
    let to_development = server.task(rejected).await;
    assert_eq!(to_development.stage(), Stage::Development);
    assert_eq!(to_development.rollback_count, 1);
    let kinds: Vec<_> = run
        .actions
        .iter()
        .map(|a| {
            (
                a.kind(),
                a.side(),
                a.task_id,
                a.tracker_issue_id.as_str(),
                a.from_stage(),
                a.to_stage(),
                a.session_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                ReconcilerActionKind::VerdictReplayed,
                ReconcilerSide::Tracker,
                approved,
                "iss-1",
                Stage::Review,
                Stage::Testing,
                to_testing.stage_session_id.as_str()
            ),
            (
                ReconcilerActionKind::VerdictReplayed,
                ReconcilerSide::Tracker,
                rejected,
                "iss-2",
                Stage::Review,
                Stage::Development,
                to_development.stage_session_id.as_str()
            ),
        ]
    );
    for (id, decision) in [
        (approved, VerdictDecision::Approved),
        (rejected, VerdictDecision::Rejected),
    ] {
        let newest = facts(&server, id).await.verdicts[0].clone();
        assert_eq!(
            (newest.decision(), newest.source(), newest.stage()),
            (decision, VerdictSource::Tracker, Stage::Review),
            "task {id}"
        );
    }
    // The rejection rolled back through the one path: with its lesson.
    let lessons = server.lesson_rows("gate_failure").await;
    assert_eq!(lessons.len(), 1, "{lessons:?}");
    assert_eq!(lessons[0].0, Some(rejected));
}

#[tokio::test]
async fn every_page_is_read_and_the_bindings_state_names_are_honoured() {
    let plane = FakePlane::start().await;
    let mut states = vec![
        state("st-doing", "Doing"),
        state("st-signed", "Signed Off"),
        state("st-back", "Sent Back"),
    ];
    // Plane's usual names are there too, and mean nothing to this project.
    states.extend(standard_states());
    let mut issues: Vec<Value> = (1..=5)
        .map(|n| {
            issue(
                &format!("iss-{n}"),
                n,
                &format!("Issue {n}"),
                "st-doing",
                LONG_AGO,
            )
        })
        .collect();
    // The state as an expanded object, as Plane sends it with ?expand=state.
    issues.push(json!({
        "id": "iss-6", "name": "Issue 6", "sequence_id": 6,
        "state": {"id": "st-doing", "name": "Doing"}, "updated_at": LONG_AGO,
    }));
    let five_minutes_ago = ago(Duration::from_secs(300));
    issues.extend([
        issue("iss-signed", 50, "Reviewed", "st-signed", &five_minutes_ago),
        issue("iss-sent", 51, "No task", "st-back", LONG_AGO),
        issue("iss-decoy", 90, "Decoy", IN_PROGRESS, LONG_AGO),
        issue("iss-approved-1", 92, "Decoy", APPROVED, LONG_AGO),
        issue("iss-approved-2", 93, "Decoy", APPROVED, LONG_AGO),
        issue("iss-rejected-1", 94, "Decoy", REJECTED, LONG_AGO),
        issue("iss-rejected-2", 95, "Decoy", REJECTED, LONG_AGO),
        issue("iss-backlog", 91, "Later", BACKLOG, LONG_AGO),
    ]);
    issues.swap(2, 8); // mix the pages
    plane.add_project(
        PLANE_SHOP,
        PlaneProject {
            identifier: "SHOP".into(),
            states,
            issues,
            fault: Fault::None,
        },
    );
    let server = start_with_plane(&plane, |_| {}).await;
    server
        .project("shop", |p| {
            p.plane = Some(pb::PlaneBinding {
                in_progress_state: "Doing".into(),
                approved_state: "Signed Off".into(),
                rejected_state: "Sent Back".into(),
                ..binding(PLANE_SHOP)
            })
        })
        .await;
    let signed = server
        .start_task("shop", "iss-signed", "SHOP-50")
        .await
        .task
        .unwrap()
        .id;
    server.walk_to(signed, Stage::Review).await;
    server.finish_stage(signed).await;
    server.age_verdicts(signed, Duration::from_secs(3600)).await;

    let run = run_once(&server, ReconcilerSide::Tracker).await;

    // Six "Doing", one "Signed Off" and one "Sent Back" (no task) issue.
    assert_eq!(run.tracker_side, counts(8, 1, 7, 1, 0), "{run:?}");
    let started: Vec<String> = all_tasks(&server)
        .await
        .into_iter()
        .map(|t| t.work_item_id)
        .collect();
    assert_eq!(
        started,
        [
            "SHOP-50", "SHOP-1", "SHOP-2", "SHOP-4", "SHOP-5", "SHOP-6", "SHOP-3"
        ]
    );
    assert_eq!(server.task(signed).await.stage(), Stage::Testing);
    let replayed: Vec<_> = run
        .actions
        .iter()
        .filter(|a| a.kind() == ReconcilerActionKind::VerdictReplayed)
        .map(|a| (a.tracker_issue_id.as_str(), a.to_stage()))
        .collect();
    assert_eq!(replayed, [("iss-signed", Stage::Testing)]);
    // 14 issues, 2 a page: 7 pages, each asked for with the cursor the page
    // before gave.
    let expected: Vec<Option<String>> = (0..7)
        .map(|page| (page > 0).then(|| format!("2:{page}:0")))
        .collect();
    assert_eq!(plane.issue_cursors(PLANE_SHOP), expected);
    let states_pages = plane
        .requests()
        .into_iter()
        .filter(|r| r.listing == "states")
        .count();
    assert_eq!(states_pages, 4, "8 states, 2 a page");
    assert!(
        plane
            .requests()
            .iter()
            .filter(|r| r.listing != "project")
            .all(|r| r.per_page.as_deref() == Some("2"))
    );
}
