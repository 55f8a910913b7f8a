//! A CONNECT proxy that terminates TLS itself: for `CONNECT host:443` it answers 200, completes a TLS
//! handshake as `host` (with the test CA's certificate) and relays the decrypted bytes to the fake.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The running proxy.
pub struct ConnectProxy {
    pub port: u16,
    /// Every `host:port` a client asked to reach, in order.
    pub tunnels: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub async fn start(tls: Arc<rustls::ServerConfig>, upstream: SocketAddr) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = tunnels.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        actix_web::rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                actix_web::rt::spawn(async move {
                    if let Err(e) = tunnel(stream, acceptor, upstream, seen).await {
                        log::debug!("proxy tunnel ended: {e}");
                    }
                });
            }
        });
        ConnectProxy { port, tunnels }
    }

    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

async fn tunnel(
    mut client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or_default().to_string();
    if !head.starts_with("CONNECT ") {
        client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n").await?;
        return Ok(());
    }
    seen.lock().unwrap().push(target);
    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
    let mut tls = acceptor.accept(client).await?;
    let mut plain = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut plain).await?;
    Ok(())
}
