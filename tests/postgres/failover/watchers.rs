//! The watchers: one Watch per replica, resumed elsewhere when it fails.

use super::*;

/// Everything one watcher received, and which replica served each segment.
pub struct WatcherLog {
    pub history: WatcherHistory,
    pub served_by: Vec<usize>,
}

impl WatcherLog {
    /// 4: watcher `home` failed over, never back to the replica that failed
    /// it, reached `head`, and its history passes the checker against the
    /// change log's `table`.
    pub fn saw_exactly_the_log(&self, home: usize, table: &[TableEvent], head: i64, context: &str) {
        let segments = self.history.segments.len();
        assert!(
            segments >= 2,
            "{context}: watcher {home} never failed over ({segments} segment)"
        );
        assert!(
            self.served_by.windows(2).all(|pair| pair[0] != pair[1]),
            "{context}: watcher {home} resumed on the replica that failed: {:?}",
            self.served_by
        );
        let reached = self.history.segments.last().unwrap().resume_point();
        assert!(
            reached >= head,
            "{context}: watcher {home} stopped at {reached}, before the head {head}"
        );
        if let Err(err) = history::check(&self.history, table, &[]) {
            panic!(
                "{context}: watcher {home} {:?} (segments on replicas {:?}): {err}",
                self.history.filter, self.served_by
            );
        }
    }
}

pub fn reached(target: &watch::Receiver<Option<i64>>, resume_seq: i64) -> bool {
    target.borrow().is_some_and(|target| resume_seq >= target)
}

/// Watches on replica `home`; when a stream fails, resumes on another
/// replica after the last resume_seq. Ends once it has passed `target`.
pub async fn follow(
    ctx: Ctx,
    home: usize,
    filter: EventFilter,
    mut target: watch::Receiver<Option<i64>>,
    seed: u64,
) -> WatcherLog {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = WatcherLog {
        history: WatcherHistory {
            filter: filter.clone(),
            segments: Vec::new(),
        },
        served_by: Vec::new(),
    };
    let mut previous = None;
    loop {
        let after_seq = log.history.segments.last().map_or(0, Segment::resume_point);
        if reached(&target, after_seq) {
            return log;
        }
        let (index, generation, channel) = match previous {
            None => ctx
                .replicas
                .get(home)
                .expect("every replica serves at first"),
            Some(previous) => ctx.replicas.pick(&mut rng, Some(previous)).await,
        };
        previous = Some(index);
        let request = WatchRequest {
            after_seq,
            filter: Some(filter.clone()),
        };
        let opened = timeout(CALL_TIMEOUT, EventsClient::new(channel).watch(request)).await;
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                ctx.failed(index, generation, "Watch", &describe(&status));
                continue;
            }
            Err(_) => {
                ctx.failed(index, generation, "Watch", "no answer");
                continue;
            }
        };
        let mut segment = Segment {
            after_seq,
            received: Vec::new(),
        };
        let ended = loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(message)) => {
                        segment.received.push(Received::from(&message));
                        if reached(&target, segment.resume_point()) {
                            break None;
                        }
                    }
                    Ok(None) => break Some("the stream ended".to_owned()),
                    Err(status) => break Some(describe(&status)),
                },
                changed = target.changed() => {
                    // An error: the test failed and dropped the target.
                    if changed.is_err() || reached(&target, segment.resume_point()) {
                        break None;
                    }
                }
            }
        };
        log.history.segments.push(segment);
        log.served_by.push(index);
        match ended {
            None => return log,
            Some(error) => ctx.failed(index, generation, "Watch stream", &error),
        }
    }
}
