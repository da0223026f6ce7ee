//! The `usage` processor: token usage from Claude Code transcripts, counted
//! the way `ccusage` counts it. Claude Code writes one line per content
//! block, each repeating `message.id`, `requestId` and `message.usage` (the
//! first lines of a streamed response carry a partial `output_tokens`), and
//! `claude --resume` starts a new transcript that repeats earlier responses.
//! An API response is keyed by (`message.id`, `requestId`); this processor
//! keeps one line per key and transcript (the one with the largest usage,
//! the first of equals) as a [`Response`]; which transcript a response
//! repeated across transcripts counts in is decided when it is stored
//! (see [`dedup`](super::dedup)). Lines of the `<synthetic>` model (API errors
//! Claude Code writes itself) are not API responses and count nowhere. The
//! transcript's session id is the first `sessionId` in it, else the file
//! name (Claude Code names the file after the session).

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::processor::{Processed, Processor, Product, Saving, StoredTranscript};
use super::{TokenUsage, Transcript, TranscriptKey, usage_store};
use crate::storage::StoreError;
use crate::storage::sql::Conn;

pub const NAME: &str = "usage";
/// The model of an assistant message that names none.
pub const UNKNOWN_MODEL: &str = "unknown";
/// The model Claude Code names on the error messages it writes itself.
pub const SYNTHETIC_MODEL: &str = "<synthetic>";

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
    #[serde(rename = "requestId", borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(rename = "isSidechain")]
    is_sidechain: Option<bool>,
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
    cache_creation: Option<CacheCreation>,
}

/// The split of cache writes by lifetime; when present, its sum is the
/// cache creation count (as ccusage reads it).
#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

fn count_of(n: Option<u64>) -> i64 {
    i64::try_from(n.unwrap_or(0)).unwrap_or(i64::MAX)
}

impl Counts {
    fn usage(&self) -> TokenUsage {
        let created = match &self.cache_creation {
            Some(split) => count_of(split.ephemeral_5m_input_tokens)
                .saturating_add(count_of(split.ephemeral_1h_input_tokens)),
            None => count_of(self.cache_creation_input_tokens),
        };
        TokenUsage {
            input_tokens: count_of(self.input_tokens),
            output_tokens: count_of(self.output_tokens),
            cache_creation_input_tokens: created,
            cache_read_input_tokens: count_of(self.cache_read_input_tokens),
            messages: 1,
        }
    }
}

/// One API response as one transcript records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The position of the kept line among the transcript's records: among
    /// equal usages, the earlier line wins.
    pub line: i64,
    /// `None` for a line without `message.id`: it counts on its own.
    pub message_id: Option<String>,
    pub request_id: Option<String>,
    /// Written in a sidechain (`isSidechain`, a Task tool conversation).
    pub sidechain: bool,
    pub model: String,
    pub usage: TokenUsage,
}

/// The size a response is compared by: all of its tokens.
pub fn total_tokens(usage: &TokenUsage) -> i64 {
    usage
        .input_tokens
        .saturating_add(usage.output_tokens)
        .saturating_add(usage.cache_creation_input_tokens)
        .saturating_add(usage.cache_read_input_tokens)
}

/// One transcript's usage: the session it records and its responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptCount {
    pub session_id: String,
    pub responses: Vec<Response>,
}

/// Reads one transcript.
pub fn count(transcript: &Transcript) -> TranscriptCount {
    let mut session_id = None;
    type Key<'a> = (Cow<'a, str>, Option<Cow<'a, str>>, bool);
    let mut by_key: HashMap<Key<'_>, usize> = HashMap::new();
    let mut responses: Vec<Response> = Vec::new();
    for (line, record) in transcript.records::<Line>().enumerate() {
        if session_id.is_none() {
            session_id = record.session_id;
        }
        let Some(message) = record
            .message
            .filter(|_| record.kind.as_deref() == Some("assistant"))
        else {
            continue;
        };
        let Some(counts) = message.usage else {
            continue;
        };
        let model = message.model.unwrap_or(Cow::Borrowed(UNKNOWN_MODEL));
        if model == SYNTHETIC_MODEL {
            continue;
        }
        let sidechain = record.is_sidechain == Some(true);
        let response = Response {
            line: line as i64,
            message_id: message.id.as_deref().map(str::to_string),
            request_id: record.request_id.as_deref().map(str::to_string),
            sidechain,
            model: model.into_owned(),
            usage: counts.usage(),
        };
        let Some(id) = message.id else {
            responses.push(response);
            continue;
        };
        match by_key.get(&(id.clone(), record.request_id.clone(), sidechain)) {
            Some(&index) => {
                if total_tokens(&response.usage) > total_tokens(&responses[index].usage) {
                    responses[index] = response;
                }
            }
            None => {
                by_key.insert((id, record.request_id, sidechain), responses.len());
                responses.push(response);
            }
        }
    }
    TranscriptCount {
        session_id: session_id.map_or_else(|| transcript.key().stem().to_string(), Cow::into_owned),
        responses,
    }
}

impl Processor for Usage {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "token usage of each API response (counted once per message id and request id across \
         transcripts), per transcript and per model"
    }

    fn process(&self, transcript: &Transcript) -> Result<Processed, String> {
        let count = count(transcript);
        Ok(Processed {
            items: count.responses.len() as i64,
            product: Box::new(count),
        })
    }

    /// The whole batch in the statements of one transcript.
    fn save_all<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        products: &'c [Saving<'c>],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move {
            let mut counts = Vec::with_capacity(products.len());
            for saving in products {
                let product: &dyn Any = saving.product;
                let count = product.downcast_ref::<TranscriptCount>().ok_or_else(|| {
                    StoreError::Malformed("a product of another processor reached usage".into())
                })?;
                counts.push((saving.transcript, count));
            }
            usage_store::save_usage(conn, &counts).await
        }
        .boxed()
    }

    fn forget<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        gone: &'c [TranscriptKey],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        let keys: Vec<&str> = gone.iter().map(TranscriptKey::as_str).collect();
        async move { usage_store::forget_usage(conn, &keys).await }.boxed()
    }
}

impl Product for TranscriptCount {
    fn save<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        transcript: &'c StoredTranscript,
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move { usage_store::save_usage(conn, &[(transcript, self)]).await }.boxed()
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
