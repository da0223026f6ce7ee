//! The live web dashboard, served by `bosun serve` on `http_addr`: the
//! built front end ([`assets`], embedded in the binary) at `/`, and bosun's
//! gRPC API as gRPC-Web (`tonic-web`) on the same origin, so the browser
//! needs no CORS and no proxy. A gRPC-Web call is translated in-process and
//! goes through the very stack the gRPC listener serves (metrics -> front
//! door with the same bearer tokens -> admission -> the services); only the
//! framing differs. Watch is server-streaming, which gRPC-Web carries over
//! HTTP/1.1 as a chunked response.

mod assets;

use std::convert::Infallible;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

/// The server's whole service stack, as the HTTP listener calls it.
pub type Stack = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The dashboard's routes: the pages and, for each of `services`
/// (`bosun.v1.Sessions`, ...), `POST /<service>/<method>` as gRPC-Web.
pub fn router(stack: Stack, services: &[&str]) -> Router {
    let grpc_web = tonic_web::GrpcWebLayer::new().layer(stack);
    let mut router = assets::router();
    for service in services {
        let grpc_web = grpc_web.clone();
        router = router.route_service(
            &format!("/{service}/{{method}}"),
            tower::service_fn(move |request: Request| {
                let grpc_web = grpc_web.clone();
                async move {
                    if !is_grpc_web(&request) {
                        return Ok::<_, Infallible>(not_grpc_web());
                    }
                    grpc_web
                        .oneshot(request)
                        .await
                        .map(IntoResponse::into_response)
                }
            }),
        );
    }
    router
}

/// gRPC-Web only: plain gRPC belongs on `grpc_addr`.
fn is_grpc_web(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc-web"))
}

fn not_grpc_web() -> Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "this address answers gRPC-Web (application/grpc-web+proto); plain gRPC is served on grpc_addr\n",
    )
        .into_response()
}
