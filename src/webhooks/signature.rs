//! Signature verification over the raw body, before anything parses it:
//! HMAC-SHA256 with the source's secret, compared in constant time
//! (`Mac::verify_slice`). GitHub sends `X-Hub-Signature-256: sha256=<hex>`,
//! Gitea `X-Gitea-Signature: <hex>`, Plane `X-Plane-Signature: <hex>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Source;

/// Why a signature was not accepted. Every variant answers 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is not a hex HMAC-SHA256 signature")]
    Malformed(&'static str),
    #[error("the {0} signature does not match the body")]
    Mismatch(&'static str),
}

impl Source {
    /// The header carrying the signature.
    pub fn signature_header(self) -> &'static str {
        match self {
            Self::GitHub => "x-hub-signature-256",
            Self::Gitea => "x-gitea-signature",
            Self::Plane => "x-plane-signature",
        }
    }
}

/// Checks `header` (the signature header's value, if any) against `body`
/// signed with `secret`.
pub fn verify(
    source: Source,
    secret: &[u8],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let name = source.signature_header();
    let value = header.ok_or(SignatureError::Missing(name))?;
    let hex_digest = match source {
        Source::GitHub => value
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed(name))?,
        Source::Gitea | Source::Plane => value,
    };
    let digest =
        hex::decode(hex_digest.trim_ascii()).map_err(|_| SignatureError::Malformed(name))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch(name))
}

/// The hex signature of `body` as `source` would send it (for tests and the
/// README's curl examples).
pub fn sign(source: Source, secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = hex::encode(mac.finalize().into_bytes());
    match source {
        Source::GitHub => format!("sha256={digest}"),
        Source::Gitea | Source::Plane => digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector (docs: "Validating webhook deliveries").
    const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GITHUB_PAYLOAD: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_published_test_vector() {
        assert_eq!(
            verify(
                Source::GitHub,
                GITHUB_SECRET,
                Some(GITHUB_SIGNATURE.as_bytes()),
                GITHUB_PAYLOAD
            ),
            Ok(())
        );
        assert_eq!(
            sign(Source::GitHub, GITHUB_SECRET, GITHUB_PAYLOAD),
            GITHUB_SIGNATURE
        );
    }

    #[test]
    fn what_is_refused() {
        let body = b"{\"action\":\"completed\"}";
        let good = |source| sign(source, b"secret", body);
        let github_hex = good(Source::GitHub)
            .trim_start_matches("sha256=")
            .to_string();
        // (source, header, secret, body, expected)
        type Case<'a> = (
            Source,
            Option<String>,
            &'a [u8],
            &'a [u8],
            Result<(), SignatureError>,
        );
        let cases: Vec<Case> = vec![
            (
                Source::GitHub,
                Some(good(Source::GitHub)),
                b"secret",
                body,
                Ok(()),
            ),
            (
                Source::Gitea,
                Some(good(Source::Gitea)),
                b"secret",
                body,
                Ok(()),
            ),
            (
                Source::Plane,
                Some(good(Source::Plane)),
                b"secret",
                body,
                Ok(()),
            ),
            (
                Source::Plane,
                Some(good(Source::Plane).to_uppercase()),
                b"secret",
                body,
                Ok(()),
            ),
            (
                Source::GitHub,
                None,
                b"secret",
                body,
                Err(SignatureError::Missing("x-hub-signature-256")),
            ),
            (
                Source::Gitea,
                None,
                b"secret",
                body,
                Err(SignatureError::Missing("x-gitea-signature")),
            ),
            (
                Source::GitHub,
                Some(github_hex.clone()),
                b"secret",
                body,
                Err(SignatureError::Malformed("x-hub-signature-256")),
            ),
            (
                Source::GitHub,
                Some("sha256=zz".into()),
                b"secret",
                body,
                Err(SignatureError::Malformed("x-hub-signature-256")),
            ),
            (
                Source::Gitea,
                Some(format!("sha256={github_hex}")),
                b"secret",
                body,
                Err(SignatureError::Malformed("x-gitea-signature")),
            ),
            (
                Source::GitHub,
                Some(good(Source::GitHub)),
                b"other secret",
                body,
                Err(SignatureError::Mismatch("x-hub-signature-256")),
            ),
            (
                Source::Plane,
                Some(good(Source::Plane)),
                b"secret",
                b"{\"action\":\"completed \"}",
                Err(SignatureError::Mismatch("x-plane-signature")),
            ),
            (
                Source::Gitea,
                Some(good(Source::Gitea)[..32].to_string()),
                b"secret",
                body,
                Err(SignatureError::Mismatch("x-gitea-signature")),
            ),
        ];
        for (i, (source, header, secret, body, expected)) in cases.into_iter().enumerate() {
            let got = verify(source, secret, header.as_deref().map(str::as_bytes), body);
            assert_eq!(got, expected, "case {i}");
        }
    }
}
