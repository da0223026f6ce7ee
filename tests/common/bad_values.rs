//! Bad values for request fields, as proptest strategies, and the wire
//! encoding that plants one into a well-formed request.
//!
//! A [`Spoil`] appends one field occurrence (wrapped in its parent messages)
//! to a baseline request: protobuf merges it in, so a scalar replaces the
//! baseline's value, a repeated field gains an element, a sub-message gets
//! the field set. Strict classes are wrong for every field of their kind
//! and must be refused naming the field; lenient ones (empty, whitespace,
//! extremes) may be fine for some fields and must only be answered cleanly.

use proptest::prelude::*;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::{Duration, FieldMask, Timestamp};

use super::rpcs::{Kind, Leaf};

/// Longest text any bosun field takes (a test report's summary), in
/// characters; "huge" strings are longer.
pub const LONGEST_TEXT: usize = 64 * 1024;
/// Most elements any repeated request field takes.
pub const LONGEST_LIST: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    InvalidUtf8,
    ControlChar,
    Huge,
    TooMany,
    UnknownEnum,
    Negative,
    BadNumber,
    BadDuration,
    BadTimestamp,
    BadMask,
    /// A page token this server never issued.
    ForgedToken,
    /// Lenient from here on.
    Empty,
    Whitespace,
    Extreme,
}

impl Class {
    pub fn is_strict(self) -> bool {
        !matches!(self, Self::Empty | Self::Whitespace | Self::Extreme)
    }

    /// The classes that apply to a field of `kind` (`repeated`: a list).
    pub fn for_kind(kind: Kind, repeated: bool) -> &'static [Class] {
        use Class::*;
        match (kind, repeated) {
            (Kind::String, false) => &[InvalidUtf8, ControlChar, Huge, Empty, Whitespace],
            (Kind::String, true) => &[InvalidUtf8, ControlChar, Huge, TooMany, Empty],
            (Kind::Bytes, _) => &[Huge],
            (Kind::Enum, _) => &[UnknownEnum, Extreme],
            (Kind::Int32 | Kind::Int64, _) => &[Negative, Extreme],
            (Kind::Double, _) => &[BadNumber, Extreme],
            (Kind::Bool, _) => &[Extreme],
            (Kind::Timestamp, _) => &[BadTimestamp],
            (Kind::Duration, _) => &[BadDuration, Extreme],
            (Kind::FieldMask, _) => &[BadMask, InvalidUtf8],
        }
    }
}

/// One field of a request spoiled with one bad value.
#[derive(Debug, Clone)]
pub struct Spoil {
    pub leaf: Leaf,
    pub class: Class,
    /// Encoded occurrences of the leaf field (key included).
    occurrences: Vec<u8>,
}

impl Spoil {
    /// Whether the server must refuse it naming the leaf. Output-only
    /// fields are ignored by bosun, unless the bytes do not even decode.
    pub fn must_be_refused(&self) -> bool {
        self.class == Class::InvalidUtf8 || (self.class.is_strict() && !self.leaf.output_only)
    }

    /// `baseline` with the bad value planted; inside a repeated message,
    /// into a copy of `element` (a valid element of that list).
    pub fn apply(&self, baseline: &[u8], element: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
        let mut planted = self.occurrences.clone();
        let depth = self.leaf.numbers.len();
        for (level, &number) in self.leaf.numbers.iter().enumerate().rev().skip(1) {
            if let Some((at, path)) = &self.leaf.element
                && *at == level
                && level + 1 < depth
            {
                planted = [element(path), planted].concat();
            }
            let mut wrapped = Vec::new();
            encode_key(number, WireType::LengthDelimited, &mut wrapped);
            encode_varint(planted.len() as u64, &mut wrapped);
            wrapped.extend(planted);
            planted = wrapped;
        }
        [baseline, &planted].concat()
    }
}

/// A spoil of `leaf` with class `class` (which must apply to its kind).
pub fn spoil(leaf: Leaf, class: Class) -> BoxedStrategy<Spoil> {
    let number = *leaf.numbers.last().expect("leaf number");
    occurrences(leaf.kind, class, number)
        .prop_map(move |occurrences| Spoil {
            leaf: leaf.clone(),
            class,
            occurrences,
        })
        .boxed()
}

fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(number, WireType::LengthDelimited, &mut out);
    encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn varint_field(number: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(number, WireType::Varint, &mut out);
    encode_varint(value, &mut out);
    out
}

fn double_field(number: u32, value: f64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(number, WireType::SixtyFourBit, &mut out);
    out.extend_from_slice(&value.to_le_bytes());
    out
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,11}"
}

