//! Fuzzing the webhook parsers and the signature check with proptest: random
//! bytes, the published fixtures cut short, and fixtures with one value
//! replaced by a wrong type, a huge number, a huge or control-laden string,
//! deep nesting, or removed. Parsing never panics; it reads the delivery or
//! refuses it with a [`ParseError`]; what it reads translates into requests
//! within the RPC limits. A signature verifies only when it is the body's
//! HMAC under the secret.
//!
//! `PROPTEST_CASES=20000 cargo test --lib webhooks::fuzz_tests` runs deeper.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use super::forge::ForgeEvent;
use super::signature::{SignatureError, sign, verify};
use super::{Source, forge_json, plane, translate};
use crate::pb;

const FIXTURES: &[(Source, &str, &str)] = &[
    (
        Source::GitHub,
        "check_run",
        "github/check_run.completed.failure.json",
    ),
    (Source::GitHub, "check_run", "github/check_run.created.json"),
    (
        Source::GitHub,
        "check_suite",
        "github/check_suite.completed.json",
    ),
    (
        Source::GitHub,
        "pull_request",
        "github/pull_request.closed.json",
    ),
    (
        Source::GitHub,
        "pull_request",
        "github/pull_request.opened.json",
    ),
    (
        Source::GitHub,
        "pull_request_review",
        "github/pull_request_review.dismissed.json",
    ),
    (
        Source::GitHub,
        "pull_request_review",
        "github/pull_request_review.submitted.json",
    ),
    (Source::GitHub, "status", "github/status.json"),
    (
        Source::GitHub,
        "workflow_run",
        "github/workflow_run.completed.json",
    ),
    (Source::GitHub, "ping", "github/ping.json"),
    (
        Source::Gitea,
        "pull_request",
        "gitea/pull_request.opened.json",
    ),
    (
        Source::Gitea,
        "pull_request_approved",
        "gitea/pull_request_approved.json",
    ),
    (Source::Gitea, "status", "gitea/status.failure.json"),
    (Source::Plane, "issue", "plane/issue.updated.approved.json"),
    (
        Source::Plane,
        "issue",
        "plane/issue.updated.in_progress.json",
    ),
];

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()))
}

/// Parses `body` as `source` would, and translates whatever it reads.
fn parse_and_translate(source: Source, event: &str, body: &[u8]) {
    if source == Source::Plane {
        if let Ok(Some(issue)) = plane::parse(event, body) {
            let binding = pb::PlaneBinding {
                workspace_slug: "acme".into(),
                plane_project_id: "p-1".into(),
                in_progress_state: "In Progress".into(),
                approved_state: "Approved".into(),
                rejected_state: "Rejected".into(),
            };
            let _ = plane::meaning(&issue, &binding);
            let _ = plane::needs_identifier(&issue);
            let _ = plane::work_item_id(&issue, Some("MER"));
        }
        return;
    }
    let Ok(Some(forge_event)) = forge_json::parse(source, event, body) else {
        return;
    };
    for target in translate::targets(&forge_event) {
        assert!(!target.branch.is_empty());
        if let Some(report) = translate::pull_request_report(source, &forge_event, &target, None) {
            assert!(report.number > 0, "{report:?}");
        }
    }
    match &forge_event {
        ForgeEvent::Ci(ci) => {
            let check = translate::check(ci);
            assert_line(&check.name);
            assert!(check.log_tail.chars().count() <= 16 * 1024);
            let request = translate::ci_status_request("r".into(), ci, None);
            for line in [&request.branch, &request.context, &request.description] {
                assert_line(line);
            }
            assert!(!request.target_url.chars().any(char::is_control));
        }
        ForgeEvent::PullRequest(pr) => {
            if let Some(verdict) = translate::verdict_request("r".into(), &pr.review, 1) {
                assert_line(&verdict.author);
            }
        }
    }
}

/// A value the RPCs take as a short, single-line field.
fn assert_line(text: &str) {
    assert!(text.chars().count() <= 256, "{} characters", text.len());
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// Every JSON pointer into `value`.
fn pointers(value: &Value, at: String, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(key, v)| {
            pointers(
                v,
                format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                into,
            )
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| pointers(v, format!("{at}/{i}"), into)),
        _ => {}
    }
    into.push(at);
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

/// What replaces one value of a fixture (`None`: the key is removed).
fn replacement() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(Value::Bool(b))),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1), Just(0)]
            .prop_map(|n| Some(Value::from(n))),
        Just(Some(Value::from(u64::MAX))),
        Just(Some(serde_json::json!(1e308))),
        Just(Some(serde_json::json!(-0.5))),
        "\\PC{0,40}".prop_map(|s| Some(Value::String(s))),
        "[\\x00-\\x1f\\x7f]{1,20}".prop_map(|s| Some(Value::String(s))),
        (20_000usize..120_000).prop_map(|n| Some(Value::String("x".repeat(n)))),
        Just(Some(serde_json::json!([]))),
        Just(Some(serde_json::json!({}))),
        (1usize..200).prop_map(|depth| Some(nested(depth))),
    ]
}

