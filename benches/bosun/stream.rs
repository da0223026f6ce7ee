//! The change stream: commit-to-delivery latency to many watchers at a
//! steady write rate, the catch-up replay rate, and memory per idle watcher.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bosun::pb;
use bosun::pb::events_client::EventsClient;
use bosun::pb::lessons_client::LessonsClient;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::daemon::Bosun;
use crate::load::histogram;
use crate::rpc;
use crate::sqlite::now_micros;

/// Watch streams opened per connection.
const STREAMS_PER_CONNECTION: usize = 50;

/// What the watchers saw.
pub struct Delivery {
    pub watchers: usize,
    pub events: u64,
    /// Watchers that missed or duplicated an event (must be 0).
    pub incomplete: usize,
    pub latency: Histogram<u64>,
}

/// Open streams, each from `after_seq`, spread over connections.
pub async fn open(
    bosun: &Bosun,
    count: usize,
    after_seq: i64,
) -> anyhow::Result<Vec<Streaming<pb::WatchResponse>>> {
    let channels = bosun
        .process
        .connections(count.div_ceil(STREAMS_PER_CONNECTION))
        .await?;
    let mut streams = Vec::with_capacity(count);
    for n in 0..count {
        let mut client = EventsClient::new(channels[n / STREAMS_PER_CONNECTION].clone());
        let stream = client
            .watch(pb::WatchRequest {
                after_seq,
                filter: None,
            })
            .await?
            .into_inner();
        streams.push(stream);
    }
    Ok(streams)
}

pub async fn head(channel: Channel) -> anyhow::Result<i64> {
    Ok(EventsClient::new(channel)
        .get_head(pb::GetHeadRequest {})
        .await?
        .into_inner()
        .head_seq)
}

/// Watchers following every event from `start_head`, until told the head
/// to stop at.
pub struct Followers {
    tasks: JoinSet<anyhow::Result<(u64, Histogram<u64>)>>,
    final_tx: watch::Sender<i64>,
    start_head: i64,
}

impl Followers {
    pub fn follow(streams: Vec<Streaming<pb::WatchResponse>>, start_head: i64) -> Self {
        let (final_tx, final_rx) = watch::channel(i64::MAX);
        let mut tasks = JoinSet::new();
        for stream in streams {
            tasks.spawn(watcher(stream, start_head, final_rx.clone()));
        }
        Self {
            tasks,
            final_tx,
            start_head,
        }
    }

    /// Waits (60s at most) until every watcher reached `end_head`.
    pub async fn finish(mut self, end_head: i64) -> anyhow::Result<Delivery> {
        self.final_tx.send_replace(end_head);
        let expected = (end_head - self.start_head) as u64;
        let mut delivery = Delivery {
            watchers: self.tasks.len(),
            events: expected,
            incomplete: 0,
            latency: histogram(),
        };
        let deadline = Duration::from_secs(60);
        while let Some(seen) = tokio::time::timeout(deadline, self.tasks.join_next())
            .await
            .context("watchers did not reach the head within 60s")?
        {
            let (events, latency) = seen??;
            if events != expected {
                delivery.incomplete += 1;
            }
            delivery.latency.add(latency)?;
        }
        Ok(delivery)
    }
}

/// Writes `rate` lessons a second for `duration` (each call on its own task,
/// so a slow acknowledgement never slows the pace) while `streams` watch;
/// then waits until every stream reached the head.
pub async fn deliver(
    bosun: &Bosun,
    streams: Vec<Streaming<pb::WatchResponse>>,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Delivery> {
    let writer = bosun.process.connections(1).await?.remove(0);
    let start_head = head(writer.clone()).await?;
    let followers = Followers::follow(streams, start_head);
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = JoinSet::new();
    let until = Instant::now() + duration;
    let mut n = 0;
    while Instant::now() < until {
        ticker.tick().await;
        let mut client = LessonsClient::new(writer.clone());
        n += 1;
        calls.spawn(async move {
            client
                .record_lesson(pb::RecordLessonRequest {
                    request_id: String::new(),
                    lesson: Some(rpc::lesson(usize::MAX, n)),
                })
                .await
        });
    }
    while let Some(call) = calls.join_next().await {
        call?.context("a paced write failed")?;
    }
    followers.finish(head(writer).await?).await
}

/// Receives until the head `final_rx` names; returns the events seen (each
/// seq must follow the last) and their commit-to-delivery latencies.
async fn watcher(
    mut stream: Streaming<pb::WatchResponse>,
    mut last_seq: i64,
    mut final_rx: watch::Receiver<i64>,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut latency = histogram();
    let mut events = 0;
    loop {
        if last_seq >= *final_rx.borrow_and_update() {
            return Ok((events, latency));
        }
        tokio::select! {
            message = stream.message() => {
                let Some(message) = message? else {
                    anyhow::bail!("the stream ended at seq {last_seq}");
                };
                let now = now_micros();
                for event in message.events {
                    ensure!(event.seq == last_seq + 1, "seq {} after {last_seq}", event.seq);
                    last_seq = event.seq;
                    events += 1;
                    let committed = event.create_time.map_or(now, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
                    latency.saturating_record((now - committed).max(1) as u64);
                }
            }
            changed = final_rx.changed() => changed?,
        }
    }
}

/// Streams every event from the start to one client; returns the rate.
pub async fn replay(bosun: &Bosun, count: i64) -> anyhow::Result<(f64, Duration)> {
    let channel = bosun.process.connections(1).await?.remove(0);
    let started = Instant::now();
    let mut stream = EventsClient::new(channel)
        .watch(pb::WatchRequest {
            after_seq: 0,
            filter: None,
        })
        .await?
        .into_inner();
    let mut seen = 0i64;
    while seen < count {
        let message = stream.message().await?.context("the replay ended early")?;
        seen += message.events.len() as i64;
    }
    let took = started.elapsed();
    Ok((count as f64 / took.as_secs_f64(), took))
}

/// Opens `count` idle streams and returns the server's memory per stream,
/// once each stream has answered (a progress message proves it is open).
pub async fn idle_memory(bosun: &Bosun, count: usize) -> anyhow::Result<(f64, u64, u64)> {
    let channel = bosun.process.connections(1).await?.remove(0);
    let before = bosun.process.rss_bytes()?;
    let at = head(channel).await?;
    let streams = open(bosun, count, at).await?;
    let mut tasks = JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let first = stream.message().await;
            (stream, first)
        });
    }
    let mut open_streams = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        let (stream, first) = joined?;
        ensure!(
            first?.is_some_and(|message| message.progress),
            "an idle stream's first message was not progress"
        );
        open_streams.push(stream);
    }
    let after = bosun.process.rss_bytes()?;
    let per_stream = after.saturating_sub(before) as f64 / count as f64;
    drop(open_streams);
    Ok((per_stream, before, after))
}
