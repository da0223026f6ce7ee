//! CPU time used during a measured window, read from /proc: the server's,
//! by thread name, and the load generator's (this process). On a machine
//! whose cores are all busy, a call's CPU (the server's plus the load
//! generator's) is what bounds the rate: cores / CPU per call.

use std::collections::BTreeMap;
use std::future::Future;

use anyhow::Context;

use crate::load::{Run, Window};

/// /proc counts CPU time in USER_HZ ticks, which Linux fixes at 100 a second.
const TICK_MICROS: u64 = 10_000;

/// CPU time, in microseconds, used during a window.
#[derive(Debug, Default, Clone)]
pub struct CpuUse {
    /// The server's, by thread name (threads of one name summed).
    pub server: BTreeMap<String, u64>,
    /// The load generator's.
    pub load: u64,
}

impl CpuUse {
    pub fn server_total(&self) -> u64 {
        self.server.values().sum()
    }

    /// The server's threads named `name`.
    pub fn thread(&self, name: &str) -> u64 {
        self.server.get(name).copied().unwrap_or(0)
    }

    /// Adds another window's use.
    pub fn add(&mut self, other: &Self) {
        for (name, micros) in &other.server {
            *self.server.entry(name.clone()).or_default() += micros;
        }
        self.load += other.load;
    }
}

/// Microseconds of `micros` per one of `calls`.
pub fn per_call(micros: u64, calls: u64) -> f64 {
    micros as f64 / calls.max(1) as f64
}

/// Runs `run` and measures the CPU that the server `pid` and this process
/// use during its measured part (after `window.warmup`, for
/// `window.measure`), the part whose calls `Run` counts.
pub async fn measured<F: Future<Output = Run>>(pid: u32, window: Window, run: F) -> (Run, CpuUse) {
    let sampler = async {
        tokio::time::sleep(window.warmup).await;
        let before = Sample::take(pid);
        tokio::time::sleep(window.measure).await;
        between(before, Sample::take(pid))
    };
    tokio::join!(run, sampler)
}

/// Runs `run` and measures the CPU the server `pid` and this process use
/// while it runs.
pub async fn during<F: Future>(pid: u32, run: F) -> (F::Output, CpuUse) {
    let before = Sample::take(pid);
    let output = run.await;
    let used = between(before, Sample::take(pid));
    (output, used)
}

/// What was used between two samples; nothing if either failed.
fn between(before: anyhow::Result<Sample>, after: anyhow::Result<Sample>) -> CpuUse {
    match (before, after) {
        (Ok(before), Ok(after)) => after.since(&before),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("cannot read CPU time from /proc: {err:#}");
            CpuUse::default()
        }
    }
}

/// The CPU time this process has used so far, in microseconds.
pub fn own() -> anyhow::Result<u64> {
    Ok(parse_stat(&std::fs::read_to_string("/proc/self/stat")?)?.1)
}

/// CPU time used so far.
struct Sample {
    server: BTreeMap<String, u64>,
    load: u64,
}

impl Sample {
    fn take(pid: u32) -> anyhow::Result<Self> {
        let mut server = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread may end between the listing and the read.
            let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else {
                continue;
            };
            let (name, micros) = parse_stat(&stat)?;
            *server.entry(name).or_default() += micros;
        }
        let (_, load) = parse_stat(&std::fs::read_to_string("/proc/self/stat")?)?;
        Ok(Self { server, load })
    }

    fn since(&self, before: &Self) -> CpuUse {
        let server = self
            .server
            .iter()
            .map(|(name, micros)| {
                let earlier = before.server.get(name).copied().unwrap_or(0);
                (name.clone(), micros.saturating_sub(earlier))
            })
            .collect();
        CpuUse {
            server,
            load: self.load.saturating_sub(before.load),
        }
    }
}

/// The name and user + system CPU time of a `/proc/.../stat` line (for a
/// process, all its threads'). The name, in parentheses, may hold spaces
/// and parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> anyhow::Result<(String, u64)> {
    let open = stat.find('(').context("no name in stat")?;
    let close = stat.rfind(')').context("no name in stat")?;
    let name = stat[open + 1..close].to_string();
    // After the name: state, ppid, ... utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .context("a short stat line")?
            .parse::<u64>()?)
    };
    Ok((name, (ticks(11)? + ticks(12)?) * TICK_MICROS))
}
