//! TCP connections and listeners that hand out framed sockets.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, ToSocketAddrs};

use crate::connections::{Place, Places};
use crate::{framed, Framed, Framing, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_LEN};

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
/// Its limits, each with a builder method:
/// - frames of at most [`DEFAULT_MAX_FRAME_LEN`] bytes
///   ([`with_max_frame_len`](Self::with_max_frame_len)); a longer message
///   is skipped (see [`Framed`]);
/// - at most [`DEFAULT_MAX_CONNECTIONS`] connections open at once
///   ([`with_max_connections`](Self::with_max_connections));
/// - if set, each connection closed after a time without a complete
///   incoming message ([`with_idle_timeout`](Self::with_idle_timeout)).
///
/// ```no_run
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{Framing, TcpListener};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
///     .await?
///     .with_max_frame_len(1 << 20)
///     .with_max_connections(1_000);
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
    idle_timeout: Option<Duration>,
    places: Places,
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
            idle_timeout: None,
            places: Places::new(DEFAULT_MAX_CONNECTIONS),
        }
    }

    /// Sets the largest frame, in bytes, that accepted connections decode
    /// (default [`DEFAULT_MAX_FRAME_LEN`]); a longer message is skipped and
    /// reported as an [`io::ErrorKind::FileTooLarge`] item (see [`Framed`]).
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets how many accepted connections may be open at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]; at least 1). A connection is open until
    /// its [`Framed`] is dropped. Past the cap, [`accept`](Self::accept)
    /// closes each new connection as soon as it is accepted and waits for
    /// the next; refusals are logged at warn, at most one line per 10 s
    /// with the count of those in between.
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.places.set_max(max_connections);
        self
    }

    /// Sets how long an accepted connection may go without a complete
    /// incoming message before its stream yields a
    /// [`TimedOut`](io::ErrorKind::TimedOut) error and ends (default
    /// `None`: never, since only the protocol above knows whether a long
    /// silence is a call still running). See [`Framed::with_idle_timeout`].
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
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

    /// How many accepted connections may be open at once.
    pub fn max_connections(&self) -> usize {
        self.places.max()
    }

    /// How long an accepted connection may be idle, if there is a limit.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Frames an accepted connection with this listener's limits.
    fn frame(&self, socket: TcpStream, place: Place) -> Framed<TcpStream> {
        framed(socket, self.framing, self.max_frame_len)
            .with_idle_timeout(self.idle_timeout)
            .holding(place)
    }

    /// Waits for the next connection and frames it, with `TCP_NODELAY` set.
    ///
    /// While [`max_connections`](Self::max_connections) are open, each new
    /// connection is closed as soon as it is accepted, and the wait goes on.
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
        loop {
            let (socket, peer) = self.listener.accept().await?;
            // Over the cap: dropping the socket closes it.
            let Some(place) = self.places.take(&peer) else {
                continue;
            };
            socket.set_nodelay(true)?;
            return Ok((self.frame(socket, place), peer));
        }
    }

    /// Gives back the tokio listener.
    pub fn into_inner(self) -> tokio::net::TcpListener {
        self.listener
    }
}
