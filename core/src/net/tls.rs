//! TLS for dialling `wss://` peers: rustls, with the Mozilla root store by default.
//!
//! [`Repo::dial`](crate::Repo::dial) to a `wss://` URL trusts the public web's certificate
//! authorities (webpki-roots, the same on every platform). A relay with a certificate from
//! a private authority is dialled with [`Repo::dial_tls`](crate::Repo::dial_tls) and a
//! configuration from [`trusting`].

use std::sync::Arc;

pub use rustls;
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, Result};

/// A TLS client configuration that trusts the public web's authorities and the
/// certificates in `pem` (one or more, PEM-encoded: a private authority, or a server's own
/// self-signed certificate).
pub fn trusting(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
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
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| Error::InvalidCertificates(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
