//! A forge repository's identity, "owner/name", in one canonical spelling.
//!
//! GitHub and Gitea compare owner and repository names without regard to
//! case (`Codertocat/Hello-World` and `codertocat/hello-world` are one
//! repository), and origin URLs spell the same path with a host, a scheme or
//! a `.git` suffix. Every lookup by repository (a project's origin, a task's
//! repo, a CI status, a webhook's repository, a pull request's head
//! repository) goes through [`RepoId`], so two spellings of one repository
//! always meet: its text is lowercase ASCII, without surrounding slashes or a
//! `.git` suffix.

use std::fmt;

/// A repository "owner/name", lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(String);

impl RepoId {
    /// A forge's "owner/name" (any case; surrounding slashes and a `.git`
    /// suffix are dropped). `None` when an owner or a name is missing.
    pub fn parse(full_name: &str) -> Option<Self> {
        let path = full_name.trim().trim_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.split_once('/')?;
        let usable = |part: &str| !part.is_empty() && !part.chars().any(char::is_whitespace);
        (usable(owner) && usable(name)).then(|| Self(path.to_ascii_lowercase()))
    }

    /// The repository of an origin URL (https, ssh or scp-like, with or
    /// without `.git`): its last two path segments.
    pub fn from_origin(origin_url: &str) -> Option<Self> {
        let path = origin_url.trim().trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let path =
            path.rsplit_once(':').map_or(
                path,
                |(head, tail)| if head.contains("//") { path } else { tail },
            );
        let mut parts = path.rsplit('/');
        let (Some(name), Some(owner)) = (parts.next(), parts.next()) else {
            return None;
        };
        Self::parse(&format!("{owner}/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical spelling of `full_name`, or `full_name` unchanged when
    /// it is no "owner/name" (callers that store free text keep it).
    pub fn canonical(full_name: &str) -> String {
        Self::parse(full_name).map_or_else(|| full_name.to_string(), |id| id.0)
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::RepoId;

    #[test]
    fn spellings_of_one_repository_meet() {
        let cases = [
            ("Codertocat/Hello-World", Some("codertocat/hello-world")),
            ("/acme/shop/", Some("acme/shop")),
            ("acme/shop.git", Some("acme/shop")),
            ("acme", None),
            ("/shop", None),
            ("acme/ shop", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                RepoId::parse(name).as_ref().map(RepoId::as_str),
                expected,
                "{name}"
            );
        }
        let origins = [
            (
                "https://github.com/Codertocat/Hello-World.git",
                Some("codertocat/hello-world"),
            ),
            ("https://github.com/acme/mer/", Some("acme/mer")),
            ("git@github.com:ACME/mer.git", Some("acme/mer")),
            ("ssh://git@gitea.local:2222/acme/mer.git", Some("acme/mer")),
            ("mer", None),
        ];
        for (origin, expected) in origins {
            assert_eq!(
                RepoId::from_origin(origin).as_ref().map(RepoId::as_str),
                expected,
                "{origin}"
            );
        }
        assert_eq!(RepoId::canonical("Acme/Shop"), "acme/shop");
        assert_eq!(RepoId::canonical("not a repo"), "not a repo");
    }
}
