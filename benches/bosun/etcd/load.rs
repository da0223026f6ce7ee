//! The etcd peer's load: Puts at a fixed concurrency, and paced writes to
//! bosun and to etcd while their watchers check every event arrives once,
//! in order.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bosun::pb;
use bosun::pb::lessons_client::LessonsClient;
use hdrhistogram::Histogram;
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::daemon::Bosun;
use crate::load::{Run, Window, closed_loop, histogram};
use crate::rpc;
use crate::sqlite::now_micros;
use crate::stream::{self, Delivery};

use super::server::{Client, Etcd, WatchCreateRequest, WatchResponse};

/// Watch streams per connection (as stream.rs).
const STREAMS_PER_CONNECTION: usize = 50;
/// Keys the watchers follow (all of them, nothing else is written there).
const WATCHED: &[u8] = b"bench/watched/";
/// The end of `WATCHED`'s range: its last byte plus one.
const WATCHED_END: &[u8] = b"bench/watched0";

/// Puts from `concurrency` workers, each value the lesson RecordLesson
/// would carry, each key new.
pub(super) async fn put(channels: Arc<Vec<Channel>>, concurrency: usize, window: Window) -> Run {
    closed_loop(concurrency, window, move |worker, n| {
        let mut client = Client::new(channels[worker % channels.len()].clone());
        let key = format!("bench/writes/{worker}/{n}").into_bytes();
        let value = rpc::lesson(worker, n).encode_to_vec();
        async move { client.put(key, value).await.map(drop) }
    })
    .await
}

/// `rate` RecordLessons a second to `watchers` Watch streams; each lesson
/// carries the time before its call in its work item id.
pub(super) async fn bosun_delivery(
    bosun: &Bosun,
    watchers: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Delivery> {
    let writer = bosun.process.connections(1).await?.remove(0);
    let start = stream::head(writer.clone()).await?;
    let mut followers = Followers::new();
    for stream in stream::open(bosun, watchers, start).await? {
        followers.spawn(move |end| bosun_watcher(stream, start, end));
    }
    let client = LessonsClient::new(writer.clone());
    pace(rate, duration, |n| {
        let mut client = client.clone();
        async move {
            let mut lesson = rpc::lesson(usize::MAX, n);
            lesson.work_item_id = format!("PEER-{}-{n}", now_micros());
            let request = pb::RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(lesson),
            };
            client.record_lesson(request).await.map(drop)
        }
    })
    .await?;
    followers.finish(start, stream::head(writer).await?).await
}

/// `rate` Puts a second to `watchers` Watch streams (one watch each, as
/// bosun's); each value starts with the time before its call.
pub(super) async fn etcd_delivery(
    etcd: &Etcd,
    watchers: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Delivery> {
    let client = Client::new(etcd.process.connections(1).await?.remove(0));
    let start = client.clone().revision().await?;
    let channels = etcd
        .process
        .connections(watchers.div_ceil(STREAMS_PER_CONNECTION))
        .await?;
    let mut followers = Followers::new();
    for n in 0..watchers {
        let mut stream = Client::new(channels[n / STREAMS_PER_CONNECTION].clone())
            .watch(WatchCreateRequest {
                key: WATCHED.to_vec(),
                range_end: WATCHED_END.to_vec(),
                start_revision: start + 1,
            })
            .await?;
        let created = stream.message().await?.context("etcd ended a new watch")?;
        ensure!(
            created.created,
            "etcd's first watch response was not `created`"
        );
        followers.spawn(move |end| etcd_watcher(stream, start, end));
    }
    let lesson = rpc::lesson(usize::MAX, 0).encode_to_vec();
    pace(rate, duration, |n| {
        let mut client = client.clone();
        let mut key = WATCHED.to_vec();
        key.extend(n.to_string().into_bytes());
        let lesson = lesson.clone();
        async move {
            let mut value = now_micros().to_le_bytes().to_vec();
            value.extend(lesson);
            client.put(key, value).await.map(drop)
        }
    })
    .await?;
    followers
        .finish(start, client.clone().revision().await?)
        .await
}

/// Issues `write(n)` `rate` times a second for `duration`, each on its own
/// task (a slow acknowledgement never slows the pace), and waits for all.
pub(super) async fn pace<F, Fut>(rate: u32, duration: Duration, write: F) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = JoinSet::new();
    let until = Instant::now() + duration;
    let mut n = 0;
    while Instant::now() < until {
        ticker.tick().await;
        n += 1;
        calls.spawn(write(n));
    }
    while let Some(call) = calls.join_next().await {
        call?.context("a paced write failed")?;
    }
    Ok(())
}

