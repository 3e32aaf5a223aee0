//! TLS to Redis (`rediss://`, `rediss-sentinel://`, `rediss-cluster://`).
//!
//! The server's certificate is verified against the system's roots (managed Redis uses public
//! CAs), or, with `REDIS_TLS_CA_FILE`, against that CA only (a private CA). With
//! `REDIS_TLS_CERT_FILE` and `REDIS_TLS_KEY_FILE` the client also presents a certificate, for a
//! Redis that asks for one (`tls-auth-clients yes`). Everything is read and checked at start, so a
//! wrong file stops the process naming its variable instead of failing on every reconnect.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// The variables, as named in errors.
pub const CA_FILE: &str = "REDIS_TLS_CA_FILE";
pub const CERT_FILE: &str = "REDIS_TLS_CERT_FILE";
pub const KEY_FILE: &str = "REDIS_TLS_KEY_FILE";

/// A checked TLS client configuration for the Redis clients.
#[derive(Clone)]
pub struct RedisTls {
    /// `REDIS_TLS_CA_FILE`, or None for the system's roots.
    pub ca_file: Option<String>,
    /// Whether a client certificate is presented.
    pub client_cert: bool,
    config: Arc<ClientConfig>,
}

// The client configuration holds the private key: never printed.
impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls").field("ca_file", &self.ca_file).field("client_cert", &self.client_cert).finish()
    }
}

/// True for the URL schemes that ask for TLS.
pub fn url_uses_tls(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| scheme.starts_with("rediss"))
}

/// The same URL with its scheme's TLS `s` dropped (`rediss-cluster://` → `redis-cluster://`):
/// what fred parses when the TLS setup is ours. Only the scheme changes.
pub fn without_tls(url: &str) -> String {
    match url.strip_prefix("rediss") {
        Some(rest) if url_uses_tls(url) => format!("redis{rest}"),
        _ => url.to_string(),
    }
}

impl RedisTls {
    /// Reads and checks the files; an error names the variable that is wrong.
    pub fn load(
        ca_file: Option<&str>,
        cert_file: Option<&str>,
        key_file: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = read_certs(CA_FILE, path)?;
                for cert in certs {
                    roots.add(cert).map_err(|e| (CA_FILE, format!("{path}: not a usable CA certificate: {e}")))?;
                }
            }
            None => {
                // Unreadable entries in the system store are skipped; what loads is used.
                let system = rustls_native_certs::load_native_certs();
                let (added, _ignored) = roots.add_parsable_certificates(system.certs);
                if added == 0 {
                    return Err((
                        CA_FILE,
                        "REDIS_URL uses TLS but no system CA certificates were found (install the \
                         ca-certificates package, or set REDIS_TLS_CA_FILE to the CA that signed the \
                         Redis server's certificate)"
                            .into(),
                    ));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| (CA_FILE, format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots);
        let config = match (cert_file, key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err((KEY_FILE, format!("required when {CERT_FILE} is set"))),
            (None, Some(_)) => return Err((CERT_FILE, format!("required when {KEY_FILE} is set"))),
            (Some(cert_path), Some(key_path)) => {
                let chain = read_certs(CERT_FILE, cert_path)?;
                let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                    (KEY_FILE, format!("{key_path}: not a readable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| (KEY_FILE, format!("{key_path}: does not go with {CERT_FILE}: {e}")))?
            }
        };
        Ok(RedisTls {
            ca_file: ca_file.map(str::to_string),
            client_cert: cert_file.is_some(),
            config: Arc::new(config),
        })
    }

    /// What the fred clients connect with (the publisher and the subscriber alike).
    pub fn fred_config(&self) -> fred::types::config::TlsConfig {
        fred::types::config::TlsConnector::from(ClientConfig::clone(&self.config)).into()
    }
}

fn read_certs(var: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, (&'static str, String)> {
    let bytes = std::fs::read(path).map_err(|e| (var, format!("cannot read {path}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (var, format!("{path}: not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err((var, format!("{path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")));
    }
    Ok(certs)
}
