//! Bad input to every RPC of every bosun service (the RPCs are read from the
//! descriptor set the server serves, so a new one is covered or fails here).
//!
//! Each case is a well-formed request (tests/common/baselines.rs) with one
//! field spoiled (tests/common/bad_values.rs), sent as raw bytes through one
//! real server. Every answer must be clean: never INTERNAL, UNKNOWN or a
//! dropped connection; a strict bad value (not UTF-8, a control character,
//! too long, too many, an unknown enum number, a negative number, a bad
//! duration, field mask or page token) is INVALID_ARGUMENT whose BadRequest names the
//! field; and a refused call changes nothing stored (change-log head and
//! the row count of every table).
//!
//! `PROPTEST_CASES=5000 cargo test --test bad_input` runs the random parts
//! deeper.

mod common;

use bosun::storage::sql::{query, query_per_engine};
use std::sync::LazyLock;

use bosun::config::Config;
use common::bad_values::{Class, Spoil, spoil};
use common::baselines::{EMPTY_REQUEST, baseline, element, ignored};
use common::rpcs::{Descriptors, Rpc, call_raw};
use common::{TestServer, bad_fields};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use tokio::runtime::Runtime;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;

static DESCRIPTORS: LazyLock<Descriptors> = LazyLock::new(Descriptors::load);

