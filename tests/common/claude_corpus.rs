//! A deterministic corpus of Claude Code transcripts in the shape Claude
//! Code writes them (`<config>/projects/<project-dir>/<session>.jsonl`), with
//! the ugly cases real folders hold: one line per content block repeating
//! `message.id`, `requestId` and `usage` (identical final usage, or streamed
//! partial `output_tokens` before the final count), sidechain (Task tool)
//! conversations and a sidechain replay of a main-chain message, a Task
//! result's `toolUseResult.usage` (not an API usage), `<synthetic>` API error
//! messages, cache writes split into `ephemeral_5m`/`ephemeral_1h`, several
//! models per session, resumed sessions repeating their history (a resume
//! of a resume, a resume whose name sorts before the original's, a resume of
//! a transcript cut off mid-response), lines without `requestId` (older
//! Claude Code), malformed and cut-off lines, empty files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const SONNET: &str = "claude-sonnet-4-5-20250929";
pub const HAIKU: &str = "claude-haiku-4-5-20251001";
pub const OPUS: &str = "claude-opus-4-1-20250805";
const VERSION: &str = "2.0.14";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A generated Claude config dir: `projects/` holds the transcripts.
pub struct Corpus {
    root: TempDir,
    /// Every transcript written, as "project/session.jsonl".
    pub keys: Vec<String>,
}

impl Corpus {
    /// The dir `CLAUDE_CONFIG_DIR` names.
    pub fn config_dir(&self) -> &Path {
        self.root.path()
    }

    /// The dir bosun's processors read (`transcripts_dir`).
    pub fn projects_dir(&self) -> PathBuf {
        self.root.path().join("projects")
    }
}

/// One transcript being written.
struct Session {
    project: &'static str,
    id: String,
    lines: Vec<String>,
    parent: Option<String>,
    /// Whether lines carry `requestId` (Claude Code before 1.0 wrote none).
    request_ids: bool,
}

/// How a response's lines carry its usage.
#[derive(Clone, Copy)]
enum Stream {
    /// Every line repeats the final usage.
    Final,
    /// Earlier lines carry a partial output count, the last one the final.
    Partial,
    /// Only partial lines: the transcript was cut off mid-response.
    CutOff,
}

struct Generator {
    rng: StdRng,
    /// Milliseconds since the epoch of the next line.
    clock: i64,
}

impl Generator {
    fn token(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| BASE62[self.rng.random_range(0..BASE62.len())] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let hex: String = (0..32)
            .map(|_| char::from_digit(self.rng.random_range(0..16), 16).unwrap())
            .collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    fn timestamp(&mut self) -> String {
        self.clock += self.rng.random_range(200..30_000);
        let secs = self.clock / 1000;
        let time = time_of(secs);
        format!("{time}.{:03}Z", self.clock % 1000)
    }

    fn session(&mut self, project: &'static str, request_ids: bool) -> Session {
        Session {
            project,
            id: self.uuid(),
            lines: Vec::new(),
            parent: None,
            request_ids,
        }
    }

    /// The fields every line of a conversation carries.
    fn envelope(&mut self, session: &mut Session, kind: &str, sidechain: bool) -> Value {
        let uuid = self.uuid();
        let line = json!({
            "parentUuid": session.parent, "isSidechain": sidechain, "userType": "external",
            "cwd": format!("/home/dev/{}", session.project.rsplit('-').next().unwrap()),
            "sessionId": session.id, "version": VERSION, "gitBranch": "main",
            "type": kind, "uuid": uuid, "timestamp": self.timestamp(),
        });
        session.parent = Some(uuid);
        line
    }

    fn user(&mut self, session: &mut Session, content: Value, sidechain: bool) -> Value {
        let mut line = self.envelope(session, "user", sidechain);
        line["message"] = json!({"role": "user", "content": content});
        line
    }

    fn usage(&mut self, output: u64) -> Value {
        let input = self.rng.random_range(1..40);
        let five = self.rng.random_range(0..4000);
        let hour = if self.rng.random_bool(0.3) {
            self.rng.random_range(0..20_000)
        } else {
            0
        };
        let read = self.rng.random_range(0..90_000);
        json!({
            "input_tokens": input, "cache_creation_input_tokens": five + hour,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour},
            "output_tokens": output, "service_tier": "standard",
        })
    }

