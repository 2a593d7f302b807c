//! One listener for every kind of socket: accepted connections come framed, under a cap on how many are open.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::connections::Places;
use crate::{framed, Framed, Framing, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_LEN};

/// A socket listener a [`Listener`] accepts from: tokio's TCP and Unix
/// listeners, or one of yours (a TLS acceptor, a vsock listener) that hands
/// out byte streams.
///
/// ```
/// use std::future::Future;
/// use std::io;
/// use std::net::SocketAddr;
/// use rpcpeer_stream::{connect_tcp, Accept, Framing, Listener};
///
/// /// A TCP listener that logs each connection it accepts.
/// struct Logged(tokio::net::TcpListener);
///
/// impl Accept for Logged {
///     type Io = tokio::net::TcpStream;
///     type Addr = SocketAddr;
///
///     fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send {
///         async move {
///             let (socket, peer) = self.0.accept().await?;
///             eprintln!("connection from {peer}");
///             Ok((socket, peer))
///         }
///     }
///
///     fn local_addr(&self) -> io::Result<SocketAddr> {
///         self.0.local_addr()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> io::Result<()> {
/// let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let listener = Listener::new(Logged(inner), Framing::Newline);
/// let client = connect_tcp(listener.local_addr()?, Framing::Newline);
/// let (accepted, client) = tokio::join!(listener.accept(), client);
/// let (_conn, peer) = accepted?;
/// assert_eq!(peer, client?.get_ref().local_addr()?);
/// # Ok(()) }
/// ```
pub trait Accept {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite;
    /// The address of the connection's other end.
    type Addr: fmt::Debug;

    /// Waits for the next connection.
    ///
    /// # Errors
    /// Errors of accepting; they concern one connection, not the listener.
    ///
    /// # Cancel safety
    /// Must be cancel safe: a dropped future loses no connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;

    /// Readies a connection that got a place, before it is framed (TCP
    /// sets `TCP_NODELAY`: a frame is written whole and the peer waits for
    /// it, so Nagle's algorithm would only add latency). Nothing by default.
    ///
    /// # Errors
    /// When the socket cannot be set up; the connection is then dropped.
    fn prepare(&self, io: &Self::Io) -> io::Result<()> {
        let _ = io;
        Ok(())
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// When the operating system cannot report the address.
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

/// A listener whose accepted connections come framed:
/// [`TcpListener`](crate::TcpListener) and
/// [`UnixListener`](crate::UnixListener) are this over tokio's listeners.
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
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{connect_tcp, Framing, TcpListener};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
///     .await?
///     .with_max_frame_len(1 << 20)
///     .with_max_connections(1_000);
/// let addr = listener.local_addr()?;
/// tokio::spawn(async move {
///     loop {
///         let Ok((mut conn, _peer)) = listener.accept().await else {
///             // One connection's trouble (out of file descriptors, say).
///             tokio::time::sleep(std::time::Duration::from_millis(50)).await;
///             continue;
///         };
///         tokio::spawn(async move {
///             // Echo every frame back.
///             while let Some(Ok(frame)) = conn.next().await {
///                 if conn.send(frame).await.is_err() {
///                     break;
///                 }
///             }
///         });
///     }
/// });
///
/// let mut client = connect_tcp(addr, Framing::Newline).await?;
/// client.send(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.to_owned()).await?;
/// let echoed = client.next().await.transpose()?;
/// assert_eq!(echoed.as_deref(), Some(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Listener<L> {
    listener: L,
    framing: Framing,
    max_frame_len: usize,
    idle_timeout: Option<Duration>,
    places: Places,
}

impl<L: Accept> Listener<L> {
    /// Frames the connections `listener` accepts with `framing`, under the
    /// default limits.
    pub fn new(listener: L, framing: Framing) -> Self {
        Listener {
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

    /// The address this listener is bound to; after binding TCP port 0,
    /// this tells which port was picked.
    ///
    /// # Errors
    /// When the operating system cannot report the address.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
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

    /// Waits for the next connection and frames it (TCP ones with
    /// `TCP_NODELAY` set).
    ///
    /// While [`max_connections`](Self::max_connections) are open, each new
    /// connection is closed as soon as it is accepted, and the wait goes on.
    ///
    /// # Errors
    /// Errors of accepting (such as running out of file descriptors) or of
    /// readying the new socket ([`Accept::prepare`]). They concern one
    /// connection, not the listener, so a server loop usually logs them and
    /// accepts on.
    ///
    /// # Cancel safety
    /// Cancel safe, like [`tokio::net::TcpListener::accept`]: if the future
    /// is dropped, no connection is lost.
    pub async fn accept(&self) -> io::Result<(Framed<L::Io>, L::Addr)> {
        loop {
            let (socket, peer) = self.listener.accept().await?;
            // Over the cap: dropping the socket closes it.
            let Some(place) = self.places.take(&peer) else {
                continue;
            };
            self.listener.prepare(&socket)?;
            let framed = framed(socket, self.framing, self.max_frame_len)
                .with_idle_timeout(self.idle_timeout)
                .holding(place);
            return Ok((framed, peer));
        }
    }

    /// Gives back the listener it accepts from.
    pub fn into_inner(self) -> L {
        self.listener
    }
}
