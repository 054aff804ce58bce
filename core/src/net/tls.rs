//! TLS for dialling `wss://` peers: rustls, with the Mozilla root store by default.
//!
//! [`Repo::dial`](crate::Repo::dial) to a `wss://` URL trusts the public web's certificate
//! authorities (webpki-roots, the same on every platform). A relay with a certificate from
//! a private authority is dialled with [`Repo::dial_tls`](crate::Repo::dial_tls) and a
//! configuration from [`trusting`].

use std::sync::{Arc, OnceLock};

pub use rustls;
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, Result};

/// The configuration `wss://` peers are dialled with by default: the public web's
/// authorities, with ring named as the crypto provider (so that an app that enables another
/// rustls provider does not make the choice ambiguous, and nothing is installed
/// process-wide).
pub(crate) fn public_roots() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // The safe default versions are always available with ring: the fallback
            // (TLS 1.3 and 1.2 named explicitly) is not expected to run.
            Arc::new(client_config(mozilla_roots()))
        })
        .clone()
}

fn mozilla_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ));
    let versions = match builder.with_safe_default_protocol_versions() {
        Ok(versions) => versions,
        Err(_) => rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3")),
    };
    versions.with_root_certificates(roots).with_no_client_auth()
}

/// A TLS client configuration that trusts the public web's authorities and the
/// certificates in `pem` (one or more, PEM-encoded: a private authority, or a server's own
/// self-signed certificate).
pub fn trusting(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = mozilla_roots();
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate =
            certificate.map_err(|error| Error::InvalidCertificates(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| Error::InvalidCertificates(error.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(Error::InvalidCertificates(
            "no PEM certificate found".to_owned(),
        ));
    }
    Ok(Arc::new(client_config(roots)))
}
