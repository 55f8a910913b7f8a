//! Starts one emulator as its own actix-web server on its own loopback listener (port 0 picks a free port),
//! with one worker, no signal handling of its own (the CLI handles SIGINT/SIGTERM) and no graceful drain, so
//! `stop` closes open sockets at once and leaves nothing listening. A client closing its side of a
//! connection counts as gone, so streaming bodies are dropped (and logged as abandoned) right away. A
//! connection whose response has ended is closed at once rather than lingering for the client to close
//! first: that is what ends a WebSocket's TCP connection right after its closing handshake. Every accepted
//! socket is recorded so a drop fault can reset it (`abort`).

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;

use super::abort;

/// A running server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Binds `host:port` (port 0 = any free port); nothing is served until `serve`.
    pub fn bind(host: IpAddr, port: u16) -> std::io::Result<TcpListener> {
        TcpListener::bind((host, port))
    }

    /// Starts serving the routes `configure` adds on `listener`.
    pub fn serve<F>(listener: TcpListener, configure: F) -> std::io::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            // A client that closes its side is gone: drop its response at once, so a stalled stream
            // notices the disconnect (actix's default keeps half-closed connections streaming).
            .h1_allow_half_closed(false)
            // actix-web waits up to this long (default 1 s) for the client to close a connection whose request
            // body it never finished reading, which is every WebSocket: the TCP connection then outlives the
            // closing handshake by a second. RFC 6455 wants the server to close it at once.
            .client_disconnect_timeout(Duration::ZERO)
            .on_connect(abort::on_connect)
            .listen(listener)?
            .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Running { addr, handle, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) {
        self.handle.stop(false).await;
        if let Err(e) = self.task.await {
            log::warn!("emulator server task ended abnormally: {e}");
        }
    }
}
