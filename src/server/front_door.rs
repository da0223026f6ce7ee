//! The front door: a tower layer in front of every service that refuses new
//! calls while draining, and authenticates and authorizes each call.
//! Refusals carry the same ErrorInfo as any other bosun error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tower::{Layer, Service};

use crate::auth::{Authenticator, Refusal};
use crate::error::{CommonError, to_status};

/// Shared by the layer and the server's shutdown sequence.
pub struct FrontDoorState {
    auth: Authenticator,
    draining: AtomicBool,
}

impl FrontDoorState {
    pub fn new(auth: Authenticator) -> Arc<Self> {
        Arc::new(Self {
            auth,
            draining: AtomicBool::new(false),
        })
    }

    /// From now on new calls (but health checks) are refused UNAVAILABLE.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        let path = request.uri().path();
        let service = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        if self.draining.load(Ordering::SeqCst) && service != "grpc.health.v1.Health" {
            return Err(to_status(CommonError::ShuttingDown));
        }
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let caller = match self.auth.check(path, authorization) {
            Ok(caller) => caller,
            Err(Refusal::Unauthenticated) => return Err(to_status(CommonError::Unauthenticated)),
            Err(Refusal::PermissionDenied(role)) => {
                return Err(to_status(CommonError::PermissionDenied {
                    role: role.as_str(),
                    method: path.to_string(),
                }));
            }
        };
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct FrontDoorLayer {
    state: Arc<FrontDoorState>,
}

impl FrontDoorLayer {
    pub fn new(state: Arc<FrontDoorState>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for FrontDoorLayer {
    type Service = FrontDoor<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrontDoor {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FrontDoor<S> {
    inner: S,
    state: Arc<FrontDoorState>,
}

impl<S, B> Service<http::Request<B>> for FrontDoor<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.state.admit(&mut request) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
