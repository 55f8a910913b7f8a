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
        let connector = awc::Connector::new().connector(tcp_connector());
        awc::Client::builder()
            .connector(connector.rustls_0_23(self.tls.clone()).timeout(CONNECT_TIMEOUT).limit(0))
            .disable_timeout()
            .finish()
    }
}

/// awc's TCP connector with `TCP_NODELAY` set on every connection. Audio goes out in small frames (640 bytes
/// every 20 ms to Deepgram) on sockets that also carry replies the other way; with Nagle's algorithm on, a
/// frame written while the previous one is unacknowledged waits for that acknowledgement, which the peer may
/// delay by up to 40 ms. The frame that held the end of an utterance then reaches Deepgram late, and so does
/// the end of the turn. Real-time traffic wants each frame on the wire when it is written.
pub fn tcp_connector() -> impl actix_service::Service<
    actix_tls::connect::ConnectInfo<awc::http::Uri>,
    Response = actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>,
    Error = actix_tls::connect::ConnectError,
> + Clone {
    use actix_service::ServiceExt as _;
    actix_tls::connect::Connector::new(actix_tls::connect::Resolver::default()).service().map(
        |connection: actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>| {
            // Failing only costs latency; the connection itself is fine.
            let _ = connection.io_ref().set_nodelay(true);
            connection
        },
    )
}

impl Default for HttpClients {
    fn default() -> Self {
        HttpClients::new()
    }
}

#[cfg(test)]
mod tests {
    use actix_service::Service as _;

    #[actix::test]
    async fn provider_connections_are_opened_with_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let uri: awc::http::Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let connector = super::tcp_connector();
        let connection = connector.call(actix_tls::connect::ConnectInfo::new(uri)).await.unwrap();
        assert!(connection.io_ref().nodelay().unwrap(), "TCP_NODELAY is set");
        // What awc's own connector would have given (what this guards against).
        let plain = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert!(!plain.nodelay().unwrap());
    }
}
