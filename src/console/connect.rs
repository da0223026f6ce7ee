//! How the console reaches bosun: one gRPC channel to `--addr` (TLS for an
//! https:// address, with an optional private CA and client certificate),
//! and the bearer token on every call.

use std::path::Path;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use super::ClientArgs;
use super::exit::ConsoleError;
use crate::pb::events_client::EventsClient;
use crate::pb::lessons_client::LessonsClient;
use crate::pb::processors_client::ProcessorsClient;
use crate::pb::reconciler_client::ReconcilerClient;
use crate::pb::sessions_client::SessionsClient;
use crate::pb::tasks_client::TasksClient;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds `authorization: Bearer <token>` to each call (nothing without a
/// token).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Conn = InterceptedService<Channel, Bearer>;

/// The connected clients of every bosun service.
#[derive(Clone)]
pub struct Api {
    channel: Channel,
    bearer: Bearer,
}

impl Api {
    /// Connects to `--addr` now, so an unreachable bosun is reported once,
    /// up front.
    pub async fn connect(args: &ClientArgs) -> Result<Self, ConsoleError> {
        let (endpoint, bearer) = endpoint(args)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|err| unreachable(&args.addr, &err))?;
        Ok(Self { channel, bearer })
    }

    /// Connects on the first call and reconnects as needed (for `events
    /// watch`, which outlives restarts of bosun).
    pub fn lazy(args: &ClientArgs) -> Result<Self, ConsoleError> {
        let (endpoint, bearer) = endpoint(args)?;
        Ok(Self {
            channel: endpoint.connect_lazy(),
            bearer,
        })
    }

    pub fn sessions(&self) -> SessionsClient<Conn> {
        SessionsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn tasks(&self) -> TasksClient<Conn> {
        TasksClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn lessons(&self) -> LessonsClient<Conn> {
        LessonsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn events(&self) -> EventsClient<Conn> {
        EventsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn processors(&self) -> ProcessorsClient<Conn> {
        ProcessorsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn reconciler(&self) -> ReconcilerClient<Conn> {
        ReconcilerClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

fn endpoint(args: &ClientArgs) -> Result<(Endpoint, Bearer), ConsoleError> {
    let addr = &args.addr;
    let usage = |message: String| ConsoleError::Usage(message);
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|err| usage(format!("--addr {addr:?} is not a URL: {err}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    let wants_tls = args.ca_file.is_some() || args.client_cert.is_some();
    if addr.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca_file) = &args.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca_file, "--ca-file")?));
        }
        match (&args.client_cert, &args.client_key) {
            (Some(cert), Some(key)) => {
                let cert = read(cert, "--client-cert")?;
                let key = read(key, "--client-key")?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            _ => return Err(usage("--client-cert and --client-key go together".into())),
        }
        crate::server::install_ring_provider();
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|err| usage(format!("cannot set up TLS for {addr}: {err}")))?;
    } else if wants_tls {
        return Err(usage(format!(
            "--ca-file and --client-cert need an https:// --addr, not {addr:?}"
        )));
    }
    let bearer = match args.token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => Some(
            MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| usage("the token is not valid in a header".into()))?,
        ),
        None => None,
    };
    Ok((endpoint, Bearer(bearer)))
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, ConsoleError> {
    std::fs::read(path)
        .map_err(|err| ConsoleError::Usage(format!("{flag} {}: {err}", path.display())))
}

fn unreachable(addr: &str, err: &tonic::transport::Error) -> ConsoleError {
    use std::error::Error;
    let mut detail = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Layers often repeat their cause's text; keep each part once.
        let cause = cause.to_string();
        if !detail.contains(&cause) {
            detail = format!("{detail}: {cause}");
        }
        source = source.and_then(std::error::Error::source);
    }
    ConsoleError::Unreachable {
        addr: addr.to_string(),
        detail,
    }
}
