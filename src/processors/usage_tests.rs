use serde_json::json;

use super::*;
use crate::processors::TranscriptKey;

fn transcript(lines: &[&str]) -> Transcript {
    Transcript::new(
        TranscriptKey::parse("proj/3f2a.jsonl").unwrap(),
        lines.join("\n").into_bytes(),
    )
}

fn assistant(id: &str, request: &str, model: &str, usage: (u64, u64, u64, u64)) -> String {
    let (input, output, created, read) = usage;
    json!({
        "type": "assistant", "sessionId": "sess-1", "requestId": request,
        "message": {"id": id, "model": model, "role": "assistant",
            "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": input, "output_tokens": output,
                "cache_creation_input_tokens": created, "cache_read_input_tokens": read}}
    })
    .to_string()
}

fn tokens(input: i64, output: i64, created: i64, read: i64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: created,
        cache_read_input_tokens: read,
        messages: 1,
    }
}

/// (message id, request id, sidechain, model, usage) of each response.
type Summary<'a> = (Option<&'a str>, Option<&'a str>, bool, &'a str, TokenUsage);

fn summary(count: &TranscriptCount) -> Vec<Summary<'_>> {
    count
        .responses
        .iter()
        .map(|r| {
            let (id, request) = (r.message_id.as_deref(), r.request_id.as_deref());
            (id, request, r.sidechain, r.model.as_str(), r.usage)
        })
        .collect()
}

#[test]
fn a_response_over_several_lines_keeps_its_largest_line() {
    let t = transcript(&[
        r#"{"type":"user","sessionId":"sess-1","message":{"role":"user","content":"go"}}"#,
        &assistant("m1", "r1", "claude-sonnet-4-5", (10, 1, 100, 1000)),
        &assistant("m1", "r1", "claude-sonnet-4-5", (10, 7, 100, 1000)),
        &assistant("m1", "r1", "claude-sonnet-4-5", (10, 7, 100, 1000)),
        &assistant("m2", "r2", "claude-opus-4-1", (3, 4, 5, 6)),
        "{broken",
        // The same message id under another request id is another response.
        &assistant("m2", "r3", "claude-opus-4-1", (1, 1, 1, 1)),
        &assistant("m3", "r4", "claude-sonnet-4-5", (1, 2, 3, 4)),
    ]);
    let count = count(&t);
    assert_eq!(count.session_id, "sess-1");
    let sonnet = "claude-sonnet-4-5";
    let opus = "claude-opus-4-1";
    assert_eq!(
        summary(&count),
        [
            (
                Some("m1"),
                Some("r1"),
                false,
                sonnet,
                tokens(10, 7, 100, 1000)
            ),
            (Some("m2"), Some("r2"), false, opus, tokens(3, 4, 5, 6)),
            (Some("m2"), Some("r3"), false, opus, tokens(1, 1, 1, 1)),
            (Some("m3"), Some("r4"), false, sonnet, tokens(1, 2, 3, 4)),
        ]
    );
    assert_eq!(
        count.responses[0].line, 2,
        "the first of the equal largest lines"
    );
    assert_eq!(t.malformed_lines(), 1);
}

#[test]
fn cache_writes_split_by_lifetime_count_as_their_sum() {
    let line = json!({
        "type": "assistant", "requestId": "r1", "isSidechain": true,
        "message": {"id": "m1", "model": "claude-haiku-4-5",
            "usage": {"input_tokens": 1, "output_tokens": 2,
                "cache_creation_input_tokens": 999, "cache_read_input_tokens": 4,
                "cache_creation": {"ephemeral_5m_input_tokens": 30,
                    "ephemeral_1h_input_tokens": 12}}}
    })
    .to_string();
    let count = count(&transcript(&[&line]));
    assert_eq!(
        summary(&count),
        [(
            Some("m1"),
            Some("r1"),
            true,
            "claude-haiku-4-5",
            tokens(1, 2, 42, 4)
        )]
    );
}

#[test]
fn what_is_not_an_assistant_response_with_usage_counts_nothing() {
    let t = transcript(&[
        r#"{"type":"summary","summary":"x"}"#,
        r#"{"type":"user","message":{"role":"user","usage":{"input_tokens":5}}}"#,
        r#"{"type":"user","toolUseResult":{"usage":{"input_tokens":5}},"message":{"role":"user"}}"#,
        r#"{"type":"assistant","message":{"id":"m1","model":"m"}}"#,
        r#"{"type":"assistant","message":{"id":"e1","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#,
        r#"{"type":"assistant","message":{"model":"m","usage":{"input_tokens":2}}}"#,
        r#"{"type":"assistant","message":{"model":"m","usage":{"input_tokens":3}}}"#,
        r#"{"type":"assistant","message":{"id":"m9","usage":{"output_tokens":-1}}}"#,
        r#"{"type":"assistant","message":{"id":"m8","usage":{"output_tokens":4}}}"#,
    ]);
    let count = count(&t);
    assert_eq!(count.session_id, "3f2a", "no sessionId: the file name");
    assert_eq!(
        summary(&count),
        [
            (None, None, false, "m", tokens(2, 0, 0, 0)),
            (None, None, false, "m", tokens(3, 0, 0, 0)),
            (Some("m8"), None, false, UNKNOWN_MODEL, tokens(0, 4, 0, 0)),
        ],
        "lines without an id count on their own; <synthetic> lines count nowhere"
    );
    assert_eq!(t.malformed_lines(), 1, "a negative count");
}
