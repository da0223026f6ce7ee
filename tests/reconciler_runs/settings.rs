//! The Reconciler's settings and kill-switches: what they show, what is
//! refused, a side switched off; passes and switches need an admin.

use super::*;

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
