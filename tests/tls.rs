//! `[tls]` through the real server, with certificates generated per test
//! (rcgen): gRPC and HTTPS with a private CA, plaintext and untrusting
//! clients refused, the embedded and the standalone shim reaching bosun
//! over TLS, and mTLS.

mod common;

use std::path::{Path, PathBuf};

use bosun::config::Config;
use common::TestServer;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A private CA with a server certificate (localhost, 127.0.0.1) and a
/// client certificate, as PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bosun test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let issue = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = issue(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) =
            issue(vec!["runner".into()], ExtendedKeyUsagePurpose::ClientAuth);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key).unwrap();
        Self {
            dir,
            ca_pem: ca.pem(),
            client_cert_pem,
            client_key_pem,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets `[tls]` to the server certificate (and mTLS when `mutual`).
    fn serve(&self, config: &mut Config, mutual: bool) {
        config.tls.cert_file = self.path("server.pem");
        config.tls.key_file = self.path("server.key");
        if mutual {
            config.tls.client_ca_file = self.path("ca.pem");
        }
    }

    fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost")
    }

    fn https(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

/// A health check over a fresh channel to `url` with `tls`.
async fn health_check(url: String, tls: Option<ClientTlsConfig>) -> Result<i32, String> {
    let mut endpoint = Channel::from_shared(url).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = endpoint.connect().await.map_err(|err| format!("{err:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|answer| answer.into_inner().status)
        .map_err(|status| format!("{status:?}"))
}

async fn get(client: &reqwest::Client, url: String) -> Result<(u16, String), reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn grpc_and_https_serve_the_configured_certificate() {
    let pki = Pki::new();
    let server = TestServer::start_with_tls(|config| pki.serve(config, false), pki.client()).await;

    // The harness's channel speaks TLS trusting the CA: calls work.
    let recorded = server
        .record(bosun::pb::Lesson {
            lesson_type: "gate_failure".into(),
            ..Default::default()
        })
        .await;
    assert!(recorded.lesson.is_some());

    let plaintext = health_check(format!("http://{}", server.addr), None).await;
    assert!(
        plaintext.is_err(),
        "a plaintext client is refused: {plaintext:?}"
    );
    let untrusting = health_check(
        format!("https://{}", server.addr),
        Some(ClientTlsConfig::new().domain_name("localhost")),
    )
    .await;
    assert!(
        untrusting.is_err(),
        "a client without the CA: {untrusting:?}"
    );

    let https = pki.https();
    let healthz = get(
        &https,
        format!("https://localhost:{}/healthz", server.http_addr.port()),
    )
    .await
    .unwrap();
    assert_eq!(healthz, (200, "ok\n".into()));
    // The embedded shim reaches bosun in-process, TLS or not.
    let readyz = get(
        &https,
        format!("https://127.0.0.1:{}/readyz", server.http_addr.port()),
    )
    .await
    .unwrap();
    assert_eq!(readyz, (200, "ready\n".into()));
    let plain_http = get(
        &reqwest::Client::new(),
        format!("http://{}/healthz", server.http_addr),
    )
    .await;
    assert!(plain_http.is_err(), "plain HTTP is refused: {plain_http:?}");
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let identity = Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem);
    let server = TestServer::start_with_tls(
        |config| pki.serve(config, true),
        pki.client().identity(identity),
    )
    .await;
    let with_certificate = server
        .health()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(with_certificate.is_ok(), "{with_certificate:?}");
    let without = health_check(format!("https://{}", server.addr), Some(pki.client())).await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    // Webhook senders have no certificate: HTTPS does not ask for one.
    let healthz = get(
        &pki.https(),
        format!("https://localhost:{}/healthz", server.http_addr.port()),
    )
    .await
    .unwrap();
    assert_eq!(healthz.0, 200);
}

/// `bosun shim` alone, serving on a free port, calling `upstream`.
async fn standalone_readyz(upstream: String, ca_file: Option<&Path>, data_dir: &Path) -> u16 {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    if let Some(ca_file) = ca_file {
        config.webhooks.upstream_ca_file = ca_file.to_path_buf();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shim = tokio::spawn(async move {
        bosun::webhooks::serve_standalone(config, &upstream, listener, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let (status, _) = get(&reqwest::Client::new(), format!("http://{addr}/readyz"))
        .await
        .unwrap();
    stop_tx.send(()).unwrap();
    shim.await.unwrap().unwrap();
    status
}

#[tokio::test]
async fn the_standalone_shim_reaches_a_tls_bosun_trusting_its_ca() {
    let pki = Pki::new();
    let server = TestServer::start_with_tls(|config| pki.serve(config, false), pki.client()).await;
    let upstream = format!("https://127.0.0.1:{}", server.addr.port());
    let data = tempfile::tempdir().unwrap();
    let trusting = standalone_readyz(
        upstream.clone(),
        Some(&pki.path("ca.pem")),
        &data.path().join("a"),
    )
    .await;
    assert_eq!(trusting, 200, "ready: bosun answered over TLS");
    let untrusting = standalone_readyz(upstream, None, &data.path().join("b")).await;
    assert_eq!(untrusting, 503, "a private CA not given is not trusted");
}

/// The operator console over mutual TLS: the CA and the client certificate
/// from the environment (as an operator's shell sets them), or refused
/// without the certificate.
#[tokio::test]
async fn the_console_speaks_mutual_tls_with_the_ca_and_client_certificate() {
    let pki = Pki::new();
    std::fs::write(pki.path("client.pem"), &pki.client_cert_pem).unwrap();
    std::fs::write(pki.path("client.key"), &pki.client_key_pem).unwrap();
    let identity = Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem);
    let server = TestServer::start_with_tls(
        |config| pki.serve(config, true),
        pki.client().identity(identity),
    )
    .await;
    let addr = format!("https://localhost:{}", server.addr.port());
    let console = |with_certificate: bool| {
        let mut command = tokio::process::Command::from(common::process::bosun_command());
        command
            .args(["projects", "list", "-o", "json"])
            .env("BOSUN_ADDR", &addr)
            .env("BOSUN_CA_FILE", pki.path("ca.pem"));
        if with_certificate {
            command
                .env("BOSUN_CLIENT_CERT", pki.path("client.pem"))
                .env("BOSUN_CLIENT_KEY", pki.path("client.key"));
        }
        command.output()
    };
    let trusted = console(true).await.unwrap();
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert_eq!(answer["projects"], serde_json::json!([]));
    let refused = console(false).await.unwrap();
    assert!(!refused.status.success(), "no client certificate");
    let line = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(line.lines().count(), 1, "{line}");
}