/// Text with a control character other than newline, CR and tab.
fn control_text() -> impl Strategy<Value = String> {
    let control = prop_oneof![
        (0u32..=8).prop_map(|c| char::from_u32(c).unwrap()),
        Just('\u{b}'),
        Just('\u{c}'),
        (0x0eu32..=0x1f).prop_map(|c| char::from_u32(c).unwrap()),
        Just('\u{7f}'),
        Just('\u{85}'),
    ];
    (word(), control, word()).prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

/// Bytes that are not UTF-8: a lone continuation byte, a truncated or
/// overlong sequence, a surrogate, a byte UTF-8 never uses.
fn invalid_utf8() -> impl Strategy<Value = Vec<u8>> {
    let bad: &[&[u8]] = &[
        &[0x80],
        &[0xc3, 0x28],
        &[0xe2, 0x82],
        &[0xc0, 0xaf],
        &[0xed, 0xa0, 0x80],
        &[0xf8, 0x88, 0x80, 0x80, 0x80],
        &[0xff],
        &[0xfe, 0xfe],
    ];
    (word(), proptest::sample::select(bad), word())
        .prop_map(|(a, bad, b)| [a.as_bytes(), bad, b.as_bytes()].concat())
}

fn huge_text() -> impl Strategy<Value = String> {
    (
        LONGEST_TEXT + 1..LONGEST_TEXT + 4096,
        prop_oneof![Just('x'), Just('é'), Just('語')],
    )
        .prop_map(|(len, c)| std::iter::repeat_n(c, len).collect())
}

fn occurrences(kind: Kind, class: Class, number: u32) -> BoxedStrategy<Vec<u8>> {
    let text = move |s: String| len_field(number, s.as_bytes());
    let message = move |m: Vec<u8>| len_field(number, &m);
    match (kind, class) {
        (Kind::String | Kind::Bytes, Class::Huge) => huge_text().prop_map(text).boxed(),
        (Kind::String, Class::InvalidUtf8) => invalid_utf8()
            .prop_map(move |b| len_field(number, &b))
            .boxed(),
        (Kind::String, Class::ControlChar) => control_text().prop_map(text).boxed(),
        (Kind::String, Class::TooMany) => (LONGEST_LIST + 1..LONGEST_LIST + 200)
            .prop_map(move |n| (0..n).flat_map(|i| text(format!("x{i}"))).collect())
            .boxed(),
        (Kind::String, Class::ForgedToken) => prop_oneof![
            "[A-Za-z0-9_=-]{1,64}",
            proptest::collection::vec(any::<u8>(), 1..48).prop_map(|bytes| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            }),
        ]
        .prop_map(text)
        .boxed(),
        (Kind::String, Class::Empty) => Just(text(String::new())).boxed(),
        (Kind::String, Class::Whitespace) => "[ \t\n]{1,8}".prop_map(text).boxed(),
        (Kind::Enum, Class::UnknownEnum) => prop_oneof![1000i32..=i32::MAX, i32::MIN..0]
            .prop_map(move |n| varint_field(number, n as i64 as u64))
            .boxed(),
        (Kind::Enum, Class::Extreme) => (0i32..8)
            .prop_map(move |n| varint_field(number, n as u64))
            .boxed(),
        (Kind::Int32, Class::Negative) => (i32::MIN..0)
            .prop_map(move |n| varint_field(number, n as i64 as u64))
            .boxed(),
        (Kind::Int64, Class::Negative) => (i64::MIN..0)
            .prop_map(move |n| varint_field(number, n as u64))
            .boxed(),
        (Kind::Int32, Class::Extreme) => prop_oneof![Just(0), Just(i32::MAX), Just(1)]
            .prop_map(move |n| varint_field(number, n as u64))
            .boxed(),
        (Kind::Int64, Class::Extreme) => prop_oneof![Just(0), Just(i64::MAX), Just(1)]
            .prop_map(move |n| varint_field(number, n as u64))
            .boxed(),
        (Kind::Double, Class::BadNumber) => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -1e300..-1e-9f64,
            100.001..1e300f64,
        ]
        .prop_map(move |x| double_field(number, x))
        .boxed(),
        (Kind::Double, Class::Extreme) => prop_oneof![Just(0.0), Just(100.0), Just(-0.0)]
            .prop_map(move |x| double_field(number, x))
            .boxed(),
        (Kind::Bool, Class::Extreme) => {
            (0u64..3).prop_map(move |b| varint_field(number, b)).boxed()
        }
        (Kind::Duration, Class::BadDuration) => prop_oneof![
            (i64::MIN..0).prop_map(|seconds| Duration { seconds, nanos: 0 }),
            (0i64..1000, -999_999_999i32..0).prop_map(|(seconds, nanos)| Duration {
                seconds: seconds + 1,
                nanos
            }),
            (1_000_000_000i32..=i32::MAX).prop_map(|nanos| Duration { seconds: 0, nanos }),
            (315_576_000_001i64..=i64::MAX).prop_map(|seconds| Duration { seconds, nanos: 0 }),
        ]
        .prop_map(move |d| message(d.encode_to_vec()))
        .boxed(),
        (Kind::Duration, Class::Extreme) => prop_oneof![
            Just(Duration::default()),
            Just(Duration {
                seconds: 315_576_000_000,
                nanos: 999_999_999
            }),
        ]
        .prop_map(move |d| message(d.encode_to_vec()))
        .boxed(),
        (Kind::Timestamp, Class::BadTimestamp) => prop_oneof![
            (253_402_300_800i64..=i64::MAX).prop_map(|seconds| Timestamp { seconds, nanos: 0 }),
            (i64::MIN..-62_135_596_800).prop_map(|seconds| Timestamp { seconds, nanos: 0 }),
            (i32::MIN..0).prop_map(|nanos| Timestamp { seconds: 1, nanos }),
        ]
        .prop_map(move |t| message(t.encode_to_vec()))
        .boxed(),
        (Kind::FieldMask, Class::BadMask) => prop_oneof![
            word().prop_map(|w| vec![format!("no_such_{w}")]),
            Just(vec![String::new()]),
            word().prop_map(|w| vec!["*".to_string(), w]),
            control_text().prop_map(|t| vec![t]),
        ]
        .prop_map(move |paths| message(FieldMask { paths }.encode_to_vec()))
        .boxed(),
        (Kind::FieldMask, Class::InvalidUtf8) => invalid_utf8()
            .prop_map(move |b| message(len_field(1, &b)))
            .boxed(),
        (kind, class) => panic!("no {class:?} values for {kind:?}"),
    }
}
