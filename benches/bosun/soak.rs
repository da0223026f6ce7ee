//! The soak: a steady mixed load (lesson writes, activity reports, reads,
//! and watchers following every event) for a bounded time, with retention
//! compaction running every 10s. Every 10s it prints the server's memory
//! and the calls' latency; at the end it fails if memory grew more than 10%
//! after warm-up, if a call failed, or if a watcher missed an event.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bosun::pb;
use bosun::pb::lessons_client::LessonsClient;
use bosun::pb::sessions_client::SessionsClient;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::daemon::Bosun;
use crate::load::histogram;
use crate::{rpc, stream};

const SAMPLE: Duration = Duration::from_secs(10);
const WATCHERS: usize = 20;
/// Calls per second of each kind.
const PACE: [(Kind, u32); 4] = [
    (Kind::RecordLesson, 200),
    (Kind::ReportActivity, 200),
    (Kind::GetSession, 200),
    (Kind::ListLessons, 20),
];

#[derive(Clone, Copy)]
enum Kind {
    RecordLesson,
    ReportActivity,
    GetSession,
    ListLessons,
}

/// Latencies and failures of the current sample.
#[derive(Default)]
struct Sample {
    latency: Option<Histogram<u64>>,
    errors: u64,
    first_error: Option<String>,
}

pub async fn run(duration: Duration) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let config = format!(
        "{}[events]\nretention = \"1m\"\ncompaction_interval = \"10s\"\n",
        crate::QUIET
    );
    let bosun = Bosun::start(&root.path().join("soak"), &config).await?;
    let channels = Arc::new(bosun.process.connections(rpc::CONNECTIONS).await?);
    let sessions = Arc::new(rpc::sessions(channels[0].clone()).await?);
    let start_head = stream::head(channels[0].clone()).await?;
    let streams = stream::open(&bosun, WATCHERS, start_head).await?;
    let stop = CancellationToken::new();
    let sample = Arc::new(Mutex::new(Sample::default()));
    let mut load = JoinSet::new();
    for (kind, rate) in PACE {
        load.spawn(paced(
            kind,
            rate,
            channels.clone(),
            sessions.clone(),
            sample.clone(),
            stop.clone(),
        ));
    }
    let followers = stream::Followers::follow(streams, start_head);

    let warmup = (duration / 5)
        .max(Duration::from_secs(60))
        .min(duration / 2);
    println!(
        "soak: {}s of mixed load ({}), {WATCHERS} watchers, compaction every 10s; warm-up {}s",
        duration.as_secs(),
        PACE.iter()
            .map(|(kind, rate)| format!("{} {rate}/s", kind.name()))
            .collect::<Vec<_>>()
            .join(", "),
        warmup.as_secs()
    );
    println!("| time | RSS | calls | p50 / p99 / max | errors | change log kept |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let started = Instant::now();
    let mut after_warmup: Option<u64> = None;
    let mut peak_after_warmup = 0u64;
    let mut errors = 0;
    let mut first_error = None;
    while started.elapsed() < duration {
        tokio::time::sleep(SAMPLE).await;
        let taken = std::mem::take(&mut *sample.lock().expect("sample lock"));
        let rss = bosun.process.rss_bytes()?;
        let heads = pb::events_client::EventsClient::new(channels[0].clone())
            .get_head(pb::GetHeadRequest {})
            .await?
            .into_inner();
        let latency = taken.latency.unwrap_or_else(histogram);
        errors += taken.errors;
        first_error = first_error.or(taken.first_error);
        println!(
            "| {}s | {:.1} MB | {} | {:.2} / {:.2} / {:.1} ms | {} | {} |",
            started.elapsed().as_secs(),
            rss as f64 / 1e6,
            latency.len(),
            latency.value_at_quantile(0.5) as f64 / 1e3,
            latency.value_at_quantile(0.99) as f64 / 1e3,
            latency.max() as f64 / 1e3,
            taken.errors,
            heads.head_seq - heads.oldest_seq + 1,
        );
        if started.elapsed() >= warmup {
            after_warmup.get_or_insert(rss);
            peak_after_warmup = peak_after_warmup.max(rss);
        }
    }
    stop.cancel();
    while load.join_next().await.is_some() {}
    let end_head = stream::head(channels[0].clone()).await?;
    let delivery = followers.finish(end_head).await?;
    let (watchers, incomplete) = (delivery.watchers, delivery.incomplete);
    let base = after_warmup.context("the soak ended before its warm-up")?;
    let growth = peak_after_warmup as f64 / base as f64 - 1.0;
    println!(
        "memory after warm-up {:.1} MB, peak after it {:.1} MB: {:+.1}%",
        base as f64 / 1e6,
        peak_after_warmup as f64 / 1e6,
        growth * 100.0
    );
    println!(
        "{} events; {} of {watchers} watchers got every one",
        end_head - start_head,
        watchers - incomplete
    );
    ensure!(errors == 0, "{errors} calls failed, first: {first_error:?}");
    ensure!(incomplete == 0, "{incomplete} watchers missed events");
    ensure!(
        growth <= 0.10,
        "memory grew {:.1}% after warm-up (limit 10%)",
        growth * 100.0
    );
    println!("soak passed");
    bosun.process.stop();
    Ok(())
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::RecordLesson => "RecordLesson",
            Self::ReportActivity => "ReportActivity",
            Self::GetSession => "GetSession",
            Self::ListLessons => "ListLessons",
        }
    }
}

/// Issues `kind` calls at `rate` per second until `stop`, each on its own
/// task so a slow answer never slows the pace.
async fn paced(
    kind: Kind,
    rate: u32,
    channels: Arc<Vec<Channel>>,
    sessions: Arc<Vec<String>>,
    sample: Arc<Mutex<Sample>>,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = JoinSet::new();
    let mut n: u64 = 0;
    while !stop.is_cancelled() {
        ticker.tick().await;
        n += 1;
        let channel = channels[n as usize % channels.len()].clone();
        let session_id = sessions[n as usize % sessions.len()].clone();
        let sample = sample.clone();
        calls.spawn(async move {
            let sent = Instant::now();
            let result = call(kind, channel, session_id, n).await;
            let micros = sent.elapsed().as_micros().max(1) as u64;
            let mut sample = sample.lock().expect("sample lock");
            match result {
                Ok(()) => sample
                    .latency
                    .get_or_insert_with(histogram)
                    .saturating_record(micros),
                Err(err) => {
                    sample.errors += 1;
                    sample.first_error.get_or_insert(err.to_string());
                }
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

async fn call(
    kind: Kind,
    channel: Channel,
    session_id: String,
    n: u64,
) -> Result<(), tonic::Status> {
    match kind {
        Kind::RecordLesson => LessonsClient::new(channel)
            .record_lesson(pb::RecordLessonRequest {
                request_id: String::new(),
                lesson: Some(rpc::lesson(0, n)),
            })
            .await
            .map(drop),
        Kind::ReportActivity => SessionsClient::new(channel)
            .report_activity(pb::ReportActivityRequest {
                request_id: String::new(),
                session_id,
                state: if n.is_multiple_of(2) {
                    pb::ActivityState::Active
                } else {
                    pb::ActivityState::Ready
                } as i32,
                source: pb::ActivitySource::Hook as i32,
            })
            .await
            .map(drop),
        Kind::GetSession => SessionsClient::new(channel)
            .get_session(pb::GetSessionRequest { session_id })
            .await
            .map(drop),
        Kind::ListLessons => LessonsClient::new(channel)
            .list_lessons(pb::ListLessonsRequest {
                page_size: 100,
                ..Default::default()
            })
            .await
            .map(drop),
    }
}