/// Cases of a random test: `PROPTEST_CASES` if set, else `default`.
fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default);
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// No background pass writes while a test compares stored state; Watch
/// streams send a bookmark soon, so an accepted Watch answers quickly.
fn quiet(config: &mut Config) {
    config.processors.usage.enabled = false;
    config.processors.tool_errors.enabled = false;
    config.reconciler.interval = std::time::Duration::from_secs(3600);
    config.events.progress_interval = std::time::Duration::from_millis(100);
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What is stored: the change-log head and every table's row count.
async fn stored(server: &TestServer) -> Vec<(String, i64)> {
    let mut db = server.direct().await;
    let tables: Vec<String> = query_per_engine(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all_scalars(&mut db.conn())
    .await
    .expect("tables");
    let mut state = Vec::new();
    for table in tables {
        let count: i64 = query(&format!("SELECT count(*) FROM \"{table}\""))
            .fetch_scalar(&mut db.conn())
            .await
            .expect("count");
        state.push((table, count));
    }
    let head: i64 = query("SELECT coalesce(max(seq), 0) FROM change_log")
        .fetch_scalar(&mut db.conn())
        .await
        .expect("head");
    state.push(("change_log head".into(), head));
    state
}

/// The field a violation names, without list indexes (`checks[2].name`
/// is `checks.name`).
fn unindexed(field: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether `named` is `path` or something inside it.
fn names(named: &str, path: &str) -> bool {
    let named = unindexed(named);
    named == path || named.starts_with(&format!("{path}."))
}

/// Sends `body` to `rpc` and checks the answer is clean; `spoil`, when
/// given, says what was wrong with it.
async fn check(
    server: &TestServer,
    rpc: &Rpc,
    body: Vec<u8>,
    spoil: Option<&Spoil>,
) -> Result<(), String> {
    let before = stored(server).await;
    let result = call_raw(&server.channel, rpc, body, None).await;
    let what = match spoil {
        Some(spoil) => format!("{} {} {:?}", rpc.name, spoil.leaf.path, spoil.class),
        None => rpc.name.clone(),
    };
    let must_refuse = spoil.is_some_and(Spoil::must_be_refused);
    let status = match result {
        Ok(()) if must_refuse => return Err(format!("{what}: accepted")),
        Ok(()) => return Ok(()),
        Err(status) => status,
    };
    let summary = format!("{:?} {:?}", status.code(), status.message());
    if matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::Unavailable | Code::Unimplemented | Code::DataLoss
    ) {
        return Err(format!("{what}: {summary:.300}"));
    }
    let fields = bad_fields(&status);
    if status.code() == Code::InvalidArgument && fields.is_empty() {
        return Err(format!(
            "{what}: INVALID_ARGUMENT names no field: {summary:.300}"
        ));
    }
    if let Some(spoil) = spoil.filter(|spoil| spoil.must_be_refused()) {
        let path = &spoil.leaf.path;
        let oneof = spoil.leaf.oneof.as_deref().unwrap_or(path);
        let named = fields.iter().any(|f| names(f, path) || names(f, oneof));
        if status.code() != Code::InvalidArgument || !named {
            return Err(format!("{what}: {summary:.300} naming {fields:?}"));
        }
    }
    let after = stored(server).await;
    if before != after {
        return Err(format!(
            "{what}: refused ({summary:.100}) but stored state changed"
        ));
    }
    Ok(())
}

async fn assert_serving(server: &TestServer) {
    let health = server
        .health()
        .check(HealthCheckRequest::default())
        .await
        .expect("the server is still up");
    assert_eq!(health.into_inner().status, 1, "SERVING");
}

fn baseline_of(rpc: &Rpc) -> Vec<u8> {
    baseline(&rpc.name).unwrap_or_else(|| panic!("{}: no baseline request", rpc.name))
}

/// Every (rpc, field, class) the tests spoil.
fn spoils(strict: bool) -> Vec<(Rpc, common::rpcs::Leaf, Class)> {
    let mut all = Vec::new();
    for rpc in &DESCRIPTORS.rpcs {
        for mut leaf in DESCRIPTORS.leaves(&rpc.input) {
            leaf.output_only |= ignored(&rpc.name, &leaf.path);
            let token = (leaf.path == "page_token").then_some(Class::ForgedToken);
            for &class in Class::for_kind(leaf.kind, leaf.repeated)
                .iter()
                .chain(&token)
            {
                if class.is_strict() == strict || !strict {
                    all.push((rpc.clone(), leaf.clone(), class));
                }
            }
        }
    }
    all
}

#[test]
fn every_rpc_has_a_baseline_that_passes_validation() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let mut failures = Vec::new();
    for rpc in &DESCRIPTORS.rpcs {
        let Some(body) = baseline(&rpc.name) else {
            failures.push(format!("{}: no baseline request", rpc.name));
            continue;
        };
        if let Err(status) = rt.block_on(call_raw(&server.channel, rpc, body, None))
            && matches!(
                status.code(),
                Code::InvalidArgument | Code::Internal | Code::Unknown
            )
        {
            failures.push(format!(
                "{}: {:?} {}",
                rpc.name,
                status.code(),
                status.message()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every field of every RPC, once with each strict bad value: refused,
/// named, nothing stored.
#[test]
fn every_field_of_every_rpc_refuses_every_strict_bad_value() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let mut values = TestRunner::deterministic();
    let mut failures = Vec::new();
    let all = spoils(true);
    assert!(all.len() > 300, "the walk found only {} cases", all.len());
    for (rpc, leaf, class) in all {
        let spoil = spoil(leaf, class)
            .new_tree(&mut values)
            .expect("value")
            .current();
        let body = spoil.apply(&baseline_of(&rpc), element);
        if let Err(failure) = rt.block_on(check(&server, &rpc, body, Some(&spoil))) {
            failures.push(failure);
        }
    }
    rt.block_on(assert_serving(&server));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Random bad and borderline values in random fields of random RPCs.
#[test]
fn random_values_in_any_field_of_any_rpc() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let all = spoils(false);
    let cases = proptest::sample::select(all).prop_flat_map(|(rpc, leaf, class)| {
        spoil(leaf, class).prop_map(move |spoil| (rpc.clone(), spoil))
    });
    runner(256)
        .run(&cases, |(rpc, spoil)| {
            let body = spoil.apply(&baseline_of(&rpc), element);
            rt.block_on(check(&server, &rpc, body, Some(&spoil)))
                .map_err(TestCaseError::fail)
        })
        .unwrap();
    rt.block_on(assert_serving(&server));
}

/// Random bytes, and baselines cut short or with bytes flipped: whatever
/// decodes is answered cleanly, whatever does not is MALFORMED_MESSAGE.
#[test]
fn garbage_bytes_to_any_rpc() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let rpcs = DESCRIPTORS.rpcs.clone();
    let garbage = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| (bytes, None)),
        (any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(at, byte)| (vec![], Some((at, byte)))),
    ];
    let cases = (
        proptest::sample::select(rpcs),
        garbage,
        any::<prop::sample::Index>(),
    );
    runner(256)
        .run(&cases, |(rpc, (random, flip), cut)| {
            let body = match flip {
                None => random,
                Some((at, byte)) => {
                    let mut body = baseline_of(&rpc);
                    if !body.is_empty() {
                        let at = at.index(body.len());
                        body[at] ^= byte;
                        body.truncate(cut.index(body.len() + 1).max(at + 1));
                    }
                    body
                }
            };
            rt.block_on(check(&server, &rpc, body, None))
                .map_err(TestCaseError::fail)
        })
        .unwrap();
    rt.block_on(assert_serving(&server));
}

#[test]
fn empty_requests_name_every_required_field() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let mut failures = Vec::new();
    for rpc in &DESCRIPTORS.rpcs {
        let Some((_, required)) = EMPTY_REQUEST.iter().find(|(name, _)| *name == rpc.name) else {
            failures.push(format!("{}: no row in EMPTY_REQUEST", rpc.name));
            continue;
        };
        let before = rt.block_on(stored(&server));
        let answer = rt.block_on(call_raw(&server.channel, rpc, Vec::new(), None));
        let named = match &answer {
            Ok(()) => Vec::new(),
            Err(status) if status.code() == Code::InvalidArgument => bad_fields(status),
            Err(status) => vec![format!("{:?}: {}", status.code(), status.message())],
        };
        if named != *required {
            failures.push(format!(
                "{}: named {named:?}, expected {required:?}",
                rpc.name
            ));
        }
        if answer.is_err() && rt.block_on(stored(&server)) != before {
            failures.push(format!("{}: refused but stored state changed", rpc.name));
        }
    }
    assert_eq!(
        EMPTY_REQUEST.len(),
        DESCRIPTORS.rpcs.len(),
        "a row for an RPC that is gone"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A request past tonic's 4 MiB decoding limit is refused by tonic before
/// bosun sees it: OUT_OF_RANGE, not INTERNAL, and nothing is stored.
#[test]
fn a_request_past_4_mib_is_refused() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start_with(quiet));
    let rpc = DESCRIPTORS
        .rpcs
        .iter()
        .find(|rpc| rpc.name == "Lessons/RecordLesson")
        .expect("RecordLesson");
    let before = rt.block_on(stored(&server));
    // lesson (2) { detail: 4 MiB of text }
    let detail = pb_text(13, &"x".repeat(4 * 1024 * 1024));
    let body = [baseline_of(rpc), pb_bytes(2, &detail)].concat();
    let status = rt
        .block_on(call_raw(&server.channel, rpc, body, None))
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(rt.block_on(stored(&server)), before);
    rt.block_on(assert_serving(&server));
}

fn pb_text(number: u32, text: &str) -> Vec<u8> {
    pb_bytes(number, text.as_bytes())
}

fn pb_bytes(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}
