//! ListProcessors (settings, schedule, the lag warning), processor state
//! pages and filters, and bad requests refused naming the field.

use super::*;

#[tokio::test]
async fn list_processors_shows_settings_schedule_and_the_lag_warning() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| {
            config.processors.transcripts_dir = dir;
            config.processors.usage.max_transcripts_per_pass = 7;
            config.processors.usage.time_budget = Duration::from_secs(30);
            config.processors.usage.quarantine_after_failures = 4;
            config.processors.tool_errors.enabled = false;
        }
    })
    .await;

    let listed = processors(&server).await;
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tool_errors", "usage"]);
    let (tool_errors, usage) = (&listed[0], &listed[1]);
    assert!(!tool_errors.enabled && tool_errors.next_run_time.is_none());
    assert!(usage.enabled && !usage.running && !usage.description.is_empty());
    assert_eq!(usage.cadence.unwrap().seconds, 300);
    assert_eq!(usage.time_budget.unwrap().seconds, 30);
    assert_eq!(
        (
            usage.max_transcripts_per_pass,
            usage.quarantine_after_failures
        ),
        (7, 4)
    );
    assert!(usage.last_run.is_none() && usage.last_run_time.is_none());
    assert!(usage.next_run_time.is_some(), "one cadence after the start");
    assert!(!usage.lag_warning && usage.lag_detail.is_empty());
    let newest = micros(&usage.newest_transcript_time);
    let written = SystemTime::now() - HOUR;
    let written = written
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!((newest - written).abs() < 5_000_000, "the file's mtime");

    let run = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "usage".into(),
        })
        .await
        .unwrap()
        .into_inner();
    transcripts.write("bob/s2.jsonl", &lines("s2"));
    transcripts.set_mtime(
        "bob/s2.jsonl",
        SystemTime::now() + Duration::from_secs(11 * 60),
    );
    let listed = processors(&server).await;
    let (tool_errors, usage) = (&listed[0], &listed[1]);
    assert_eq!(usage.last_run.as_ref(), Some(&run));
    assert_eq!(micros(&usage.last_run_time), micros(&run.start_time));
    assert_eq!(
        micros(&usage.next_run_time),
        micros(&run.start_time) + 300_000_000,
        "a manual pass pushes the next scheduled one"
    );
    assert!(usage.lag_warning, "{usage:?}");
    assert!(
        usage.lag_detail.starts_with("newest transcript is 1")
            && usage
                .lag_detail
                .ends_with("newer than the last pass (cadence 5m)"),
        "{}",
        usage.lag_detail
    );
    assert!(!tool_errors.lag_warning, "never for a disabled processor");

    let disabled = server
        .processors_client()
        .run_processor(RunProcessorRequest {
            name: "tool_errors".into(),
        })
        .await
        .unwrap_err();
    assert_error(&disabled, Code::FailedPrecondition, "PROCESSOR_DISABLED");

    let mut client = server.processors_client();
    let first = client
        .list_processors(ListProcessorsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.processors[0].name, "tool_errors");
    let second = client
        .list_processors(ListProcessorsRequest {
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.processors[0].name, "usage");
    assert_eq!(second.next_page_token, "");
}

#[tokio::test]
async fn state_pages_in_order_and_filters() {
    let transcripts = Transcripts::new();
    for key in ["bob/b.jsonl", "alice/a2.jsonl", "alice/a1.jsonl"] {
        transcripts.write_old(key, &lines("s"), HOUR);
    }
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| config.processors.transcripts_dir = dir
    })
    .await;
    let mut client = server.processors_client();
    for name in ["usage", "tool_errors"] {
        client
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_processor_state(ListProcessorStateRequest {
                page_size: 4,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(
            page.states
                .into_iter()
                .map(|s| format!("{}:{}", s.processor, s.transcript)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [
            "tool_errors:alice/a1.jsonl",
            "tool_errors:alice/a2.jsonl",
            "tool_errors:bob/b.jsonl",
            "usage:alice/a1.jsonl",
            "usage:alice/a2.jsonl",
            "usage:bob/b.jsonl",
        ]
    );
    let alice_usage = client
        .list_processor_state(ListProcessorStateRequest {
            processor: "usage".into(),
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .states;
    assert_eq!(alice_usage.len(), 2);
    assert!(
        alice_usage
            .iter()
            .all(|s| s.owner == "alice" && s.processor == "usage")
    );
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field_and_change_nothing() {
    let transcripts = Transcripts::new();
    transcripts.write_old("alice/s1.jsonl", &lines("s1"), HOUR);
    let server = TestServer::start_with({
        let dir = transcripts.path();
        move |config| config.processors.transcripts_dir = dir
    })
    .await;
    let mut client = server.processors_client();
    for name in ["usage", "tool_errors"] {
        client
            .run_processor(RunProcessorRequest { name: name.into() })
            .await
            .unwrap();
    }
    let page_token = client
        .list_processor_state(ListProcessorStateRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let too_many: Vec<String> = (0..1001).map(|i| format!("alice/s{i}.jsonl")).collect();

    let refusals = [
        (
            client
                .run_processor(RunProcessorRequest::default())
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "name",
        ),
        (
            client
                .run_processor(RunProcessorRequest {
                    name: "nope".into(),
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "name",
        ),
        (
            client
                .list_processors(ListProcessorsRequest {
                    page_size: -1,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            client
                .list_processors(ListProcessorsRequest {
                    page_token: "garbage".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_token",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    processor: "nope".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "processor",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    transcript: "alice/s1.json".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcript",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    owner: "alice/s1.jsonl".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "owner",
        ),
        (
            client
                .list_processor_state(ListProcessorStateRequest {
                    page_token: page_token.clone(),
                    processor: "usage".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_token",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest::default())
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "processor",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "usage".into(),
                    transcripts: vec!["alice/s1.jsonl".into(), "../etc.jsonl".into()],
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcripts[1]",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "usage".into(),
                    transcripts: too_many,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcripts",
        ),
        (
            client
                .reset_processor_state(ResetProcessorStateRequest {
                    processor: "nope".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "UNKNOWN_PROCESSOR",
            "processor",
        ),
        (
            client
                .get_usage(pb::GetUsageRequest {
                    transcript: "s1.jsonl".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "transcript",
        ),
        (
            client
                .get_usage(pb::GetUsageRequest {
                    page_size: -5,
                    ..Default::default()
                })
                .await
                .map(drop),
            "INVALID_ARGUMENT",
            "page_size",
        ),
    ];
    for (result, reason, field) in refusals {
        let status = result.expect_err(field);
        assert_error(&status, Code::InvalidArgument, reason);
        assert_eq!(bad_fields(&status), [field], "{status:?}");
        if reason == "UNKNOWN_PROCESSOR" {
            assert_eq!(
                error_metadata(&status, "known").as_deref(),
                Some("tool_errors,usage")
            );
            assert!(
                status.message().contains("tool_errors, usage"),
                "{}",
                status.message()
            );
        }
    }
    let states = client
        .list_processor_state(ListProcessorStateRequest::default())
        .await
        .unwrap()
        .into_inner()
        .states;
    assert_eq!(states.len(), 2, "the refused resets forgot nothing");
}
