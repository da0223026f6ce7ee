//! Tables for matching origin URLs with forge repositories.

use super::origin_matches;

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
