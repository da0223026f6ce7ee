//! The lines of a generated Claude Code transcript, as Claude Code writes
//! them: sessions, turns, responses streamed over several lines, Task
//! sidechains, API errors and resumes (see `claude_corpus`, which writes a
//! corpus of them).

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

/// The models a session answers with.
pub const SONNET: &str = "claude-sonnet-4-5-20250929";
pub const HAIKU: &str = "claude-haiku-4-5-20251001";
pub const OPUS: &str = "claude-opus-4-1-20250805";
const VERSION: &str = "2.0.14";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// One transcript being written.
pub struct Session {
    pub project: &'static str,
    pub id: String,
    pub lines: Vec<String>,
    pub parent: Option<String>,
    /// Whether lines carry `requestId` (Claude Code before 1.0 wrote none).
    pub request_ids: bool,
}

/// How a response's lines carry its usage.
#[derive(Clone, Copy)]
pub enum Stream {
    /// Every line repeats the final usage.
    Final,
    /// Earlier lines carry a partial output count, the last one the final.
    Partial,
    /// Only partial lines: the transcript was cut off mid-response.
    CutOff,
}

pub struct Generator {
    pub rng: StdRng,
    /// Milliseconds since the epoch of the next line.
    pub clock: i64,
}

impl Generator {
    pub fn token(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| BASE62[self.rng.random_range(0..BASE62.len())] as char)
            .collect()
    }

    pub fn uuid(&mut self) -> String {
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

    pub fn timestamp(&mut self) -> String {
        self.clock += self.rng.random_range(200..30_000);
        let secs = self.clock / 1000;
        let time = time_of(secs);
        format!("{time}.{:03}Z", self.clock % 1000)
    }

    pub fn session(&mut self, project: &'static str, request_ids: bool) -> Session {
        Session {
            project,
            id: self.uuid(),
            lines: Vec::new(),
            parent: None,
            request_ids,
        }
    }

    /// The fields every line of a conversation carries.
    pub fn envelope(&mut self, session: &mut Session, kind: &str, sidechain: bool) -> Value {
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

    pub fn user(&mut self, session: &mut Session, content: Value, sidechain: bool) -> Value {
        let mut line = self.envelope(session, "user", sidechain);
        line["message"] = json!({"role": "user", "content": content});
        line
    }

    pub fn usage(&mut self, output: u64) -> Value {
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
    pub fn response(
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

    pub fn text(&mut self) -> Value {
        json!({"type": "text", "text": format!("Looking at {}.", self.token(8))})
    }

    pub fn thinking(&mut self) -> Value {
        json!({"type": "thinking", "thinking": "Let me check the tests first.", "signature": self.token(40)})
    }

    /// A turn: the user asks, the model answers over a few responses, some
    /// calling tools (a failed result now and then).
    pub fn turn(&mut self, session: &mut Session, models: &[&str]) {
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
    pub fn task(&mut self, session: &mut Session) {
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
    pub fn api_error(&mut self, session: &mut Session) {
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
    pub fn resume(&mut self, of: &Session, id: Option<String>) -> Session {
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