    /// One API response: a line per content block, each repeating its id,
    /// request id and usage. Returns the message id and the lines' values.
    fn response(
        &mut self,
        session: &mut Session,
        model: &str,
        blocks: Vec<Value>,
        stream: Stream,
        sidechain: bool,
    ) -> String {
        let id = format!("msg_01{}", self.token(22));
        let request = format!("req_011CT{}", self.token(18));
        let output = self.rng.random_range(1..3000);
        let final_usage = self.usage(output);
        let count = blocks.len();
        for (index, block) in blocks.into_iter().enumerate() {
            let last = index + 1 == count;
            let mut usage = final_usage.clone();
            let partial = match stream {
                Stream::Final => false,
                Stream::Partial => !last,
                Stream::CutOff => true,
            };
            if partial {
                let output = final_usage["output_tokens"].as_u64().unwrap();
                usage["output_tokens"] = json!(1 + (output * index as u64) / (count as u64 + 1));
            }
            let mut line = self.envelope(session, "assistant", sidechain);
            line["message"] = json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [block], "stop_reason": if last { json!("tool_use") } else { Value::Null },
                "stop_sequence": null, "usage": usage,
            });
            if session.request_ids {
                line["requestId"] = json!(request);
            }
            session.lines.push(line.to_string());
        }
        id
    }

    fn text(&mut self) -> Value {
        json!({"type": "text", "text": format!("Looking at {}.", self.token(8))})
    }

    fn thinking(&mut self) -> Value {
        json!({"type": "thinking", "thinking": "Let me check the tests first.", "signature": self.token(40)})
    }

    /// A turn: the user asks, the model answers over a few responses, some
    /// calling tools (a failed result now and then).
    fn turn(&mut self, session: &mut Session, models: &[&str]) {
        let prompt = format!("please fix {}", self.token(6));
        let line = self.user(session, json!(prompt), false);
        session.lines.push(line.to_string());
        for _ in 0..self.rng.random_range(1..4) {
            let model = models[self.rng.random_range(0..models.len())];
            let tool_id = format!("toolu_01{}", self.token(22));
            let mut blocks = vec![];
            if self.rng.random_bool(0.4) {
                blocks.push(self.thinking());
            }
            blocks.push(self.text());
            blocks.push(json!({"type": "tool_use", "id": tool_id, "name": "Bash",
                "input": {"command": "cargo test"}}));
            let stream = if self.rng.random_bool(0.5) {
                Stream::Partial
            } else {
                Stream::Final
            };
            self.response(session, model, blocks, stream, false);
            let failed = self.rng.random_bool(0.2);
            let mut result = self.user(
                session,
                json!([{"type": "tool_result", "tool_use_id": tool_id, "is_error": failed,
                    "content": if failed { "exit status 101" } else { "ok" }}]),
                false,
            );
            result["toolUseResult"] = json!({"stdout": "ok", "stderr": "", "interrupted": false});
            session.lines.push(result.to_string());
        }
    }

    /// A Task tool call: the sub-agent's conversation in the sidechain, and
    /// the result whose `toolUseResult.usage` sums the sub-agent's tokens
    /// (not an API usage of its own).
    fn task(&mut self, session: &mut Session) {
        let tool_id = format!("toolu_01{}", self.token(22));
        let call = json!({"type": "tool_use", "id": tool_id, "name": "Task",
            "input": {"description": "find flaky tests", "prompt": "look", "subagent_type": "general-purpose"}});
        let blocks = vec![self.text(), call];
        self.response(session, SONNET, blocks, Stream::Partial, false);
        let parent = session.parent.clone();
        session.parent = None;
        let line = self.user(session, json!("look"), true);
        session.lines.push(line.to_string());
        for _ in 0..self.rng.random_range(1..4) {
            let blocks = vec![self.text()];
            self.response(session, HAIKU, blocks, Stream::Final, true);
        }
        session.parent = parent;
        let mut result = self.user(
            session,
            json!([{"type": "tool_result", "tool_use_id": tool_id, "content": [{"type": "text", "text": "done"}]}]),
            false,
        );
        result["toolUseResult"] = json!({
            "status": "completed", "totalDurationMs": 5100, "totalTokens": 41000, "totalToolUseCount": 3,
            "usage": {"input_tokens": 120, "cache_creation_input_tokens": 9000,
                "cache_read_input_tokens": 30000, "output_tokens": 1880, "service_tier": "standard"},
        });
        session.lines.push(result.to_string());
    }

    /// An API error as Claude Code records it: a `<synthetic>` message.
    fn api_error(&mut self, session: &mut Session) {
        let mut line = self.envelope(session, "assistant", false);
        line["message"] = json!({
            "id": self.uuid(), "model": "<synthetic>", "role": "assistant", "type": "message",
            "stop_reason": "stop_sequence", "stop_sequence": "",
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "server_tool_use": {"web_search_requests": 0},
                "service_tier": null},
            "content": [{"type": "text", "text": "API Error: 529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"}],
        });
        line["isApiErrorMessage"] = json!(true);
        session.lines.push(line.to_string());
    }

    /// A new transcript that starts with `of`'s history, as `claude --resume`
    /// writes it (the copied lines carry the new session id).
    fn resume(&mut self, of: &Session, id: Option<String>) -> Session {
        let id = id.unwrap_or_else(|| self.uuid());
        let lines = of
            .lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|mut line| {
                line["sessionId"] = json!(id);
                line.to_string()
            })
            .collect();
        Session {
            project: of.project,
            id,
            lines,
            parent: of.parent.clone(),
            request_ids: of.request_ids,
        }
    }
}

