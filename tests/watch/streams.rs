//! A stream's life: shutdown ends it, a client that goes away frees it, bad
//! requests are refused, and an idle stream gets progress messages.

use super::*;

#[tokio::test]
async fn shutdown_ends_open_streams_instead_of_waiting_for_them() {
    let mut server =
        TestServer::start_with(|config| config.drain_timeout = Duration::from_secs(3600)).await;
    let live = Live::open(&server, 0, EventFilter::default())
        .await
        .unwrap();
    let stopping = tokio::time::timeout(PATIENCE, server.stop());
    let (stopped, (_, status)) = tokio::join!(stopping, live.ended());
    stopped.expect("shutdown did not wait for the open stream");
    assert_error(
        &status.expect("an error status"),
        Code::Unavailable,
        "SHUTTING_DOWN",
    );
}

#[tokio::test]
async fn streams_free_their_resources_when_the_client_goes_away() {
    let server = start().await;
    let mut open = server.watchers.open_streams();
    let streams: Vec<Live> =
        join_all((0..3).map(|_| Live::open(&server, 0, EventFilter::default())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::timeout(PATIENCE, open.wait_for(|n| *n == 3))
        .await
        .unwrap()
        .unwrap();
    let mut streams = streams.into_iter();
    streams.next().unwrap().disconnect();
    streams.next().unwrap().disconnect();
    tokio::time::timeout(PATIENCE, open.wait_for(|n| *n == 1))
        .await
        .expect("closed streams were not freed")
        .unwrap();
}

#[tokio::test]
async fn bad_watch_requests_are_refused() {
    let server = start().await;
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: -1,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    let filter = EventFilter {
        event_type_prefixes: vec!["Bad Prefix".into()],
        ..Default::default()
    };
    let status = server
        .events()
        .watch(WatchRequest {
            after_seq: 0,
            filter: Some(filter),
        })
        .await
        .unwrap_err();
    assert_eq!(common::bad_fields(&status), ["filter.event_type_prefixes"]);
}

#[tokio::test]
async fn an_idle_stream_gets_progress_messages_carrying_the_head() {
    let server = start().await;
    write(&server, "gate_failure", "s-0", 1).await;
    write(&server, "gate_failure", "s-0", 1).await;
    // Filtered to match nothing: only bookmarks can move its cursor.
    let filter = EventFilter {
        session_id: "nobody".into(),
        ..Default::default()
    };
    let mut stream = server
        .events()
        .watch(WatchRequest {
            after_seq: 0,
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner();
    let message = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(message.progress && message.events.is_empty());
    assert_eq!(message.resume_seq, 2, "a bookmark carries the head");
    write(&server, "gate_failure", "s-0", 1).await;
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(message.progress, "nothing matches the filter");
        assert!(
            message.resume_seq == 2 || message.resume_seq == 3,
            "{message:?}"
        );
        if message.resume_seq == 3 {
            break;
        }
    }
}
