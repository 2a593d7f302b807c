//! Framed pipes to processes: this process's stdin/stdout and a child's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Join, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{framed, Framed, Framing, DEFAULT_MAX_FRAME_LEN};

/// This process's stdin (read) and stdout (write) as one byte stream.
///
/// ```
/// use rpcpeer_stream::{stdio, Framed, Framing, Stdio};
///
/// /// A language server talks to its client over stdio.
/// struct Server {
///     conn: Framed<Stdio>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = Server { conn: stdio(Framing::ContentLength) };
/// assert_eq!(server.conn.codec().framing(), Framing::ContentLength);
/// # }
/// ```
pub type Stdio = Join<tokio::io::Stdin, tokio::io::Stdout>;

/// A child's stdout (read) and stdin (write) as one byte stream.
///
/// Shutting it down (closing the framed sink, as a driver does when its
/// connection closes) closes the child's stdin, which tells the child that
/// no more input comes, while what it still writes can be read to the end.
/// (A plain [`ChildStdin`] closes only when dropped.)
///
/// ```
/// # #[cfg(unix)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use rpcpeer_stream::{spawn_child, ChildIo, Framed, Framing};
///
/// /// A client of a language server it runs as a child process.
/// struct Client {
///     conn: Framed<ChildIo>,
///     child: tokio::process::Child,
/// }
///
/// let (conn, child) = spawn_child(&mut tokio::process::Command::new("cat"), Framing::Newline)?;
/// let client = Client { conn, child };
/// # drop(client);
/// # Ok(()) }
/// # #[cfg(not(unix))]
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct ChildIo {
    stdout: ChildStdout,
    /// `None` once shut down: the pipe is closed.
    stdin: Option<ChildStdin>,
}

impl AsyncRead for ChildIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChildIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stdin {
            Some(stdin) => Pin::new(stdin).poll_write(cx, buf),
            None => Poll::Ready(Err(stdin_closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stdin {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdin) = &mut this.stdin {
            std::task::ready!(Pin::new(stdin).poll_flush(cx))?;
        }
        // Dropped: the pipe's write end closes, and the child reads the end.
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

/// What a write after the shutdown meets.
fn stdin_closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the child's stdin was closed (the stream was shut down)",
    )
}

/// Frames this process's stdin and stdout, with [`DEFAULT_MAX_FRAME_LEN`]
/// (set another limit with [`Framed::with_max_frame_len`]) and no idle
/// timeout: frames are read from stdin and written to stdout.
///
/// Nothing else may write to stdout while this is in use (send logs to
/// stderr), or the peer sees broken frames. Every frame sent is flushed.
///
/// Tokio reads stdin with a blocking read on another thread, and that read
/// cannot be cancelled: dropping the stream does not end it, and a runtime
/// shutdown can wait for it until stdin has input or is closed. A program
/// that must stop while its peer keeps stdin open should exit the process,
/// or shut the runtime down with a timeout.
///
/// # Panics
/// Reading or writing outside a tokio runtime panics, as with
/// [`tokio::io::stdin`].
///
/// ```no_run
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{stdio, Framing};
///
/// # async fn run() -> std::io::Result<()> {
/// // Messages of up to 64 MiB; longer ones are skipped.
/// let mut conn = stdio(Framing::ContentLength).with_max_frame_len(64 << 20);
/// while let Some(frame) = conn.next().await {
///     conn.send(frame?).await?; // echo
/// }
/// # Ok(())
/// # }
/// ```
pub fn stdio(framing: Framing) -> Framed<Stdio> {
    let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    framed(io, framing, DEFAULT_MAX_FRAME_LEN)
}

/// Spawns `cmd` with its stdin and stdout piped to us, and frames them, with
/// [`DEFAULT_MAX_FRAME_LEN`] (set another limit with
/// [`Framed::with_max_frame_len`]) and no idle timeout: frames sent go to
/// the child's stdin, frames read come from its stdout.
///
/// The child's stderr is left as `cmd` sets it, which by default means
/// inherited from this process, so its logs still show. `kill_on_drop` is
/// set: dropping the returned [`Child`] kills the process, and the framed
/// stream then ends. Keep the `Child` for as long as you talk to it, and
/// call [`Child::wait`] to learn how it exited.
///
/// Only that process is killed, not those it started: a server behind
/// `sh -c` outlives it and may keep its stdout open. To end them all, start
/// it in a process group of its own (`cmd.process_group(0)` on Unix, where
/// a program in a terminal's foreground should stay in ours to read the
/// terminal) and signal the group.
///
/// # Errors
/// Any error of spawning, such as `NotFound` when the program does not
/// exist.
///
/// # Panics
/// When called outside a tokio runtime, like [`Command::spawn`].
///
/// ```
/// # #[cfg(unix)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{spawn_child, Framing};
///
/// // `cat` echoes each line: newline framing, both ways. A language server
/// // would be `Command::new("some-language-server").arg("--stdio")` with
/// // `Framing::ContentLength`.
/// let mut cmd = tokio::process::Command::new("cat");
/// let (conn, mut child) = spawn_child(&mut cmd, Framing::Newline)?;
/// // Replies can be large: allow 256 MiB each.
/// let mut conn = conn.with_max_frame_len(256 << 20);
/// conn.send(r#"{"jsonrpc":"2.0","method":"exit"}"#.to_string()).await?;
/// let echoed = conn.next().await.transpose()?;
/// assert_eq!(echoed.as_deref(), Some(r#"{"jsonrpc":"2.0","method":"exit"}"#));
/// drop(conn); // closes its stdin: `cat` ends
/// assert!(child.wait().await?.success());
/// # Ok(())
/// # }
/// # #[cfg(not(unix))]
/// # fn main() {}
/// ```
pub fn spawn_child(cmd: &mut Command, framing: Framing) -> io::Result<(Framed<ChildIo>, Child)> {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // Both are `Some`: they were piped just above, and nobody took them yet.
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(io::Error::other(
            "the child's stdin or stdout was not piped",
        ));
    };
    let io = ChildIo {
        stdout,
        stdin: Some(stdin),
    };
    Ok((framed(io, framing, DEFAULT_MAX_FRAME_LEN), child))
}
