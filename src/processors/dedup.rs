//! Which transcript counts an API response that several transcripts record
//! (`claude --resume` repeats the earlier session's responses in a new
//! transcript), decided as `ccusage` (20.0.11) decides it, so that totals per
//! model, per transcript and overall equal its own:
//!
//! - A response is keyed by (`message.id`, `requestId`); a line without
//!   `message.id` is a response of its own and always counts.
//! - A sidechain copy (`isSidechain`) of a message id that a main-chain
//!   response has (under any request id) does not count; sidechain copies of
//!   one message id with no main-chain response are one response.
//! - Of the copies of one response, the one with the most tokens (input +
//!   output + cache writes + cache reads) counts: streamed lines carry a
//!   partial output count. Of equal copies, the transcript whose key sorts
//!   first, then the earlier line, counts.
//!
//! The decision is a function of the copies alone, never of the order the
//! transcripts were read in, so an incremental pass reaches the same answer
//! as a pass over everything.

use std::cmp::Reverse;
use std::collections::BTreeMap;

/// One transcript's copy of a response that has a message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseCopy {
    pub transcript: String,
    pub line: i64,
    pub message_id: String,
    pub request_id: Option<String>,
    pub sidechain: bool,
    pub total_tokens: i64,
}

/// Whether each copy counts (in the order given). Every message id given
/// must come with all of its copies.
pub fn counted(copies: &[ResponseCopy]) -> Vec<bool> {
    let mut counts = vec![false; copies.len()];
    // Per message id: the main-chain groups by request id, and the sidechain group.
    let mut groups: BTreeMap<(&str, bool, Option<&str>), Vec<usize>> = BTreeMap::new();
    let mut has_main: BTreeMap<&str, bool> = BTreeMap::new();
    for (index, copy) in copies.iter().enumerate() {
        let request = (!copy.sidechain)
            .then_some(copy.request_id.as_deref())
            .flatten();
        groups
            .entry((&copy.message_id, copy.sidechain, request))
            .or_default()
            .push(index);
        *has_main.entry(&copy.message_id).or_default() |= !copy.sidechain;
    }
    for ((message_id, sidechain, _), members) in groups {
        if sidechain && has_main[message_id] {
            continue;
        }
        let winner = members.into_iter().min_by_key(|&index| {
            let copy = &copies[index];
            (
                Reverse(copy.total_tokens),
                copy.transcript.as_str(),
                copy.line,
            )
        });
        if let Some(winner) = winner {
            counts[winner] = true;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(
        transcript: &str,
        line: i64,
        id: &str,
        request: Option<&str>,
        side: bool,
        total: i64,
    ) -> ResponseCopy {
        ResponseCopy {
            transcript: transcript.into(),
            line,
            message_id: id.into(),
            request_id: request.map(str::to_string),
            sidechain: side,
            total_tokens: total,
        }
    }

    #[test]
    fn which_copy_counts() {
        let r1 = Some("r1");
        let cases: Vec<(&str, Vec<ResponseCopy>, Vec<bool>)> = vec![
            (
                "one copy",
                vec![copy("a/1.jsonl", 0, "m", r1, false, 5)],
                vec![true],
            ),
            (
                "equal copies: the transcript that sorts first",
                vec![
                    copy("p/b.jsonl", 0, "m", r1, false, 5),
                    copy("p/a.jsonl", 9, "m", r1, false, 5),
                ],
                vec![false, true],
            ),
            (
                "the largest copy, wherever it is",
                vec![
                    copy("p/a.jsonl", 0, "m", r1, false, 5),
                    copy("p/b.jsonl", 0, "m", r1, false, 6),
                ],
                vec![false, true],
            ),
            (
                "another request id is another response",
                vec![
                    copy("p/a.jsonl", 0, "m", r1, false, 5),
                    copy("p/b.jsonl", 0, "m", Some("r2"), false, 5),
                ],
                vec![true, true],
            ),
            (
                "no request id is a key of its own",
                vec![
                    copy("p/a.jsonl", 0, "m", None, false, 5),
                    copy("p/b.jsonl", 0, "m", None, false, 5),
                    copy("p/c.jsonl", 0, "m", r1, false, 5),
                ],
                vec![true, false, true],
            ),
            (
                "a sidechain replay of a main-chain message id never counts",
                vec![
                    copy("p/a.jsonl", 0, "m", Some("r9"), true, 50),
                    copy("p/b.jsonl", 3, "m", r1, false, 5),
                ],
                vec![false, true],
            ),
            (
                "sidechain copies alone are one response, whatever their request ids",
                vec![
                    copy("p/a.jsonl", 4, "m", Some("r8"), true, 5),
                    copy("p/a.jsonl", 2, "m", Some("r9"), true, 5),
                ],
                vec![false, true],
            ),
        ];
        for (name, copies, expected) in cases {
            assert_eq!(counted(&copies), expected, "{name}");
            let mut reversed = copies.clone();
            reversed.reverse();
            let mut expected_reversed = expected.clone();
            expected_reversed.reverse();
            assert_eq!(
                counted(&reversed),
                expected_reversed,
                "{name}, read in the other order"
            );
        }
    }
}
