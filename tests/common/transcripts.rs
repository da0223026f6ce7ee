//! Agent transcripts as real files in a temp dir, in Claude Code's shape
//! (`<dir>/<owner>/<session>.jsonl`, one JSON object per line), and plug-in
//! processors that fail or block on demand.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use bosun::processors::{
    Processed, Processor, ProcessorSettings, Product, Registration, StoredTranscript, Transcript,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::json;
use tempfile::TempDir;

/// A transcripts dir.
pub struct Transcripts {
    dir: TempDir,
}

impl Transcripts {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("transcripts dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.path().join(key)
    }

    /// Writes `lines` as the transcript `key` ("owner/name.jsonl").
    pub fn write(&self, key: &str, lines: &[String]) {
        let path = self.file(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut content = lines.join("\n");
        content.push('\n');
        std::fs::write(path, content).unwrap();
    }

    /// Writes `lines` and dates the file `age` ago, as a transcript written
    /// earlier and left alone since.
    pub fn write_old(&self, key: &str, lines: &[String], age: Duration) {
        self.write(key, lines);
        self.set_mtime(key, SystemTime::now() - age);
    }

    /// Appends `lines` (the agent went on).
    pub fn append(&self, key: &str, lines: &[String]) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.file(key))
            .unwrap();
        for line in lines {
            writeln!(file, "{line}").unwrap();
        }
    }

    /// Deletes the transcript (Claude Code's clean-up, or a user).
    pub fn remove(&self, key: &str) {
        std::fs::remove_file(self.file(key)).unwrap();
    }

    pub fn set_mtime(&self, key: &str, time: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(self.file(key))
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    /// A transcript that is a symlink to `target` (relative to the dir),
    /// which may not exist.
    pub fn symlink(&self, key: &str, target: &str) {
        let path = self.file(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(self.file(target), path).unwrap();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// An assistant line of one API message (`id`) with its usage:
/// (input, output, cache creation, cache read).
pub fn assistant(session: &str, id: &str, model: &str, usage: (u64, u64, u64, u64)) -> String {
    let (input, output, created, read) = usage;
    json!({
        "type": "assistant", "sessionId": session, "uuid": format!("{id}-{output}"),
        "message": {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "working on it"}],
            "usage": {"input_tokens": input, "output_tokens": output,
                "cache_creation_input_tokens": created, "cache_read_input_tokens": read,
                "service_tier": "standard"}}
    })
    .to_string()
}

pub fn user(session: &str, text: &str) -> String {
    json!({"type": "user", "sessionId": session, "message": {"role": "user", "content": text}})
        .to_string()
}

/// An assistant line calling tool `name` with call id `id`.
pub fn tool_use(session: &str, message_id: &str, id: &str, name: &str) -> String {
    json!({
        "type": "assistant", "sessionId": session,
        "message": {"id": message_id, "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": id, "name": name, "input": {"command": "make"}}],
            "usage": {"input_tokens": 1, "output_tokens": 1}}
    })
    .to_string()
}

/// The user line carrying the result of tool call `id`.
pub fn tool_result(session: &str, id: &str, is_error: bool) -> String {
    json!({
        "type": "user", "sessionId": session,
        "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "is_error": is_error, "content": "exit 1"}]}
    })
    .to_string()
}

/// Settings for a plug-in processor: enabled, `cadence`, no cap or budget.
pub fn settings(cadence: Duration) -> ProcessorSettings {
    ProcessorSettings {
        enabled: true,
        cadence,
        max_transcripts_per_pass: 0,
        time_budget: Duration::ZERO,
        quarantine_after_failures: 5,
    }
}

/// Stores nothing; when `unstorable`, fails to, with a statement the
/// database refuses (which, on PostgreSQL, aborts the transaction until a
/// savepoint is rolled back).
struct Nothing {
    unstorable: bool,
}

impl Product for Nothing {
    fn save<'c>(
        &'c self,
        conn: &'c mut bosun::storage::Conn<'_>,
        _transcript: &'c StoredTranscript,
    ) -> BoxFuture<'c, Result<(), bosun::storage::StoreError>> {
        async move {
            if self.unstorable {
                bosun::storage::sql::query("INSERT INTO no_such_table VALUES (1)")
                    .execute(conn)
                    .await?;
            }
            Ok(())
        }
        .boxed()
    }
}

/// A processor that fails (or panics) while told to, counting lines
/// otherwise; it records the transcripts it was given. The product of a
/// transcript named `unstorable*.jsonl` cannot be stored.
pub struct Flaky {
    pub name: &'static str,
    pub fail: AtomicBool,
    pub panic: AtomicBool,
    pub seen: Mutex<Vec<String>>,
}

impl Flaky {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            fail: AtomicBool::new(false),
            panic: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
        })
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Processor for Flaky {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "fails while told to"
    }

    fn process(&self, transcript: &Transcript) -> Result<Processed, String> {
        self.seen.lock().unwrap().push(transcript.key().to_string());
        if self.panic.load(Ordering::SeqCst) {
            panic!("told to panic");
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err("told to fail".into());
        }
        let lines = transcript.records::<serde_json::Value>().count();
        let unstorable = transcript.key().stem().starts_with("unstorable");
        Ok(Processed {
            items: lines as i64,
            product: Box::new(Nothing { unstorable }),
        })
    }
}

/// A processor whose every transcript waits until the test releases it.
pub struct Blocking {
    pub name: &'static str,
    entered_tx: tokio::sync::mpsc::UnboundedSender<String>,
    release_rx: Mutex<mpsc::Receiver<()>>,
}

/// The test's side of a [`Blocking`] processor.
pub struct BlockingHandle {
    entered_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    release_tx: mpsc::Sender<()>,
}

impl BlockingHandle {
    /// Waits until a transcript is being processed; returns its key.
    pub async fn wait_entered(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.entered_rx.recv())
            .await
            .expect("the processor was entered in time")
            .expect("the processor is alive")
    }

    /// Lets one transcript finish.
    pub fn release(&self) {
        self.release_tx.send(()).unwrap();
    }
}

impl Blocking {
    pub fn new(name: &'static str) -> (Arc<Self>, BlockingHandle) {
        let (entered_tx, entered_rx) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release_rx) = mpsc::channel();
        let processor = Arc::new(Self {
            name,
            entered_tx,
            release_rx: Mutex::new(release_rx),
        });
        (
            processor,
            BlockingHandle {
                entered_rx,
                release_tx,
            },
        )
    }
}

impl Processor for Blocking {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "waits to be released"
    }

    fn process(&self, transcript: &Transcript) -> Result<Processed, String> {
        let _ = self.entered_tx.send(transcript.key().to_string());
        let _ = self.release_rx.lock().unwrap().recv();
        Ok(Processed {
            items: 1,
            product: Box::new(Nothing { unstorable: false }),
        })
    }
}

pub fn registration(processor: Arc<dyn Processor>, settings: ProcessorSettings) -> Registration {
    Registration {
        processor,
        settings,
    }
}
