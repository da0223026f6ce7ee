//! The `[tls]` configuration section and the certificates it names. With
//! `cert_file` and `key_file` set, gRPC (tonic's rustls) and the HTTP
//! listener (axum-server's rustls) both serve TLS with that certificate;
//! with `client_ca_file` too, gRPC callers must present a certificate that
//! CA issued (the HTTP listener never asks: webhook senders have none).
//! Missing files stop bosun at validation (exit 2); unreadable PEM stops it
//! at start with the file named. rustls uses the ring provider only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first; empty: both listeners are
    /// plaintext.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, every gRPC caller must present a
    /// client certificate issued by one of them (mTLS).
    pub client_ca_file: PathBuf,
}

/// Both listeners' TLS settings, loaded.
pub struct ServerTls {
    pub grpc: ServerTlsConfig,
    pub http: RustlsConfig,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }

    /// One line naming the first bad setting: files are named in pairs and
    /// must exist.
    pub fn validate(&self) -> Result<(), String> {
        let Self {
            cert_file,
            key_file,
            client_ca_file,
        } = self;
        let set = |path: &Path| !path.as_os_str().is_empty();
        if set(cert_file) != set(key_file) {
            return Err("tls.cert_file and tls.key_file must be set together".into());
        }
        if set(client_ca_file) && !set(cert_file) {
            return Err("tls.client_ca_file needs tls.cert_file and tls.key_file".into());
        }
        for (key, path) in [
            ("cert_file", cert_file),
            ("key_file", key_file),
            ("client_ca_file", client_ca_file),
        ] {
            if set(path) && !path.is_file() {
                return Err(format!("tls.{key} {} does not exist", path.display()));
            }
        }
        Ok(())
    }

    /// Reads and checks the files; `None` when TLS is off.
    pub fn load(&self) -> anyhow::Result<Option<ServerTls>> {
        if !self.enabled() {
            return Ok(None);
        }
        install_ring_provider();
        let cert_pem = read(&self.cert_file, "cert_file")?;
        let key_pem = read(&self.key_file, "key_file")?;
        let chain = certificates(&cert_pem, &self.cert_file, "cert_file")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
            format!(
                "tls.key_file {}: no PEM private key in it",
                self.key_file.display()
            )
        })?;
        let mut http = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .with_context(|| {
                format!(
                    "tls.key_file {} does not match tls.cert_file {}",
                    self.key_file.display(),
                    self.cert_file.display()
                )
            })?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut grpc = ServerTlsConfig::new().identity(Identity::from_pem(&cert_pem, &key_pem));
        if !self.client_ca_file.as_os_str().is_empty() {
            let ca_pem = read(&self.client_ca_file, "client_ca_file")?;
            certificates(&ca_pem, &self.client_ca_file, "client_ca_file")?;
            grpc = grpc.client_ca_root(Certificate::from_pem(ca_pem));
        }
        Ok(Some(ServerTls {
            grpc,
            http: RustlsConfig::from_config(Arc::new(http)),
        }))
    }
}

/// Makes ring the process's rustls provider, so configs built without an
/// explicit provider (tonic's) agree with everything else. Idempotent.
pub fn install_ring_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

fn read(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read tls.{key} {}", path.display()))
}

fn certificates(
    pem: &[u8],
    path: &Path,
    key: &str,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.{key} {}: unreadable PEM", path.display()))?;
    if chain.is_empty() {
        bail!("tls.{key} {}: no PEM certificate in it", path.display());
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_in_pairs_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cert.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        let cases = [
            (file.clone(), PathBuf::new(), PathBuf::new(), "set together"),
            (
                PathBuf::new(),
                PathBuf::new(),
                file.clone(),
                "needs tls.cert_file",
            ),
            (
                missing.clone(),
                file.clone(),
                PathBuf::new(),
                "does not exist",
            ),
            (file.clone(), file.clone(), missing, "client_ca_file"),
        ];
        for (cert_file, key_file, client_ca_file, expected) in cases {
            let config = TlsConfig {
                cert_file,
                key_file,
                client_ca_file,
            };
            let err = config.validate().unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert_eq!(TlsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unreadable_pem_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, "not a certificate").unwrap();
        let config = TlsConfig {
            key_file: cert_file.clone(),
            cert_file,
            client_ca_file: PathBuf::new(),
        };
        let err = format!("{:#}", config.load().err().unwrap());
        assert!(
            err.contains("tls.cert_file") && err.contains("cert.pem"),
            "{err}"
        );
    }
}
