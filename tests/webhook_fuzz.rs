//! The webhook shim over HTTP with random deliveries (the parsers and the
//! signature check are fuzzed at unit level in src/webhooks/fuzz_tests.rs):
//! a delivery whose signature is missing, malformed or not the body's is 401
//! and stores nothing; a correctly signed body of random bytes is answered
//! with a 4xx or 2xx, never a 5xx, and the server stays up; an oversized
//! body is 413.
//!
//! `PROPTEST_CASES=500 cargo test --test webhook_fuzz` runs deeper.

mod common;

use bosun::webhooks::Source;
use common::TestServer;
use common::webhooks::{Delivery, fixture, with_secrets};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::GitHub),
        Just(Source::Gitea),
        Just(Source::Plane)
    ]
}

fn event(source: Source) -> &'static str {
    match source {
        Source::GitHub => "check_run",
        Source::Gitea => "status",
        Source::Plane => "issue",
    }
}

/// A body: random bytes, or a published payload with a few bytes changed.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let published = prop_oneof![
        Just("github/check_run.completed.failure.json"),
        Just("gitea/status.failure.json"),
        Just("plane/issue.updated.in_progress.json"),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (
            published,
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
        )
            .prop_map(|(path, flips)| {
                let mut body = fixture(path);
                for (at, byte) in flips {
                    let at = at.index(body.len());
                    body[at] = byte;
                }
                body
            }),
    ]
}

/// A signature header that is not the body's.
#[derive(Debug, Clone)]
enum BadSignature {
    Missing,
    OtherSecret(String),
    Sha1Prefix,
    NotHex,
    CutShort(usize),
    Random(String),
}

impl BadSignature {
    fn header(&self, delivery: &Delivery) -> Option<String> {
        let good = delivery.signature.clone().expect("signed");
        match self {
            Self::Missing => None,
            Self::OtherSecret(secret) => {
                delivery
                    .clone()
                    .signed_with(&format!("x{secret}"))
                    .signature
            }
            Self::Sha1Prefix => Some(format!("sha1={}", good.trim_start_matches("sha256="))),
            Self::NotHex => Some(format!("{}z", &good[..good.len() - 1])),
            Self::CutShort(cut) => Some(good[..good.len() - cut].to_string()),
            Self::Random(text) => Some(text.clone()),
        }
    }
}

fn bad_signature() -> impl Strategy<Value = BadSignature> {
    prop_oneof![
        Just(BadSignature::Missing),
        "[a-z]{1,12}".prop_map(BadSignature::OtherSecret),
        Just(BadSignature::Sha1Prefix),
        Just(BadSignature::NotHex),
        (1usize..64).prop_map(BadSignature::CutShort),
        "[ -~]{0,80}".prop_map(BadSignature::Random),
    ]
}

#[test]
fn random_deliveries_are_refused_or_answered_cleanly() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(TestServer::start_with(with_secrets));
    let ids = std::cell::Cell::new(0u64);
    let cases = (source(), body(), bad_signature());
    runner(48)
        .run(&cases, |(source, body, spoil)| {
            ids.set(ids.get() + 1);
            let id = format!("fuzz-{}", ids.get());
            let signed = Delivery::new(source, event(source), &id, body);
            let mut unsigned = signed.clone();
            unsigned.signature = spoil.header(&signed);
            if unsigned.signature == signed.signature {
                return Ok(());
            }
            rt.block_on(async {
                let head = server.head().await;
                let refused = server.deliver(&unsigned).await;
                if refused.status != 401 || server.head().await != head {
                    return Err(TestCaseError::fail(format!("badly signed: {refused:?}")));
                }
                let answered = server.deliver(&signed).await;
                if !(200..500).contains(&answered.status) || answered.status == 401 {
                    return Err(TestCaseError::fail(format!("signed: {answered:?}")));
                }
                Ok(())
            })
        })
        .unwrap();
    let limit = server.config.webhooks.body_limit;
    let huge = Delivery::new(Source::GitHub, "check_run", "huge", vec![b' '; limit + 1]);
    let answer = rt.block_on(server.deliver(&huge));
    assert_eq!(answer.status, 413, "{answer:?}");
}
