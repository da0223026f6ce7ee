//! The built front end (`dashboard/dist`, committed and rebuilt by
//! `scripts/build-dashboard`), embedded in the binary: `GET /` is the page,
//! `/assets/*` its script and styles. Each answer carries its content type,
//! an ETag (a digest of the bytes, so a browser revalidates cheaply after an
//! upgrade) and a Content-Security-Policy that allows this origin only.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// Scripts, styles and calls from this origin only; no framing.
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    etag: LazyLock<HeaderValue>,
}

macro_rules! asset {
    ($content_type:expr, $path:literal) => {{
        const BYTES: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dashboard/dist/",
            $path
        ));
        Asset {
            content_type: $content_type,
            bytes: BYTES,
            etag: LazyLock::new(|| etag(BYTES)),
        }
    }};
}

/// A strong validator: the first 128 bits of the bytes' SHA-256, quoted.
fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .expect("hex digits in quotes are a valid header value")
}

static INDEX: Asset = asset!("text/html; charset=utf-8", "index.html");
static SCRIPT: Asset = asset!("text/javascript; charset=utf-8", "assets/app.js");
static STYLES: Asset = asset!("text/css; charset=utf-8", "assets/app.css");

pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route(
            "/assets/app.js",
            get(|headers: HeaderMap| async move { serve(&SCRIPT, &headers) }),
        )
        .route(
            "/assets/app.css",
            get(|headers: HeaderMap| async move { serve(&STYLES, &headers) }),
        )
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = &*asset.etag;
    let headers = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|value| value == etag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}
