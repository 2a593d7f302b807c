//! TCP connections and listeners that hand out framed sockets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpStream, ToSocketAddrs};

use crate::listener::{Accept, Listener};
use crate::{framed, Framed, Framing, DEFAULT_MAX_FRAME_LEN};

/// Connects to `addr` and frames the socket, with [`DEFAULT_MAX_FRAME_LEN`].
///
/// `TCP_NODELAY` is set: a frame is written whole and the peer waits for
/// it, so Nagle's algorithm would only add latency to every small reply.
/// For another limit, see [`Framed::with_max_frame_len`]. No idle timeout
/// is set ([`Framed::with_idle_timeout`] sets one).
///
/// # Errors
/// Any error of resolving `addr`, of connecting (every resolved address
/// is tried, the last error is returned) or of setting `TCP_NODELAY`.
///
/// # Cancel safety
/// Dropping the future abandons the attempt; no connection is left open.
///
/// ```
/// use futures::SinkExt;
/// use rpcpeer_stream::{connect_tcp, Framing};
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let mut conn = connect_tcp(server.local_addr()?, Framing::ContentLength).await?;
/// conn.send("{}".to_owned()).await?;
/// // What the other end reads: the LSP base protocol's header, then the text.
/// let (mut socket, _) = server.accept().await?;
/// let mut bytes = [0; 23];
/// socket.read_exact(&mut bytes).await?;
/// assert_eq!(&bytes, b"Content-Length: 2\r\n\r\n{}");
/// # Ok(()) }
/// ```
pub async fn connect_tcp(
    addr: impl ToSocketAddrs,
    framing: Framing,
) -> io::Result<Framed<TcpStream>> {
    let socket = TcpStream::connect(addr).await?;
    crate::tcp_tuning::tune(&socket)?;
    Ok(framed(socket, framing, DEFAULT_MAX_FRAME_LEN))
}

/// A TCP listener whose accepted connections come framed (with
/// `TCP_NODELAY` set); its limits and methods are [`Listener`]'s.
///
/// ```
/// use rpcpeer_stream::{connect_tcp, Framing, TcpListener};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
///     .await?
///     .with_max_connections(1_000);
/// let client = connect_tcp(listener.local_addr()?, Framing::Newline);
/// let (accepted, client) = tokio::join!(listener.accept(), client);
/// let (_conn, peer) = accepted?;
/// assert_eq!(peer, client?.get_ref().local_addr()?);
/// # Ok(()) }
/// ```
pub type TcpListener = Listener<tokio::net::TcpListener>;

impl Listener<tokio::net::TcpListener> {
    /// Binds to `addr`; accepted connections use `framing`.
    ///
    /// # Errors
    /// Any error of resolving `addr` or binding to it (every resolved
    /// address is tried, the last error is returned), such as
    /// `AddrInUse`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes closes any socket it bound.
    pub async fn bind(addr: impl ToSocketAddrs, framing: Framing) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Self::new(listener, framing))
    }

    /// Wraps a listener from the standard library (set to non-blocking
    /// here, as tokio requires).
    ///
    /// # Errors
    /// When the listener cannot be set to non-blocking or registered with
    /// the runtime.
    ///
    /// # Panics
    /// When called outside a tokio runtime, like
    /// [`tokio::net::TcpListener::from_std`].
    pub fn from_std(listener: std::net::TcpListener, framing: Framing) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(Self::new(listener, framing))
    }
}

impl Accept for tokio::net::TcpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }

    fn prepare(&self, io: &TcpStream) -> io::Result<()> {
        crate::tcp_tuning::tune(io)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}
