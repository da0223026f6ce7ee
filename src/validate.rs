//! Shared input validators. Adapters call them while turning a request into
//! typed domain values, collecting every problem into one [`Violations`].
//!
//! The input limits of every RPC live here: every string field of a request
//! is short text, long text or body text (or a narrower format: a slug, a
//! request_id, a page token); text never holds control characters other than
//! newline, carriage return and tab (and those only where it is multi-line);
//! enums take only the numbers the proto defines; numbers that count or
//! name something are never negative; durations are protobuf-valid and not
//! negative. A request that breaks one is INVALID_ARGUMENT naming the field.

use crate::error::Violations;

/// Longest identifier-like field (repo, stage, work item id...), in characters.
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest free-text field (root cause, suggestion, detail...), in characters.
pub const MAX_LONG_TEXT: usize = 16 * 1024;
/// Longest body-like field (a test report's summary, a check's log tail), in
/// characters.
pub const MAX_BODY_TEXT: usize = 64 * 1024;
/// Longest request_id, in characters.
pub const MAX_REQUEST_ID: usize = 128;

/// An optional short, single-line field: empty means unset.
pub fn short_text(violations: &mut Violations, field: &str, value: String) -> Option<String> {
    text(violations, field, value, MAX_SHORT_TEXT, false)
}

/// An optional free-text field (newlines and tabs allowed): empty means unset.
pub fn long_text(violations: &mut Violations, field: &str, value: String) -> Option<String> {
    text(violations, field, value, MAX_LONG_TEXT, true)
}

/// An optional body-like field (multi-line, up to [`MAX_BODY_TEXT`]).
pub fn body_text(violations: &mut Violations, field: &str, value: String) -> Option<String> {
    text(violations, field, value, MAX_BODY_TEXT, true)
}

/// A required short, single-line field: empty is a violation.
pub fn required_text(violations: &mut Violations, field: &str, value: String) -> String {
    if value.is_empty() {
        violations.add(field, "is required");
        return String::new();
    }
    short_text(violations, field, value).unwrap_or_default()
}

/// An optional text field of at most `max_chars` characters: empty means
/// unset.
pub fn text(
    violations: &mut Violations,
    field: &str,
    value: String,
    max_chars: usize,
    multiline: bool,
) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.chars().count() > max_chars {
        violations.add(field, format!("must be at most {max_chars} characters"));
        return None;
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !value.chars().all(allowed) {
        violations.add(field, "must not contain control characters");
        return None;
    }
    Some(value)
}

/// An open slug: `^[a-z][a-z0-9_]{0,63}$`.
pub fn is_slug(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some('a'..='z'))
        && value.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// An optional idempotency key: 1 to 128 printable ASCII characters.
pub fn request_id(violations: &mut Violations, field: &str, value: String) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.len() > MAX_REQUEST_ID || !value.bytes().all(|b| b.is_ascii_graphic()) {
        violations.add(
            field,
            format!("must be 1 to {MAX_REQUEST_ID} printable ASCII characters without spaces"),
        );
        return None;
    }
    Some(value)
}

/// An optional proto enum: 0 (UNSPECIFIED) is `None`; unknown numbers are bad.
pub fn optional_enum<E: TryFrom<i32>>(
    violations: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<E> {
    if raw == 0 {
        return None;
    }
    match E::try_from(raw) {
        Ok(value) => Some(value),
        Err(_) => {
            violations.add(field, format!("unknown enum value {raw}"));
            None
        }
    }
}

/// Protobuf's largest Duration, in seconds (10,000 years).
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// An optional protobuf Duration (unset is `None`): its seconds and nanos
/// must agree in sign and be in protobuf's range, and it must not be
/// negative.
pub fn duration(
    violations: &mut Violations,
    field: &str,
    value: Option<prost_types::Duration>,
) -> Option<std::time::Duration> {
    let prost_types::Duration { seconds, nanos } = value?;
    let valid =
        (0..=MAX_DURATION_SECONDS).contains(&seconds) && (0..1_000_000_000).contains(&nanos);
    if !valid {
        violations.add(
            field,
            "must be a duration from 0 to 315576000000 s (nanos from 0 to 999999999)",
        );
        return None;
    }
    Some(std::time::Duration::new(seconds as u64, nanos as u32))
}

/// A required positive id.
pub fn positive_id(violations: &mut Violations, field: &str, id: i64) -> i64 {
    if id <= 0 {
        violations.add(field, "must be a positive id");
    }
    id
}

/// The paths of a required update mask, each one of `allowed`; `"*"` alone
/// names them all. Bad masks are reported on `update_mask` and yield none.
pub fn update_mask_paths(
    violations: &mut Violations,
    mask: Option<prost_types::FieldMask>,
    allowed: &'static [&'static str],
) -> Vec<&'static str> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "is required and must name at least one field",
        );
        return Vec::new();
    }
    if paths.iter().any(|path| path == "*") {
        if paths.len() > 1 {
            violations.add("update_mask", "\"*\" must be the only path");
            return Vec::new();
        }
        return allowed.to_vec();
    }
    let mut named = Vec::new();
    let mut unknown = Vec::new();
    for path in &paths {
        match allowed.iter().find(|allowed| *allowed == path) {
            Some(known) if !named.contains(known) => named.push(*known),
            Some(_) => {}
            None => unknown.push(path.as_str()),
        }
    }
    if !unknown.is_empty() {
        violations.add(
            "update_mask",
            format!(
                "unknown paths {unknown:?}; the mutable fields are: {}",
                allowed.join(", ")
            ),
        );
        return Vec::new();
    }
    named
}

