//! Unix domain socket connections and listeners that hand out framed sockets.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::net::unix::SocketAddr;
use tokio::net::UnixStream;

use crate::connections::{Place, Places};
use crate::{framed, Framed, Framing, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_LEN};

/// Connects to the Unix socket at `path` and frames it, with
/// [`DEFAULT_MAX_FRAME_LEN`] (see [`Framed::with_max_frame_len`]) and no
/// idle timeout.
///
/// # Errors
/// Any error of connecting, such as `NotFound` when nothing is at `path`
/// or `ConnectionRefused` when nothing listens there.
///
/// # Cancel safety
/// Dropping the future abandons the attempt; no connection is left open.
///
/// ```no_run
/// use rpcpeer_stream::{connect_unix, Framing};
///
/// # async fn run() -> std::io::Result<()> {
/// let conn = connect_unix("rpcpeer.sock", Framing::Newline).await?;
/// # Ok(())
/// # }
/// ```
pub async fn connect_unix(
    path: impl AsRef<Path>,
    framing: Framing,
) -> io::Result<Framed<UnixStream>> {
    let socket = UnixStream::connect(path).await?;
    Ok(framed(socket, framing, DEFAULT_MAX_FRAME_LEN))
}

/// A Unix socket listener whose accepted connections come framed.
///
/// Its limits are those of [`TcpListener`](crate::TcpListener), with the
/// same builder methods: frames of at most [`DEFAULT_MAX_FRAME_LEN`] bytes
/// ([`with_max_frame_len`](Self::with_max_frame_len)), at most
/// [`DEFAULT_MAX_CONNECTIONS`] connections open at once
/// ([`with_max_connections`](Self::with_max_connections)), and if set, each
/// closed after a time without a complete incoming message
/// ([`with_idle_timeout`](Self::with_idle_timeout)). Like
/// tokio's listener, it neither removes a stale socket file before binding
/// nor removes its own when dropped: that is the caller's job.
///
/// ```no_run
/// use rpcpeer_stream::{Framing, UnixListener};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = UnixListener::bind("rpcpeer.sock", Framing::ContentLength)?;
/// let (conn, _peer) = listener.accept().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct UnixListener {
    listener: tokio::net::UnixListener,
    framing: Framing,
    max_frame_len: usize,
    idle_timeout: Option<Duration>,
    places: Places,
}

impl UnixListener {
    /// Binds to `path`; accepted connections use `framing`.
    ///
    /// Not `async`, unlike [`TcpListener::bind`](crate::TcpListener::bind):
    /// binding a path resolves no name, so tokio binds it at once.
    ///
    /// # Errors
    /// Any error of binding, such as `AddrInUse` when a file (perhaps a
    /// stale socket) is already at `path`.
    ///
    /// # Panics
    /// When called outside a tokio runtime, like
    /// [`tokio::net::UnixListener::bind`].
    pub fn bind(path: impl AsRef<Path>, framing: Framing) -> io::Result<Self> {
        let listener = tokio::net::UnixListener::bind(path)?;
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
    /// [`tokio::net::UnixListener::from_std`].
    pub fn from_std(
        listener: std::os::unix::net::UnixListener,
        framing: Framing,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        Ok(Self::from_tokio(listener, framing))
    }

    /// Wraps a tokio listener; accepted connections use `framing`.
    pub fn from_tokio(listener: tokio::net::UnixListener, framing: Framing) -> Self {
        UnixListener {
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
    /// `None`: never, as for [`TcpListener`](crate::TcpListener)). See
    /// [`Framed::with_idle_timeout`].
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The address this listener is bound to.
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
    fn frame(&self, socket: UnixStream, place: Place) -> Framed<UnixStream> {
        framed(socket, self.framing, self.max_frame_len)
            .with_idle_timeout(self.idle_timeout)
            .holding(place)
    }

    /// Waits for the next connection and frames it.
    ///
    /// While [`max_connections`](Self::max_connections) are open, each new
    /// connection is closed as soon as it is accepted, and the wait goes on.
    ///
    /// # Errors
    /// Errors of accepting, such as running out of file descriptors. They
    /// concern one connection, not the listener, so a server loop usually
    /// logs them and accepts on.
    ///
    /// # Cancel safety
    /// Cancel safe, like [`tokio::net::UnixListener::accept`]: if the
    /// future is dropped, no connection is lost.
    pub async fn accept(&self) -> io::Result<(Framed<UnixStream>, SocketAddr)> {
        loop {
            let (socket, peer) = self.listener.accept().await?;
            // Over the cap: dropping the socket closes it.
            let Some(place) = self.places.take(&peer) else {
                continue;
            };
            return Ok((self.frame(socket, place), peer));
        }
    }

    /// Gives back the tokio listener.
    pub fn into_inner(self) -> tokio::net::UnixListener {
        self.listener
    }
}
