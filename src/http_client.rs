//! Outbound HTTP and WebSocket clients for the providers. The TLS configuration (rustls with the ring
//! provider, webpki roots, ALPN pinned to HTTP/1.1 because awc cannot run WebSocket over h2) is built once
//! at start-up; each actix worker thread then builds its own `awc::Client` from it (awc clients are not
//! `Send`), which keeps one connection pool per worker.

use std::sync::Arc;
use std::time::Duration;

/// How long opening a TCP+TLS connection to a provider may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared client settings; cheap to clone.
#[derive(Clone)]
pub struct HttpClients {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for HttpClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClients").finish_non_exhaustive()
    }
}

impl HttpClients {
    pub fn new() -> HttpClients {
        // awc's Connector builds a default TLS config eagerly and that needs a process-wide provider; ours is
        // explicit below, but install ring as the default too (a no-op if something already did).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            // The ring provider supports the default protocol versions; this cannot fail.
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        HttpClients { tls: Arc::new(tls) }
    }

    /// A client for the current thread. Requests have no overall timeout: streams (SSE, audio) last as long as
    /// a reply does, and the session actors apply their own deadlines.
    pub fn build(&self) -> awc::Client {
        awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(self.tls.clone()).timeout(CONNECT_TIMEOUT).limit(0))
            .disable_timeout()
            .finish()
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        HttpClients::new()
    }
}
