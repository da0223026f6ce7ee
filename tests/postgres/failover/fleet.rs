//! The processes: three `bosun serve` replicas, killed and restarted.

use super::*;

pub struct Fleet {
    pub root: tempfile::TempDir,
    pub envs: Vec<(&'static str, String)>,
    pub serving: Vec<Option<BosunProcess>>,
    pub generations: Vec<u64>,
    /// Processes killed so far, kept for their logs.
    pub killed: Vec<(String, BosunProcess)>,
    pub replicas: Replicas,
    /// Every kill: (replica, unix micros just before SIGKILL).
    pub kills: Vec<(usize, i64)>,
}

impl Fleet {
    pub fn name(&self, index: usize) -> String {
        format!("replica-{index}.{}", self.generations[index])
    }

    pub fn spawn(&mut self, index: usize) {
        let data_dir = self.root.path().join(format!("data-{index}"));
        let mut envs = self.envs.clone();
        envs.push(("BOSUN_REPLICA_NAME", self.name(index)));
        self.serving[index] = Some(BosunProcess::spawn(&data_dir, &envs));
    }

    /// Waits until replica `index` serves, then hands it to clients.
    pub async fn ready(&mut self, index: usize) {
        let name = self.name(index);
        let process = self.serving[index].as_mut().unwrap();
        let addr = match timeout(PATIENCE, process.ready()).await {
            Ok(Some(addr)) => addr,
            outcome => panic!(
                "{name} did not serve ({}):\n{}",
                if outcome.is_err() {
                    "timed out"
                } else {
                    "exited"
                },
                process.log_tail(30)
            ),
        };
        let channel = timeout(PATIENCE, connect(addr))
            .await
            .unwrap_or_else(|_| panic!("{name} answered no health check"));
        self.replicas.publish(index, channel);
    }

    pub async fn start(&mut self, index: usize) {
        self.spawn(index);
        self.ready(index).await;
    }

    pub fn kill(&mut self, index: usize) {
        self.replicas.retire(index);
        self.kills.push((index, now_micros()));
        let name = self.name(index);
        let mut process = self.serving[index].take().expect("a serving replica");
        process.kill();
        self.generations[index] += 1;
        self.killed.push((name, process));
    }

    /// Kills the rest at the end (the database then stands still).
    pub fn kill_all(&mut self) -> i64 {
        for index in 0..REPLICAS {
            self.kill(index);
        }
        self.kills.last().unwrap().1
    }

    /// Every process's last log lines, for failure messages.
    pub fn tails(&self) -> String {
        let mut out = String::new();
        for (name, process) in &self.killed {
            out.push_str(&format!("--- {name} ---\n{}\n", process.log_tail(15)));
        }
        for (index, process) in self.serving.iter().enumerate() {
            if let Some(process) = process {
                out.push_str(&format!(
                    "--- {} ---\n{}\n",
                    self.name(index),
                    process.log_tail(15)
                ));
            }
        }
        out
    }
}