/// "YYYY-MM-DDTHH:MM:SS" of a Unix time (days from civil, Howard Hinnant).
fn time_of(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes the corpus of `seed`.
pub fn generate(seed: u64) -> Corpus {
    let mut g = Generator {
        rng: StdRng::seed_from_u64(seed),
        clock: 1_761_955_200_000, // 2025-11-01
    };
    let mut sessions: Vec<Session> = Vec::new();
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();

    // A working session with a Task sidechain, an API error, several models;
    // resumed (the resume's name sorts first), and the resume resumed.
    let mut original = g.session("-home-dev-orchestrator", true);
    original.id = format!("f{}", &original.id[1..]);
    for _ in 0..4 {
        g.turn(&mut original, &[SONNET, HAIKU]);
    }
    g.task(&mut original);
    g.api_error(&mut original);
    g.turn(&mut original, &[OPUS, SONNET]);
    let first = format!("0{}", &g.uuid()[1..]);
    let mut resumed = g.resume(&original, Some(first));
    for _ in 0..3 {
        g.turn(&mut resumed, &[SONNET, HAIKU]);
    }
    let mut again = g.resume(&resumed, None);
    g.turn(&mut again, &[OPUS]);
    g.task(&mut again);
    // A /btw aside replaying a main-chain message under another request id.
    let replay = original
        .lines
        .iter()
        .find(|line| line.contains("\"requestId\""))
        .map(|line| {
            let mut line: Value = serde_json::from_str(line).unwrap();
            line["isSidechain"] = json!(true);
            line["requestId"] = json!(format!("req_011CT{}", g.token(18)));
            line["sessionId"] = json!(again.id);
            line.to_string()
        })
        .unwrap();
    again.lines.push(replay);
    sessions.extend([original, resumed, again]);

    // Cut off mid-response (the process died), then resumed: the resume
    // holds the response's final usage.
    let mut crashed = g.session("-home-dev-orchestrator", true);
    g.turn(&mut crashed, &[SONNET]);
    let blocks = vec![g.thinking(), g.text(), g.text()];
    let model = SONNET;
    g.response(&mut crashed, model, blocks, Stream::CutOff, false);
    let cut = crashed.lines.pop().unwrap();
    let mut after_crash = g.resume(&crashed, None);
    crashed.lines.push(cut.clone());
    let mut full: Value = serde_json::from_str(&cut).unwrap();
    full["message"]["usage"]["output_tokens"] = json!(2999);
    full["sessionId"] = json!(after_crash.id);
    after_crash.lines.push(full.to_string());
    g.turn(&mut after_crash, &[SONNET]);
    crashed.lines.push(cut[..cut.len() / 2].to_string());
    sessions.extend([crashed, after_crash]);

    // Another project: several models, malformed lines; empty files.
    let mut website = g.session("-home-dev-website", true);
    for _ in 0..5 {
        g.turn(&mut website, &[OPUS, SONNET, HAIKU]);
    }
    website.lines.insert(3, "not json at all".into());
    g.api_error(&mut website);
    g.turn(&mut website, &[SONNET]);
    let website_key = format!("{}/{}.jsonl", website.project, website.id);
    sessions.push(website);
    raw.push((format!("-home-dev-website/{}.jsonl", g.uuid()), Vec::new()));
    raw.push((
        format!("-home-dev-website/{}.jsonl", g.uuid()),
        b"\n  \n".to_vec(),
    ));

    // Claude Code before requestId: dedup by message id alone; resumed.
    let mut old = g.session("-home-dev-legacy", false);
    for _ in 0..3 {
        g.turn(&mut old, &[SONNET]);
    }
    let mut old_resumed = g.resume(&old, None);
    g.turn(&mut old_resumed, &[SONNET, HAIKU]);
    sessions.extend([old, old_resumed]);

    // Volume: more sessions of varied length, some resumed.
    for index in 0..8 {
        let mut session = g.session("-tmp-scratch", true);
        for _ in 0..g.rng.random_range(2..12) {
            g.turn(&mut session, &[SONNET, HAIKU, OPUS]);
        }
        if index % 3 == 0 {
            g.task(&mut session);
        }
        if index % 2 == 0 {
            let mut resumed = g.resume(&session, None);
            g.turn(&mut resumed, &[SONNET]);
            sessions.push(resumed);
        }
        sessions.push(session);
    }

    let root = tempfile::tempdir().expect("corpus dir");
    let mut keys = Vec::new();
    let files = sessions
        .into_iter()
        .map(|session| {
            let mut content = session.lines.join("\n");
            content.push('\n');
            (
                format!("{}/{}.jsonl", session.project, session.id),
                content.into_bytes(),
            )
        })
        .chain(raw);
    for (key, content) in files {
        let path = root.path().join("projects").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        keys.push(key);
    }
    assert!(keys.contains(&website_key));
    keys.sort();
    Corpus { root, keys }
}