/// An optional protobuf Timestamp in RFC 3339's range (0001-01-01 to
/// 9999-12-31, nanos 0..1e9).
pub fn timestamp(
    violations: &mut Violations,
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Option<crate::time::UnixMicros> {
    let value = value?;
    let seconds = -62_135_596_800..=253_402_300_799;
    if seconds.contains(&value.seconds) && (0..1_000_000_000).contains(&value.nanos) {
        Some(crate::time::UnixMicros::from_timestamp(&value))
    } else {
        violations.add(field, "must be a time between 0001-01-01 and 9999-12-31");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let cases = [
            ("gate_failure", true),
            ("a", true),
            ("a1_b2", true),
            ("", false),
            ("1abc", false),
            ("_x", false),
            ("Gate", false),
            ("gate-failure", false),
            ("gate failure", false),
            (&"a".repeat(64), true),
            (&"a".repeat(65), false),
        ];
        for (value, ok) in cases {
            assert_eq!(is_slug(value), ok, "{value:?}");
        }
    }

    #[test]
    fn text_fields() {
        let mut v = Violations::new();
        assert_eq!(short_text(&mut v, "f", String::new()), None);
        assert_eq!(short_text(&mut v, "f", "ok".into()), Some("ok".into()));
        assert!(v.is_empty());
        assert_eq!(short_text(&mut v, "f", "a\nb".into()), None);
        assert_eq!(
            short_text(&mut v, "g", "x".repeat(MAX_SHORT_TEXT + 1)),
            None
        );
        assert_eq!(
            long_text(&mut v, "h", "a\nb\tc".into()),
            Some("a\nb\tc".into())
        );
        assert_eq!(long_text(&mut v, "i", "nul\0".into()), None);
        let fields: Vec<_> = v.as_slice().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["f", "g", "i"]);
    }

    #[test]
    fn update_masks() {
        const ALLOWED: &[&str] = &["a", "b"];
        let mask = |paths: &[&str]| {
            Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            })
        };
        let cases: [(Option<prost_types::FieldMask>, Option<Vec<&str>>); 7] = [
            (None, None),
            (mask(&[]), None),
            (mask(&["a"]), Some(vec!["a"])),
            (mask(&["b", "a", "b"]), Some(vec!["b", "a"])),
            (mask(&["*"]), Some(vec!["a", "b"])),
            (mask(&["*", "a"]), None),
            (mask(&["a", "c"]), None),
        ];
        for (given, expected) in cases {
            let mut v = Violations::new();
            let paths = update_mask_paths(&mut v, given.clone(), ALLOWED);
            match expected {
                Some(expected) => assert_eq!((paths, v.is_empty()), (expected, true), "{given:?}"),
                None => assert_eq!(
                    (paths.is_empty(), v.as_slice()[0].field.as_str()),
                    (true, "update_mask")
                ),
            }
        }
    }

    #[test]
    fn durations() {
        let d = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        let mut v = Violations::new();
        assert_eq!(duration(&mut v, "d", None), None);
        assert_eq!(
            duration(&mut v, "d", d(90, 5)),
            Some(std::time::Duration::new(90, 5))
        );
        assert!(v.is_empty());
        for bad in [
            d(-1, 0),
            d(0, -1),
            d(5, -3),
            d(1, 1_000_000_000),
            d(MAX_DURATION_SECONDS + 1, 0),
            d(i64::MIN, 0),
        ] {
            assert_eq!(duration(&mut v, "d", bad), None, "{bad:?}");
        }
        assert_eq!(v.as_slice().len(), 6);
    }

    #[test]
    fn request_ids() {
        let mut v = Violations::new();
        assert_eq!(request_id(&mut v, "r", String::new()), None);
        assert_eq!(
            request_id(&mut v, "r", "gh:1234-abcd".into()),
            Some("gh:1234-abcd".into())
        );
        assert!(v.is_empty());
        assert_eq!(request_id(&mut v, "r", "has space".into()), None);
        assert_eq!(request_id(&mut v, "r", "é".into()), None);
        assert_eq!(request_id(&mut v, "r", "x".repeat(129)), None);
        assert_eq!(v.as_slice().len(), 3);
    }
}
