//! AIP-158 pagination shared by every List method: `page_size` (0 = default,
//! above the maximum = clamped, negative = INVALID_ARGUMENT) and an opaque
//! `page_token` that carries a keyset cursor and a fingerprint of the request's
//! filters, so a token used with other filters is refused instead of silently
//! returning a wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Violations;

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items to return.
    pub size: u32,
    /// The keyset cursor of the last item of the previous page.
    pub after: Option<i64>,
}

/// A short, stable digest of a request's filters.
pub fn fingerprint(filters: &impl Serialize) -> String {
    let encoded = serde_json::to_vec(filters).unwrap_or_default();
    let digest = Sha256::digest(&encoded);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates `page_size` and `page_token` against the request's filter
/// fingerprint.
pub fn page_request(
    page_size: i32,
    page_token: &str,
    filters_fingerprint: &str,
) -> Result<PageRequest, Violations> {
    let (size, after) = text_page_request(page_size, page_token, filters_fingerprint)?;
    let after = match after.map(|cursor| cursor.parse::<i64>()) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(_)) => {
            return Err(Violations::one(
                "page_token",
                "is not a token this server issued",
            ));
        }
    };
    Ok(PageRequest { size, after })
}

/// Like [`page_request`], for listings whose keyset cursor is text (an id).
pub fn text_page_request(
    page_size: i32,
    page_token: &str,
    filters_fingerprint: &str,
) -> Result<(u32, Option<String>), Violations> {
    let mut violations = Violations::new();
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
        n => (n as u32).min(MAX_PAGE_SIZE),
    };
    let after = if page_token.is_empty() {
        None
    } else {
        match decode_token(page_token) {
            Some((cursor, fingerprint)) if fingerprint == filters_fingerprint => Some(cursor),
            Some(_) => {
                violations.add(
                    "page_token",
                    "was issued for a request with other filters; start again without a token",
                );
                None
            }
            None => {
                violations.add("page_token", "is not a token this server issued");
                None
            }
        }
    };
    violations.finish((size, after))
}

/// The keyset cursor of a listing that may also be ordered by a time: the
/// last row's sort time (for a time order) and its id. Written "id" or
/// "time.id", so tokens of the default order keep their old shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderedCursor {
    pub time: Option<i64>,
    pub id: i64,
}

impl std::fmt::Display for OrderedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.time {
            Some(time) => write!(f, "{time}.{}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// A validated page request of a listing with [`OrderedCursor`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderedPageRequest {
    pub size: u32,
    pub after: Option<OrderedCursor>,
}

/// Like [`page_request`], for listings that may be ordered by a time.
/// `by_time` says whether the request asks for the time order; the
/// fingerprint covers the order, so a cursor of the other order never
/// arrives here.
pub fn ordered_page_request(
    page_size: i32,
    page_token: &str,
    filters_fingerprint: &str,
    by_time: bool,
) -> Result<OrderedPageRequest, Violations> {
    let (size, after) = text_page_request(page_size, page_token, filters_fingerprint)?;
    let after = match after {
        None => None,
        Some(text) => {
            let parsed = match text.split_once('.') {
                Some((time, id)) if by_time => {
                    time.parse()
                        .ok()
                        .zip(id.parse().ok())
                        .map(|(time, id)| OrderedCursor {
                            time: Some(time),
                            id,
                        })
                }
                None if !by_time => text.parse().ok().map(|id| OrderedCursor { time: None, id }),
                _ => None,
            };
            let Some(cursor) = parsed else {
                return Err(Violations::one(
                    "page_token",
                    "is not a token this server issued",
                ));
            };
            Some(cursor)
        }
    };
    Ok(OrderedPageRequest { size, after })
}

/// The token that continues after `cursor`.
pub fn next_page_token(cursor: impl std::fmt::Display, filters_fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{filters_fingerprint}:{cursor}"))
}

/// Cuts a listing read with one row more than `size` (to learn whether
/// another page follows) to `size`, and returns the cursor of its last row
/// when one does.
pub fn split_page<T, C>(
    mut items: Vec<T>,
    size: u32,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    if items.len() > size as usize {
        items.truncate(size as usize);
        let next = items.last().map(cursor);
        (items, next)
    } else {
        (items, None)
    }
}

fn decode_token(token: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, ':');
    if parts.next()? != "v1" {
        return None;
    }
    let fingerprint = parts.next()?.to_string();
    let cursor = parts.next()?.to_string();
    (!cursor.is_empty()).then_some((cursor, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        let cases = [
            (0, Some(DEFAULT_PAGE_SIZE)),
            (1, Some(1)),
            (1000, Some(1000)),
            (1001, Some(MAX_PAGE_SIZE)),
            (i32::MAX, Some(MAX_PAGE_SIZE)),
            (-1, None),
            (i32::MIN, None),
        ];
        for (requested, expected) in cases {
            let got = page_request(requested, "", "f").ok().map(|p| p.size);
            assert_eq!(got, expected, "page_size {requested}");
        }
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_filters() {
        let token = next_page_token(42, "abc");
        assert_eq!(page_request(10, &token, "abc").unwrap().after, Some(42));
        let err = page_request(10, &token, "other").unwrap_err();
        assert_eq!(err.as_slice()[0].field, "page_token");
        for bad in [
            "garbage!",
            "djE6eDphYmM",
            &URL_SAFE_NO_PAD.encode("v2:1:abc"),
        ] {
            assert!(page_request(10, bad, "abc").is_err(), "{bad}");
        }
    }

    #[test]
    fn text_cursors_round_trip() {
        let token = next_page_token("mer-2", "abc");
        assert_eq!(
            text_page_request(5, &token, "abc").unwrap(),
            (5, Some("mer-2".to_string()))
        );
        assert!(text_page_request(5, &token, "other").is_err());
    }

    #[test]
    fn ordered_cursors_round_trip() {
        let by_id = OrderedCursor { time: None, id: 7 };
        let by_time = OrderedCursor {
            time: Some(1_700_000_000_000_000),
            id: 7,
        };
        for (cursor, by_time_order) in [(by_id, false), (by_time, true)] {
            let token = next_page_token(cursor, "abc");
            let page = ordered_page_request(5, &token, "abc", by_time_order).unwrap();
            assert_eq!(page.after, Some(cursor));
        }
        let old_shape = next_page_token(42, "abc");
        assert_eq!(
            ordered_page_request(5, &old_shape, "abc", false)
                .unwrap()
                .after,
            Some(OrderedCursor { time: None, id: 42 })
        );
        for (cursor, by_time_order) in [(by_id, true), (by_time, false)] {
            let token = next_page_token(cursor, "abc");
            assert!(ordered_page_request(5, &token, "abc", by_time_order).is_err());
        }
    }

    #[test]
    fn fingerprints_differ_by_filter() {
        assert_eq!(fingerprint(&("a", 1)), fingerprint(&("a", 1)));
        assert_ne!(fingerprint(&("a", 1)), fingerprint(&("a", 2)));
    }
}
