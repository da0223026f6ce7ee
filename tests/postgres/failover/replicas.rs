//! The replicas as clients see them, and what every load task shares.

use super::*;

// The replicas as clients see them.

/// One replica's slot: the generation of its process, and a channel while
/// that process serves.
#[derive(Clone, Default)]
pub struct Slot {
    pub generation: u64,
    pub channel: Option<Channel>,
}

/// Where clients find the serving replicas. The killer retires a slot
/// BEFORE it sends SIGKILL, so a client whose call failed can tell whether
/// the replica it called was killed.
#[derive(Clone)]
pub struct Replicas(pub Arc<watch::Sender<Vec<Slot>>>);

impl Replicas {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(vec![
            Slot::default();
            REPLICAS
        ])))
    }

    pub fn publish(&self, index: usize, channel: Channel) {
        self.0
            .send_modify(|slots| slots[index].channel = Some(channel));
    }

    pub fn retire(&self, index: usize) {
        self.0.send_modify(|slots| {
            slots[index].generation += 1;
            slots[index].channel = None;
        });
    }

    /// Whether process `generation` of replica `index` still serves.
    pub fn serving(&self, index: usize, generation: u64) -> bool {
        let slots = self.0.borrow();
        slots[index].generation == generation && slots[index].channel.is_some()
    }

    pub fn get(&self, index: usize) -> Option<(usize, u64, Channel)> {
        let slot = self.0.borrow()[index].clone();
        Some((index, slot.generation, slot.channel?))
    }

    /// A serving replica other than `avoid`, at random; waits for a restart
    /// when there is none.
    pub async fn pick(&self, rng: &mut StdRng, avoid: Option<usize>) -> (usize, u64, Channel) {
        let mut changes = self.0.subscribe();
        let deadline = Instant::now() + PATIENCE;
        loop {
            {
                let slots = changes.borrow_and_update();
                let serving: Vec<usize> = (0..REPLICAS)
                    .filter(|i| Some(*i) != avoid && slots[*i].channel.is_some())
                    .collect();
                if let Some(&index) = serving.get(rng.random_range(0..serving.len().max(1))) {
                    let slot = &slots[index];
                    return (index, slot.generation, slot.channel.clone().unwrap());
                }
            }
            timeout(deadline - Instant::now(), changes.changed())
                .await
                .expect("a replica other than the one that failed serves")
                .unwrap();
        }
    }
}

/// Failed calls: those on a killed replica are the test's doing; any other
/// is a finding.
#[derive(Default)]
pub struct Failures {
    pub on_killed: usize,
    pub unexpected: Vec<String>,
}

/// What every load task shares.
#[derive(Clone)]
pub struct Ctx {
    pub replicas: Replicas,
    pub failures: Arc<Mutex<Failures>>,
    pub stop: Arc<AtomicBool>,
}

impl Ctx {
    pub fn failed(&self, index: usize, generation: u64, what: &str, error: &str) {
        let mut failures = self.failures.lock().unwrap();
        if self.replicas.serving(index, generation) {
            failures
                .unexpected
                .push(format!("{what} on serving replica {index}: {error}"));
        } else {
            failures.on_killed += 1;
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Calls `call` on a serving replica (not `avoid`), and after a failure
    /// again, same request, on another one, until one answers. Returns the
    /// answer, the replica that gave it and how many calls it took.
    pub async fn until_answered<T, F, Fut>(
        &self,
        rng: &mut StdRng,
        what: &str,
        mut avoid: Option<usize>,
        mut call: F,
    ) -> (T, usize, usize)
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + PATIENCE;
        let mut unexpected = 0;
        for attempt in 1.. {
            let (index, generation, channel) = self.replicas.pick(rng, avoid).await;
            let error = match timeout(CALL_TIMEOUT, call(channel)).await {
                Ok(Ok(answer)) => return (answer, index, attempt),
                Ok(Err(status)) => describe(&status),
                Err(_) => format!("no answer in {CALL_TIMEOUT:?}"),
            };
            if self.replicas.serving(index, generation) {
                unexpected += 1;
            }
            self.failed(index, generation, what, &error);
            assert!(
                Instant::now() < deadline && unexpected < 3,
                "{what}: no replica answered ({unexpected} failures on serving replicas); last: {error}"
            );
            avoid = Some(index);
        }
        unreachable!()
    }
}

pub fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
