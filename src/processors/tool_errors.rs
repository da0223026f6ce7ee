//! The `tool_errors` processor: tool results marked as errors, counted per
//! tool. A `tool_result` block names only its `tool_use_id`; the tool's name
//! comes from the `tool_use` block with that id (else "unknown"). A burst is
//! a run of at least `burst_threshold` failed tool results with no success in
//! between; each new burst in a transcript records one AUTO lesson of type
//! `tool_error_burst` for the session whose agent_session_id matches.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::processor::{Processed, Processor, Product, StoredTranscript};
use super::{Transcript, TranscriptKey, products};
use crate::lessons::Journal;
use crate::storage::StoreError;
use crate::storage::sql::Conn;

pub const NAME: &str = "tool_errors";
pub const LESSON_TYPE: &str = "tool_error_burst";
/// The tool of a result whose tool_use is not in the transcript.
pub const UNKNOWN_TOOL: &str = "unknown";

/// Counts failed tool results; bursts become lessons.
pub struct ToolErrors {
    pub journal: Journal,
    /// Failed tool results in a row that make a burst (>= 1).
    pub burst_threshold: u32,
}

/// The fields `tool_errors` reads; strings borrow from the transcript when
/// they can.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "sessionId", borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Blocks<'a>,
}

/// `message.content`: a list of blocks, or plain text (no blocks).
#[derive(Default)]
struct Blocks<'a>(Vec<Block<'a>>);

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    is_error: Option<bool>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Blocks<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlocksVisitor<'a>(std::marker::PhantomData<Block<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for BlocksVisitor<'a> {
            type Value = Blocks<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of content blocks or text")
            }
            fn visit_str<E>(self, _text: &str) -> Result<Blocks<'a>, E> {
                Ok(Blocks::default())
            }
            fn visit_unit<E>(self) -> Result<Blocks<'a>, E> {
                Ok(Blocks::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blocks<'a>, A::Error> {
                let mut blocks = Vec::new();
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(Blocks(blocks))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Blocks<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Blocks::default())
            }
        }
        deserializer.deserialize_any(BlocksVisitor(std::marker::PhantomData))
    }
}

/// One transcript's failed tool results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolErrorCount {
    pub session_id: String,
    pub by_tool: BTreeMap<String, i64>,
    pub errors: i64,
    pub bursts: i64,
    /// The longest run of failures in a row.
    pub longest_run: i64,
    /// The threshold the bursts were counted with.
    pub burst_threshold: u32,
}

/// Counts one transcript's failed tool results and bursts.
pub fn count(transcript: &Transcript, burst_threshold: u32) -> ToolErrorCount {
    let threshold = i64::from(burst_threshold.max(1));
    let mut session_id = None;
    let mut tools: HashMap<Cow<'_, str>, Cow<'_, str>> = HashMap::new();
    let mut counted = ToolErrorCount {
        session_id: String::new(),
        by_tool: BTreeMap::new(),
        errors: 0,
        bursts: 0,
        longest_run: 0,
        burst_threshold,
    };
    let mut run = 0;
    for line in transcript.records::<Line>() {
        if session_id.is_none() {
            session_id = line.session_id;
        }
        let Some(message) = line.message else {
            continue;
        };
        for block in message.content.0 {
            match block.kind.as_deref() {
                Some("tool_use") => {
                    if let (Some(id), Some(name)) = (block.id, block.name) {
                        tools.insert(id, name);
                    }
                }
                Some("tool_result") if block.is_error == Some(true) => {
                    let tool = block
                        .tool_use_id
                        .and_then(|id| tools.get(&id))
                        .map_or(UNKNOWN_TOOL, |name| name.as_ref());
                    *counted.by_tool.entry(tool.to_string()).or_default() += 1;
                    counted.errors += 1;
                    run += 1;
                    counted.longest_run = counted.longest_run.max(run);
                    if run == threshold {
                        counted.bursts += 1;
                    }
                }
                Some("tool_result") => run = 0,
                _ => {}
            }
        }
    }
    counted.session_id =
        session_id.map_or_else(|| transcript.key().stem().to_string(), Cow::into_owned);
    counted
}

impl Processor for ToolErrors {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "tool results marked as errors, per tool; a burst of failures in a row records a tool_error_burst lesson"
    }

    fn process(&self, transcript: &Transcript) -> Result<Processed, String> {
        let count = count(transcript, self.burst_threshold);
        Ok(Processed {
            items: count.errors,
            product: Box::new(BurstAware {
                count,
                journal: self.journal.clone(),
            }),
        })
    }

    /// The counts go; the burst lessons stay in the journal, which is
    /// history.
    fn forget<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        gone: &'c [TranscriptKey],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move { products::forget_tool_errors(conn, gone).await }.boxed()
    }
}

/// The count, and the journal to record new bursts in.
struct BurstAware {
    count: ToolErrorCount,
    journal: Journal,
}

impl Product for BurstAware {
    fn save<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        transcript: &'c StoredTranscript,
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move { products::save_tool_errors(conn, transcript, &self.count, &self.journal).await }
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::TranscriptKey;

    fn tool_use(id: &str, name: &str) -> String {
        serde_json::json!({"type": "assistant", "sessionId": "s-9", "message": {"role": "assistant",
            "content": [{"type": "text", "text": "let me"}, {"type": "tool_use", "id": id, "name": name, "input": {}}]}})
        .to_string()
    }

    fn result(id: &str, error: bool) -> String {
        serde_json::json!({"type": "user", "message": {"role": "user",
            "content": [{"type": "tool_result", "tool_use_id": id, "is_error": error, "content": "out"}]}})
        .to_string()
    }

    #[test]
    fn counts_failures_per_tool_and_bursts_of_failures_in_a_row() {
        let lines = [
            tool_use("t1", "Bash"),
            result("t1", true),
            tool_use("t2", "Edit"),
            result("t2", true),
            result("t-missing", true),
            result("t2", false),
            tool_use("t3", "Bash"),
            result("t3", true),
            result("t3", true),
            result("t3", true),
            result("t3", true),
            r#"{"type":"user","message":{"role":"user","content":"plain text"}}"#.to_string(),
            "garbage".to_string(),
        ];
        let transcript = Transcript::new(
            TranscriptKey::parse("p/x.jsonl").unwrap(),
            lines.join("\n").into_bytes(),
        );
        let count = count(&transcript, 3);
        assert_eq!(count.session_id, "s-9");
        assert_eq!(
            count.by_tool.into_iter().collect::<Vec<_>>(),
            [
                ("Bash".to_string(), 5),
                ("Edit".to_string(), 1),
                (UNKNOWN_TOOL.to_string(), 1)
            ]
        );
        assert_eq!((count.errors, count.bursts, count.longest_run), (7, 2, 4));
        assert_eq!(transcript.malformed_lines(), 1);
    }

    #[test]
    fn burst_thresholds() {
        let lines: Vec<String> = [true, true, false, true, true, true]
            .iter()
            .map(|error| result("t", *error))
            .collect();
        let transcript = || {
            Transcript::new(
                TranscriptKey::parse("p/y.jsonl").unwrap(),
                lines.join("\n").into_bytes(),
            )
        };
        for (threshold, bursts) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
            assert_eq!(
                count(&transcript(), threshold).bursts,
                bursts,
                "threshold {threshold}"
            );
        }
    }
}