type Seen = anyhow::Result<(u64, Histogram<u64>)>;

/// Watcher tasks, each receiving until the position (bosun's seq, etcd's
/// revision) it is told to stop at.
pub(super) struct Followers {
    tasks: JoinSet<Seen>,
    end_tx: watch::Sender<i64>,
}

impl Followers {
    fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            end_tx: watch::channel(i64::MAX).0,
        }
    }

    fn spawn<F, Fut>(&mut self, watcher: F)
    where
        F: FnOnce(watch::Receiver<i64>) -> Fut,
        Fut: Future<Output = Seen> + Send + 'static,
    {
        self.tasks.spawn(watcher(self.end_tx.subscribe()));
    }

    /// Waits (60s at most) until every watcher reached `end`; each must have
    /// seen every position after `start` once.
    async fn finish(mut self, start: i64, end: i64) -> anyhow::Result<Delivery> {
        self.end_tx.send_replace(end);
        let expected = (end - start) as u64;
        let mut delivery = Delivery {
            watchers: self.tasks.len(),
            events: expected,
            incomplete: 0,
            latency: histogram(),
        };
        while let Some(seen) = tokio::time::timeout(Duration::from_secs(60), self.tasks.join_next())
            .await
            .context("watchers did not reach the end within 60s")?
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

/// A bosun watcher: each seq must follow the last; latency from the time in
/// the lesson's work item id.
pub(super) async fn bosun_watcher(
    mut stream: Streaming<pb::WatchResponse>,
    mut last: i64,
    mut end: watch::Receiver<i64>,
) -> Seen {
    let (mut events, mut latency) = (0, histogram());
    loop {
        if last >= *end.borrow_and_update() {
            return Ok((events, latency));
        }
        tokio::select! {
            message = stream.message() => {
                let message = message?.with_context(|| format!("bosun ended a watch at {last}"))?;
                let now = now_micros();
                for event in message.events {
                    ensure!(event.seq == last + 1, "seq {} after {last}", event.seq);
                    last = event.seq;
                    events += 1;
                    let Some(pb::event::Payload::Lesson(lesson)) = &event.payload else {
                        bail!("event {last} is not a lesson");
                    };
                    let sent = lesson
                        .work_item_id
                        .split('-')
                        .nth(1)
                        .and_then(|micros| micros.parse::<i64>().ok())
                        .with_context(|| format!("no time in {:?}", lesson.work_item_id))?;
                    latency.saturating_record((now - sent).max(1) as u64);
                }
            }
            changed = end.changed() => changed?,
        }
    }
}

/// An etcd watcher: each revision must follow the last (only the paced
/// writer writes); latency from the time the value starts with.
pub(super) async fn etcd_watcher(
    mut stream: Streaming<WatchResponse>,
    mut last: i64,
    mut end: watch::Receiver<i64>,
) -> Seen {
    let (mut events, mut latency) = (0, histogram());
    loop {
        if last >= *end.borrow_and_update() {
            return Ok((events, latency));
        }
        tokio::select! {
            message = stream.message() => {
                let message = message?.with_context(|| format!("etcd ended a watch at {last}"))?;
                ensure!(!message.canceled, "etcd cancelled a watch: {}", message.cancel_reason);
                let now = now_micros();
                for event in message.events {
                    let kv = event.kv.unwrap_or_default();
                    ensure!(kv.mod_revision == last + 1, "revision {} after {last}", kv.mod_revision);
                    last = kv.mod_revision;
                    events += 1;
                    let sent = kv
                        .value
                        .first_chunk::<8>()
                        .map(|bytes| i64::from_le_bytes(*bytes))
                        .context("a value without its time")?;
                    latency.saturating_record((now - sent).max(1) as u64);
                }
            }
            changed = end.changed() => changed?,
        }
    }
}
