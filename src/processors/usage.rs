//! The `usage` processor: token usage from Claude Code transcripts. Each
//! assistant line carries `message.id`, `message.model` and `message.usage`;
//! Claude Code writes one line per content block, so a message may span
//! several lines with the same id. Each message id is counted once, with the
//! usage of its last line (the most complete). Lines without an id count on
//! their own. The transcript's session id is the first `sessionId` in it,
//! else the file name (Claude Code names the file after the session).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use sqlx::SqliteConnection;

use super::processor::{Processed, Processor, Product, StoredTranscript};
use super::{TokenUsage, Transcript, products};
use crate::storage::StoreError;

pub const NAME: &str = "usage";
/// The model of an assistant message that names none.
pub const UNKNOWN_MODEL: &str = "unknown";

/// Counts token usage per transcript and per model.
pub struct Usage;

/// The fields `usage` reads; strings borrow from the transcript when they
/// can (most lines carry every one of them).
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<Counts>,
}

/// Token counts as the API reports them: absent means zero; a negative or
/// fractional count makes the line malformed.
#[derive(Deserialize)]
struct Counts {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl Counts {
    fn usage(&self) -> TokenUsage {
        let count = |n: Option<u64>| i64::try_from(n.unwrap_or(0)).unwrap_or(i64::MAX);
        TokenUsage {
            input_tokens: count(self.input_tokens),
            output_tokens: count(self.output_tokens),
            cache_creation_input_tokens: count(self.cache_creation_input_tokens),
            cache_read_input_tokens: count(self.cache_read_input_tokens),
            messages: 1,
        }
    }
}

/// One transcript's usage: the session it records and the usage by model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptCount {
    pub session_id: String,
    pub by_model: BTreeMap<String, TokenUsage>,
}

impl TranscriptCount {
    pub fn messages(&self) -> i64 {
        self.by_model.values().map(|usage| usage.messages).sum()
    }
}

/// Counts one transcript.
pub fn count(transcript: &Transcript) -> TranscriptCount {
    let mut session_id = None;
    let mut by_id: HashMap<Cow<'_, str>, usize> = HashMap::new();
    let mut messages: Vec<(Cow<'_, str>, TokenUsage)> = Vec::new();
    for line in transcript.records::<Line>() {
        if session_id.is_none() {
            session_id = line.session_id;
        }
        let Some(message) = line
            .message
            .filter(|_| line.kind.as_deref() == Some("assistant"))
        else {
            continue;
        };
        let Some(counts) = message.usage else {
            continue;
        };
        let counted = (
            message.model.unwrap_or(Cow::Borrowed(UNKNOWN_MODEL)),
            counts.usage(),
        );
        match message.id {
            Some(id) => match by_id.get(&id) {
                Some(&index) => messages[index] = counted,
                None => {
                    by_id.insert(id, messages.len());
                    messages.push(counted);
                }
            },
            None => messages.push(counted),
        }
    }
    let mut by_model: BTreeMap<String, TokenUsage> = BTreeMap::new();
    for (model, usage) in messages {
        by_model.entry(model.into_owned()).or_default().add(&usage);
    }
    TranscriptCount {
        session_id: session_id.map_or_else(|| transcript.key().stem().to_string(), Cow::into_owned),
        by_model,
    }
}

impl Processor for Usage {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "token usage of each assistant message (counted once per message id), per transcript and per model"
    }

    fn process(&self, transcript: &Transcript) -> Result<Processed, String> {
        let count = count(transcript);
        Ok(Processed {
            items: count.messages(),
            product: Box::new(count),
        })
    }
}

impl Product for TranscriptCount {
    fn save<'c>(
        self: Box<Self>,
        conn: &'c mut SqliteConnection,
        transcript: &'c StoredTranscript,
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move { products::save_usage(conn, transcript, &self).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::TranscriptKey;

    fn transcript(lines: &[&str]) -> Transcript {
        Transcript::new(
            TranscriptKey::parse("proj/3f2a.jsonl").unwrap(),
            lines.join("\n").into_bytes(),
        )
    }

    fn assistant(
        id: &str,
        model: &str,
        input: u64,
        output: u64,
        created: u64,
        read: u64,
    ) -> String {
        serde_json::json!({
            "type": "assistant", "sessionId": "sess-1",
            "message": {"id": id, "model": model, "role": "assistant",
                "content": [{"type": "text", "text": "hi"}],
                "usage": {"input_tokens": input, "output_tokens": output,
                    "cache_creation_input_tokens": created, "cache_read_input_tokens": read}}
        })
        .to_string()
    }

    #[test]
    fn a_message_over_several_lines_counts_once_with_its_last_line() {
        let t = transcript(&[
            r#"{"type":"user","sessionId":"sess-1","message":{"role":"user","content":"go"}}"#,
            &assistant("m1", "claude-sonnet-4-5", 10, 1, 100, 1000),
            &assistant("m1", "claude-sonnet-4-5", 10, 7, 100, 1000),
            &assistant("m2", "claude-opus-4-1", 3, 4, 5, 6),
            "{broken",
            &assistant("m3", "claude-sonnet-4-5", 1, 2, 3, 4),
        ]);
        let count = count(&t);
        assert_eq!(count.session_id, "sess-1");
        let sonnet = count.by_model["claude-sonnet-4-5"];
        assert_eq!(
            sonnet,
            TokenUsage {
                input_tokens: 11,
                output_tokens: 9,
                cache_creation_input_tokens: 103,
                cache_read_input_tokens: 1004,
                messages: 2
            }
        );
        assert_eq!(count.by_model["claude-opus-4-1"].messages, 1);
        assert_eq!(count.messages(), 3);
        assert_eq!(t.malformed_lines(), 1);
    }

    #[test]
    fn what_is_not_an_assistant_message_with_usage_counts_nothing() {
        let t = transcript(&[
            r#"{"type":"summary","summary":"x"}"#,
            r#"{"type":"user","message":{"role":"user","usage":{"input_tokens":5}}}"#,
            r#"{"type":"assistant","message":{"id":"m1","model":"m"}}"#,
            r#"{"type":"assistant","message":{"model":"m","usage":{"input_tokens":2}}}"#,
            r#"{"type":"assistant","message":{"model":"m","usage":{"input_tokens":3}}}"#,
            r#"{"type":"assistant","message":{"id":"m9","usage":{"output_tokens":-1}}}"#,
            r#"{"type":"assistant","message":{"id":"m8","usage":{"output_tokens":4}}}"#,
        ]);
        let count = count(&t);
        assert_eq!(count.session_id, "3f2a", "no sessionId: the file name");
        assert_eq!(
            count.by_model["m"].input_tokens, 5,
            "lines without an id count on their own"
        );
        assert_eq!(count.by_model["m"].messages, 2);
        assert_eq!(count.by_model[UNKNOWN_MODEL].output_tokens, 4);
        assert_eq!(t.malformed_lines(), 1, "a negative count");
    }
}
