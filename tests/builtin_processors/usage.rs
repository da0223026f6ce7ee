//! `usage`: totals equal a hand-computed count; a pass stores its batch
//! together; GetUsage's pages and filters; a message growing over more lines.

use super::*;

#[tokio::test]
async fn usage_totals_equal_a_hand_computed_count() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    let pass = run(&server, "usage").await;
    assert_eq!(
        (pass.processed, pass.items, pass.malformed_lines),
        (4, 6, 2)
    );

    let all = usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_model(&all.by_model),
        [
            (HAIKU, tokens(300, 32, 0, 0, 1)),
            (OPUS, tokens(21, 202, 3, 3004, 2)),
            (SONNET, tokens(112, 70, 1009, 11010, 3)),
        ]
    );
    assert_eq!(all.total, Some(tokens(433, 304, 1012, 14014, 6)));
    let keys: Vec<&str> = all
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(keys, [SESS_A, SESS_B, D9, SESS_C]);
    let a = &all.transcripts[0];
    assert_eq!(
        (a.owner.as_str(), a.session_id.as_str()),
        ("-home-dev-orchestrator", "sess-a")
    );
    assert_eq!(by_model(&a.by_model), sess_a());
    assert_eq!(a.usage, Some(tokens(125, 262, 1000, 14000, 3)));
    assert!(a.processed_time.is_some());
    assert_eq!(all.transcripts[2].session_id, "d9");
    let c = &all.transcripts[3];
    assert_eq!(
        (c.usage, c.by_model.len()),
        (Some(tokens(0, 0, 0, 0, 0)), 0),
        "processed, nothing spent"
    );

    let website = usage(
        &server,
        GetUsageRequest {
            owner: "-home-dev-website".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(website.transcripts.len(), 2);
    assert_eq!(website.total, Some(tokens(1, 2, 3, 4, 1)));

    let opus = usage(
        &server,
        GetUsageRequest {
            model: OPUS.into(),
            ..Default::default()
        },
    )
    .await;
    let keys: Vec<&str> = opus
        .transcripts
        .iter()
        .map(|t| t.transcript.as_str())
        .collect();
    assert_eq!(
        keys,
        [SESS_A, D9],
        "transcripts without the model are left out"
    );
    assert_eq!(
        opus.transcripts[0].usage,
        Some(tokens(20, 200, 0, 3000, 1)),
        "that model's messages only"
    );
    assert_eq!(
        by_model(&opus.by_model),
        [(OPUS, tokens(21, 202, 3, 3004, 2))]
    );
    assert_eq!(opus.total, Some(tokens(21, 202, 3, 3004, 2)));

    for (request, key) in [
        (
            GetUsageRequest {
                session_id: "sess-b".into(),
                ..Default::default()
            },
            SESS_B,
        ),
        (
            GetUsageRequest {
                transcript: D9.into(),
                ..Default::default()
            },
            D9,
        ),
    ] {
        let one = usage(&server, request).await;
        assert_eq!(one.transcripts.len(), 1);
        assert_eq!(one.transcripts[0].transcript, key);
        assert_eq!(one.total, one.transcripts[0].usage);
    }
}

/// A pass stores a batch of transcripts together, in a few multi-row
/// statements, not transcript by transcript: a subscriber sees the batch's
/// usage rows, then its state rows (one transcript at a time would
/// interleave them).
#[tokio::test]
async fn a_pass_stores_its_batch_of_transcripts_together() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    assert_eq!(run(&server, "usage").await.processed, 4);
    let events = server
        .events()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                event_type_prefixes: vec!["transcript_usage.".into(), "processor_state.".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("list events")
        .into_inner()
        .events;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            ["transcript_usage.created"; 4],
            ["processor_state.created"; 4]
        ]
        .concat()
    );
}

#[tokio::test]
async fn usage_pages_carry_the_same_totals_and_tokens_are_bound_to_filters() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    run(&server, "usage").await;

    let first = usage(
        &server,
        GetUsageRequest {
            page_size: 3,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first.transcripts.len(), 3);
    let second = usage(
        &server,
        GetUsageRequest {
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(second.transcripts.len(), 1);
    assert_eq!(second.transcripts[0].transcript, SESS_C);
    assert_eq!(second.next_page_token, "");
    assert_eq!(
        (&first.total, &first.by_model),
        (&second.total, &second.by_model)
    );

    let status = server
        .processors_client()
        .get_usage(GetUsageRequest {
            page_size: 3,
            page_token: first.next_page_token,
            model: OPUS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(bad_fields(&status), ["page_token"]);
}

#[tokio::test]
async fn a_message_growing_over_more_lines_is_recounted_not_doubled() {
    let transcripts = Transcripts::new();
    write_fleet(&transcripts);
    let server = start(&transcripts, |_| {}).await;
    run(&server, "usage").await;
    transcripts.append(
        SESS_A,
        &[assistant("sess-a", "msg_a3", SONNET, (5, 90, 0, 6000))],
    );
    let pass = run(&server, "usage").await;
    assert_eq!((pass.processed, pass.skipped_unchanged), (1, 3));
    let a = usage(
        &server,
        GetUsageRequest {
            transcript: SESS_A.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        a.total,
        Some(tokens(125, 345, 1000, 14000, 3)),
        "msg_a3 now ends at 90 output tokens"
    );
}