/// A fixture with one value replaced or removed.
fn mutated(value: &Value, pick: prop::sample::Index, new: Option<Value>) -> Vec<u8> {
    let mut value = value.clone();
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    let pointer = &all[pick.index(all.len())];
    match (pointer.rsplit_once('/'), new) {
        (Some((parent, key)), None) => match value.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            Some(Value::Array(items)) => {
                items.pop();
            }
            _ => {}
        },
        (_, new) => {
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = new.unwrap_or(Value::Null);
            }
        }
    }
    serde_json::to_vec(&value).expect("serialize")
}

fn any_fixture() -> impl Strategy<Value = (Source, &'static str, Vec<u8>)> {
    proptest::sample::select(FIXTURES)
        .prop_map(|(source, event, path)| (source, event, fixture(path)))
}

fn any_source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::GitHub),
        Just(Source::Gitea),
        Just(Source::Plane)
    ]
}

#[test]
fn every_fixture_parses() {
    for (source, event, path) in FIXTURES {
        let body = fixture(path);
        let parsed = match source {
            Source::Plane => plane::parse(event, &body).map(|e| e.is_some()),
            _ => forge_json::parse(*source, event, &body).map(|e| e.is_some()),
        };
        assert_eq!(parsed, Ok(*event != "ping"), "{path}");
        parse_and_translate(*source, event, &body);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(
        source in any_source(),
        event in prop_oneof![
            proptest::sample::select(FIXTURES).prop_map(|f| f.1.to_string()),
            "\\PC{0,20}",
        ],
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        parse_and_translate(source, &event, &body);
    }

    #[test]
    fn fixtures_cut_short_never_panic(
        (source, event, body) in any_fixture(),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(body.len());
        parse_and_translate(source, event, &body[..cut]);
        if event != "ping" && body[cut..].iter().any(|b| !b.is_ascii_whitespace()) {
            let refused = match source {
                Source::Plane => plane::parse(event, &body[..cut]).is_err(),
                _ => forge_json::parse(source, event, &body[..cut]).is_err(),
            };
            prop_assert!(refused, "{} bytes of {}", cut, body.len());
        }
    }

    #[test]
    fn fixtures_with_a_value_spoiled_never_panic(
        (source, event, body) in any_fixture(),
        pick in any::<prop::sample::Index>(),
        new in replacement(),
    ) {
        let value: Value = serde_json::from_slice(&body).unwrap();
        parse_and_translate(source, event, &mutated(&value, pick, new));
    }

    #[test]
    fn only_the_bodys_own_signature_verifies(
        source in any_source(),
        secret in proptest::collection::vec(any::<u8>(), 0..80),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        other_secret in proptest::collection::vec(any::<u8>(), 1..80),
    ) {
        let signed = sign(source, &secret, &body);
        prop_assert_eq!(verify(source, &secret, Some(signed.as_bytes()), &body), Ok(()));
        let mismatch = Err(SignatureError::Mismatch(source.signature_header()));
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(verify(source, &secret, Some(signed.as_bytes()), &tampered), mismatch);
        }
        // One hex digit of the signature changed to another hex digit.
        let mut forged = signed.clone().into_bytes();
        let hex_start = forged.len() - 64;
        let at = hex_start + flip.index(64);
        forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
        prop_assert_eq!(verify(source, &secret, Some(&forged), &body), mismatch);
        if other_secret != secret {
            let other = sign(source, &other_secret, &body);
            prop_assert_eq!(verify(source, &secret, Some(other.as_bytes()), &body), mismatch);
        }
    }

    #[test]
    fn malformed_signature_headers_are_refused(
        source in any_source(),
        secret in proptest::collection::vec(any::<u8>(), 0..40),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        header in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..140),
            "(sha1=|SHA256=|sha256:|sha256= )?[0-9a-f]{0,80}".prop_map(String::into_bytes),
            "sha256=[0-9a-zA-Z]{64}".prop_map(String::into_bytes),
        ],
        cut in 0usize..64,
    ) {
        prop_assert!(verify(source, &secret, Some(&header), &body).is_err());
        prop_assert_eq!(
            verify(source, &secret, None, &body),
            Err(SignatureError::Missing(source.signature_header()))
        );
        // The right signature cut short is not the right signature.
        let signed = sign(source, &secret, &body);
        let short = &signed.as_bytes()[..signed.len() - 64 + cut];
        prop_assert!(verify(source, &secret, Some(short), &body).is_err());
    }
}
