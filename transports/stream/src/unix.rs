//! Unix domain socket connections and listeners that hand out framed sockets.

use std::future::Future;
use std::io;
use std::path::Path;

use tokio::net::unix::SocketAddr;
use tokio::net::UnixStream;

use crate::listener::{Accept, Listener};
use crate::{framed, Framed, Framing, DEFAULT_MAX_FRAME_LEN};

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

/// A Unix socket listener whose accepted connections come framed; its
/// limits and methods are [`Listener`]'s. Like tokio's listener, it neither
/// removes a stale socket file before binding nor removes its own when
/// dropped: that is the caller's job.
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
pub type UnixListener = Listener<tokio::net::UnixListener>;

impl Listener<tokio::net::UnixListener> {
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
    /// [`tokio::net::UnixListener::from_std`].
    pub fn from_std(
        listener: std::os::unix::net::UnixListener,
        framing: Framing,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        Ok(Self::new(listener, framing))
    }
}

impl Accept for tokio::net::UnixListener {
    type Io = UnixStream;
    type Addr = SocketAddr;

    fn accept(&self) -> impl Future<Output = io::Result<(UnixStream, SocketAddr)>> + Send {
        tokio::net::UnixListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::UnixListener::local_addr(self)
    }
}
