//! The cap (the newest transcripts wait for the next pass, exactly the
//! oldest are taken) and the time budget.

use super::*;

#[tokio::test]
async fn the_cap_defers_the_newest_transcripts_to_the_next_pass() {
    let transcripts = Transcripts::new();
    for (index, age_hours) in [(1, 5), (2, 1), (3, 4), (4, 2), (5, 3)] {
        let key = format!("alice/s{index}.jsonl");
        transcripts.write_old(&key, &session_lines("s"), HOUR * age_hours);
    }
    let server = start(&transcripts, |config| {
        config.processors.usage.max_transcripts_per_pass = 2;
    })
    .await;

    let first = run(&server, "usage").await;
    assert_eq!(counts(&first), [5, 2, 0, 0, 0, 0, 3]);
    assert!(first.capped);
    let processed = |states: Vec<pb::ProcessorState>| -> Vec<String> {
        states.into_iter().map(|s| s.transcript).collect()
    };
    let usage_states = || ListProcessorStateRequest {
        processor: "usage".into(),
        ..Default::default()
    };
    assert_eq!(
        processed(states(&server, usage_states()).await),
        ["alice/s1.jsonl", "alice/s3.jsonl"],
        "oldest modification first"
    );
    let second = run(&server, "usage").await;
    assert_eq!(counts(&second), [5, 2, 2, 0, 0, 0, 1]);
    let third = run(&server, "usage").await;
    assert_eq!(counts(&third), [5, 1, 4, 0, 0, 0, 0]);
    assert!(!third.capped);
    assert_eq!(processed(states(&server, usage_states()).await).len(), 5);
}

/// A pass large enough to be read in chunks on several threads still takes
/// exactly the oldest transcripts up to the cap.
#[tokio::test]
async fn the_cap_takes_exactly_the_oldest_of_a_large_pass() {
    let transcripts = Transcripts::new();
    // s000 is the oldest; the names sort in age order too.
    for index in 0..300u32 {
        let age = HOUR + Duration::from_secs(u64::from(300 - index));
        transcripts.write_old(
            &format!("alice/s{index:03}.jsonl"),
            &session_lines("s"),
            age,
        );
    }
    let server = start(&transcripts, |config| {
        config.processors.usage.max_transcripts_per_pass = 70;
    })
    .await;
    let first = run(&server, "usage").await;
    assert_eq!(counts(&first), [300, 70, 0, 0, 0, 0, 230]);
    let request = ListProcessorStateRequest {
        processor: "usage".into(),
        page_size: 1000,
        ..Default::default()
    };
    let processed: Vec<String> = states(&server, request)
        .await
        .into_iter()
        .map(|s| s.transcript)
        .collect();
    let oldest: Vec<String> = (0..70).map(|i| format!("alice/s{i:03}.jsonl")).collect();
    assert_eq!(processed, oldest);
}

#[tokio::test]
async fn the_time_budget_stops_starting_transcripts() {
    let transcripts = Transcripts::new();
    for index in 0..6 {
        transcripts.write_old(&format!("alice/s{index}.jsonl"), &session_lines("s"), HOUR);
    }
    let (blocking, mut handle) = transcripts::Blocking::new("slow");
    let dir = transcripts.path();
    let budget = transcripts::settings(HOUR);
    let server = TestServer::start_with_processors(
        move |config| config.processors.transcripts_dir = dir,
        vec![registration(
            blocking,
            bosun::processors::ProcessorSettings {
                time_budget: Duration::from_millis(50),
                ..budget
            },
        )],
    )
    .await;
    let mut client = server.processors_client();
    let pass = tokio::spawn(async move {
        client
            .run_processor(RunProcessorRequest {
                name: "slow".into(),
            })
            .await
    });
    // Hold the first transcript past the budget, then let everything go.
    handle.wait_entered().await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    for _ in 0..6 {
        handle.release();
    }
    let run = pass.await.unwrap().unwrap().into_inner();
    assert!(run.capped, "{run:?}");
    assert!(run.processed >= 1 && run.deferred >= 1, "{run:?}");
    assert_eq!(run.processed + run.deferred, 6);
}
