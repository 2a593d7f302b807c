//! TCP connections and listeners that hand out framed sockets.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpStream, ToSocketAddrs};

use crate::{framed, Framed, Framing, DEFAULT_MAX_FRAME_LEN};

/// Connects to `addr` and frames the socket, with [`DEFAULT_MAX_FRAME_LEN`].
///
/// `TCP_NODELAY` is set: a frame is written whole and the peer waits for
/// it, so Nagle's algorithm would only add latency to every small reply.
/// For another limit, connect a `TcpStream` yourself and call [`framed`].
///
/// # Errors
/// Any error of resolving `addr`, of connecting (every resolved address
/// is tried, the last error is returned) or of setting `TCP_NODELAY`.
///
/// # Cancel safety
/// Dropping the future abandons the attempt; no connection is left open.
///
/// ```no_run
/// use rpcpeer_stream::{connect_tcp, Framing};
///
/// # async fn run() -> std::io::Result<()> {
/// let conn = connect_tcp("127.0.0.1:4000", Framing::ContentLength).await?;
/// # Ok(())
/// # }
/// ```
pub async fn connect_tcp(
    addr: impl ToSocketAddrs,
    framing: Framing,
) -> io::Result<Framed<TcpStream>> {
    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    Ok(framed(socket, framing, DEFAULT_MAX_FRAME_LEN))
}

/// A TCP listener whose accepted connections come framed.
///
/// Frames are limited to [`DEFAULT_MAX_FRAME_LEN`] unless
/// [`with_max_frame_len`](Self::with_max_frame_len) says otherwise.
///
/// ```no_run
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{Framing, TcpListener};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
///     .await?
///     .with_max_frame_len(1 << 20);
/// println!("listening on {}", listener.local_addr()?);
/// loop {
///     let (mut conn, peer) = listener.accept().await?;
///     tokio::spawn(async move {
///         // Echo every frame back.
///         while let Some(Ok(frame)) = conn.next().await {
///             if conn.send(frame).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    listener: tokio::net::TcpListener,
    framing: Framing,
    max_frame_len: usize,
}

impl TcpListener {
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
        Ok(Self::from_tokio(listener, framing))
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
        Ok(Self::from_tokio(listener, framing))
    }

    /// Wraps a tokio listener; accepted connections use `framing`.
    pub fn from_tokio(listener: tokio::net::TcpListener, framing: Framing) -> Self {
        TcpListener {
            listener,
            framing,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Sets the largest frame, in bytes, that accepted connections decode.
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// The address this listener is bound to; after binding port 0, this
    /// tells which port was picked.
    ///
    /// # Errors
    /// When the operating system cannot report the address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The framing of accepted connections.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The largest frame, in bytes, that accepted connections decode.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Waits for the next connection and frames it, with `TCP_NODELAY` set.
    ///
    /// # Errors
    /// Errors of accepting (such as running out of file descriptors) or of
    /// setting `TCP_NODELAY` on the new socket. They concern one connection,
    /// not the listener, so a server loop usually logs them and accepts on.
    ///
    /// # Cancel safety
    /// Cancel safe, like [`tokio::net::TcpListener::accept`]: if the future
    /// is dropped, no connection is lost.
    pub async fn accept(&self) -> io::Result<(Framed<TcpStream>, SocketAddr)> {
        let (socket, peer) = self.listener.accept().await?;
        socket.set_nodelay(true)?;
        Ok((framed(socket, self.framing, self.max_frame_len), peer))
    }

    /// Gives back the tokio listener.
    pub fn into_inner(self) -> tokio::net::TcpListener {
        self.listener
    }
}
