//! Tables for matching origin URLs with forge repositories.

use super::{is_stale_report, origin_matches};
use crate::time::UnixMicros;

#[test]
fn origins_match_forge_repositories() {
    let cases = [
        ("https://github.com/acme/mer.git", "acme/mer", true),
        ("https://github.com/acme/mer", "ACME/Mer", true),
        ("git@github.com:acme/mer.git", "acme/mer", true),
        ("ssh://git@gitea.local:2222/acme/mer.git", "acme/mer", true),
        ("https://github.com/acme/mer/", "acme/mer", true),
        ("https://github.com/acme/mer-two.git", "acme/mer", false),
        ("https://github.com/other/mer.git", "acme/mer", false),
        ("mer", "acme/mer", false),
    ];
    for (origin, repo, expected) in cases {
        assert_eq!(origin_matches(origin, repo), expected, "{origin} vs {repo}");
    }
}

#[test]
fn older_reports_are_stale() {
    let (early, late) = (Some(UnixMicros(1)), Some(UnixMicros(2)));
    let cases = [
        (None, None, false),
        (None, early, false),
        (late, None, false),
        (late, early, true),
        (late, late, false),
        (early, late, false),
    ];
    for (applied, incoming, stale) in cases {
        assert_eq!(
            is_stale_report(applied, incoming),
            stale,
            "{applied:?} {incoming:?}"
        );
    }
}
