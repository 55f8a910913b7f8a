//! Abrupt ends of a connection, for the "drop" faults: the TCP connection goes away without a WebSocket
//! Close frame, and as a reset (RST) rather than an orderly FIN, which is how a crashed server or a load
//! balancer cutting the line usually looks to a client. actix-web ends a connection with a FIN, so the
//! socket is recorded when it is accepted (`on_connect`), set to linger 0 when the fault fires, and the
//! response body is made to fail so the server drops the socket without shutting it down first.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Extensions;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

/// The raw socket of an accepted connection (its file descriptor on Unix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSocket(#[cfg(unix)] std::os::fd::RawFd);

/// Records the socket of every accepted plain-TCP connection, with Nagle's algorithm off so that results and
/// audio go out as they are made, as a streaming endpoint sends them; give it to `HttpServer::on_connect`.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        let _ = tcp.set_nodelay(true);
    }
    #[cfg(unix)]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsRawFd as _;
        ext.insert(ConnSocket(tcp.as_raw_fd()));
    }
    #[cfg(not(unix))]
    let _ = (conn, ext);
}

impl ConnSocket {
    /// Makes the kernel answer the socket's close with a reset (`SO_LINGER` on, 0 s). Only called while the
    /// connection's response is being produced, so the descriptor still belongs to this connection.
    fn reset_on_close(self) {
        #[cfg(unix)]
        {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid, live `linger`; the descriptor
            // is open (its connection is still being served), and a failure only means a FIN instead of a reset.
            let rc = unsafe {
                libc::setsockopt(
                    self.0,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                log::debug!("emulator: cannot set SO_LINGER for a reset: {}", std::io::Error::last_os_error());
            }
        }
    }
}

/// A handle that cuts one connection: `trigger` makes its response body fail once the body has nothing more
/// to send, and the socket close with a reset. Cheap to clone; the default handle (no socket known) still
/// cuts the body, with a FIN.
#[derive(Debug, Clone, Default)]
pub struct Abort {
    flag: Arc<AtomicBool>,
    socket: Option<ConnSocket>,
}

impl Abort {
    /// A handle for the connection `req` arrived on.
    pub fn for_request(req: &HttpRequest) -> Self {
        Abort { flag: Arc::default(), socket: req.conn_data::<ConnSocket>().copied() }
    }

    /// Cuts the connection once the body ends (bytes already produced are still written first).
    pub fn trigger(&self) {
        if !self.flag.swap(true, Ordering::SeqCst)
            && let Some(s) = self.socket
        {
            s.reset_on_close();
        }
    }

    /// `resp` with a body that fails instead of ending once `trigger` was called.
    pub fn wrap(&self, resp: HttpResponse) -> HttpResponse {
        let flag = Arc::clone(&self.flag);
        resp.map_body(|_, inner| AbortableBody { inner, flag, ended: false, flushed: false }).map_into_boxed_body()
    }
}

/// A body that turns its end into an error once its `Abort` was triggered.
struct AbortableBody {
    inner: BoxBody,
    flag: Arc<AtomicBool>,
    ended: bool,
    flushed: bool,
}

impl MessageBody for AbortableBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.as_mut().get_mut();
        if !this.ended {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(None) => this.ended = true,
                Poll::Ready(Some(r)) => return Poll::Ready(Some(r)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !this.flag.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        if !this.flushed {
            // Let the server write what is buffered before the connection goes; an error would discard it.
            this.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err("emulated connection drop".into())))
    }
}
