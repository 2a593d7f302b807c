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
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{connect_unix, Framing, UnixListener};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let path = std::env::temp_dir().join(format!("rpcpeer-doc-{}.sock", std::process::id()));
/// let listener = UnixListener::bind(&path, Framing::Newline)?;
/// let mut client = connect_unix(&path, Framing::Newline).await?;
/// let (mut server, _) = listener.accept().await?;
/// client.send(r#"{"jsonrpc":"2.0","method":"hello"}"#.to_owned()).await?;
/// assert!(server.next().await.transpose()?.is_some());
/// std::fs::remove_file(&path)?;
/// # Ok(()) }
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
/// ```
/// use rpcpeer_stream::{connect_unix, Framing, UnixListener};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let path = std::env::temp_dir().join(format!("rpcpeer-listener-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path); // a stale socket from an earlier run
/// let listener = UnixListener::bind(&path, Framing::ContentLength)?.with_max_connections(100);
/// let (accepted, client) = tokio::join!(listener.accept(), connect_unix(&path, Framing::ContentLength));
/// let (_conn, _peer) = accepted?;
/// client?;
/// std::fs::remove_file(&path)?; // the listener does not remove its own
/// # Ok(()) }
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
