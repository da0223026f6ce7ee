//! A response `claude --resume` repeats counts once, in one transcript,
//! whatever order the transcripts arrive in; `<synthetic>` lines are no
//! model; a deleted transcript's responses count where a copy is left.

use super::*;

#[tokio::test]
async fn a_resumed_session_counts_its_repeated_responses_once() {
    let transcripts = Transcripts::new();
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    transcripts.write_old(RESUMED, &resumed_lines(), HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;

    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    // msg_1 counts where its largest line is (the original); msg_2 is
    // equal in both: the transcript whose key sorts first (the resume).
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([
            (RESUMED.to_string(), ((6, 9, 3, 2004), 2)),
            (ORIGINAL.to_string(), ((10, 40, 100, 1000), 1)),
        ])
    );
    assert_eq!(tokens_of(&all.total.unwrap()), (16, 49, 103, 3004));
    assert_eq!(all.total.unwrap().messages, 3);
    let models: Vec<(String, Tokens)> = all
        .by_model
        .iter()
        .map(|m| (m.model.clone(), tokens_of(&m.usage.unwrap())))
        .collect();
    assert_eq!(
        models,
        [
            (HAIKU.to_string(), (5, 7, 0, 2000)),
            (SONNET.to_string(), (11, 42, 103, 1004))
        ]
    );
    let (_, resumed_session) = all_usage(
        &server,
        GetUsageRequest {
            session_id: "4c02".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tokens_of(&resumed_session.total.unwrap()), (6, 9, 3, 2004));
}

#[tokio::test]
async fn which_transcript_counts_a_response_does_not_depend_on_arrival_order() {
    // One pass per transcript, in either order (each stored alone), and
    // both in one pass (stored as one batch).
    let arrivals: [&[&[&str]]; 3] = [
        &[&[ORIGINAL], &[RESUMED]],
        &[&[RESUMED], &[ORIGINAL]],
        &[&[ORIGINAL, RESUMED]],
    ];
    let mut outcomes = Vec::new();
    for passes in arrivals {
        let transcripts = Transcripts::new();
        let server = start(&transcripts).await;
        for keys in passes {
            for &key in *keys {
                let lines = if key == ORIGINAL {
                    original_lines()
                } else {
                    resumed_lines()
                };
                transcripts.write_old(key, &lines, HOUR);
            }
            let pass = run_usage(&server).await;
            assert_eq!(pass.processed, keys.len() as i64);
        }
        // The resume goes on: only it is read again.
        transcripts.append(
            RESUMED,
            &[line("4c02", "msg_4", "req_4", HAIKU, (1, 1, 1, 1))],
        );
        transcripts.set_mtime(RESUMED, std::time::SystemTime::now());
        let pass = run_usage(&server).await;
        assert_eq!((pass.processed, pass.skipped_unchanged), (1, 1));
        let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
        outcomes.push((by_transcript(&listed), tokens_of(&all.total.unwrap())));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0], outcomes[2]);
    assert_eq!(outcomes[0].1, (17, 50, 104, 3005));
    assert_eq!(outcomes[0].0[RESUMED], ((7, 10, 4, 2005), 3));
}

#[tokio::test]
async fn synthetic_api_errors_are_no_model_and_no_message() {
    let transcripts = Transcripts::new();
    let error = json!({
        "type": "assistant", "sessionId": "b7e1", "isApiErrorMessage": true,
        "timestamp": "2025-11-02T10:00:00.000Z",
        "message": {"id": "4b1c-uuid", "model": "<synthetic>", "role": "assistant",
            "content": [{"type": "text", "text": "API Error: 529 overloaded"}],
            "usage": {"input_tokens": 0, "output_tokens": 0,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    })
    .to_string();
    let mut lines = original_lines();
    lines.push(error);
    transcripts.write_old(ORIGINAL, &lines, HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;
    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    let models: Vec<&str> = all.by_model.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(models, [HAIKU, SONNET]);
    assert_eq!(listed[0].usage.unwrap().messages, 2);
}

#[tokio::test]
async fn a_deleted_transcripts_responses_count_where_a_copy_is_left() {
    let transcripts = Transcripts::new();
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    transcripts.write_old(RESUMED, &resumed_lines(), HOUR);
    let server = start(&transcripts).await;
    run_usage(&server).await;

    transcripts.remove(ORIGINAL);
    let pass = run_usage(&server).await;
    assert_eq!((pass.scanned, pass.processed), (1, 0));
    // msg_1 now counts in the resume, as its partial copy: the only one
    // left; msg_2 and msg_3 counted there already.
    let (listed, all) = all_usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([(RESUMED.to_string(), ((16, 12, 103, 3004), 3))])
    );
    assert_eq!(tokens_of(&all.total.unwrap()), (16, 12, 103, 3004));

    // Back again (restored from a backup): as before it went.
    transcripts.write_old(ORIGINAL, &original_lines(), HOUR);
    run_usage(&server).await;
    let (listed, _) = all_usage(&server, GetUsageRequest::default()).await;
    assert_eq!(
        by_transcript(&listed),
        BTreeMap::from([
            (RESUMED.to_string(), ((6, 9, 3, 2004), 2)),
            (ORIGINAL.to_string(), ((10, 40, 100, 1000), 1)),
        ])
    );
}
