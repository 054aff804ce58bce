//! A TLS front for tests: terminates TLS with a fresh self-signed certificate for
//! `localhost` and forwards to a plain address, as Caddy or nginx do in front of a relay.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

/// A TLS front running until the test ends.
pub(crate) struct TlsFront {
    /// `wss://localhost:PORT`.
    pub(crate) url: String,
    /// The front's certificate, PEM-encoded (what a client must trust).
    pub(crate) certificate_pem: String,
}

/// Starts a TLS front forwarding to `backend` (`host:port`, plain TCP).
pub(crate) async fn start(backend: String) -> TlsFront {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![certified.cert.der().clone()],
        PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = front.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = front.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut secured) = acceptor.accept(inbound).await else {
                    return; // a client that did not trust the certificate
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut secured, &mut plain).await;
            });
        }
    });
    TlsFront {
        url: format!("wss://localhost:{port}"),
        certificate_pem: certified.cert.pem(),
    }
}
