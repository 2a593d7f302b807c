//! `Truncated`: a stream that ended inside a Content-Length frame, told apart from a transport that failed.

use std::fmt;
use std::io;

/// The error inside the [`io::ErrorKind::UnexpectedEof`] error that
/// reports a stream ended inside a Content-Length frame: in its header
/// block, or short of its body (`err.get_ref()` downcasts to it).
///
/// The peer sent a message that cannot be finished, but it may still read:
/// a peer that shuts down its side after writing has not hung up. The
/// `rpcpeer` core answers it with a parse error that says how much was
/// missing, where an end of stream from anything else (a TLS stream cut
/// without its `close_notify`, say) ends the connection without a word.
///
/// ```
/// use futures::StreamExt;
/// use rpcpeer_stream::{framed, Framing, Truncated};
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut a, b) = tokio::io::duplex(1 << 16);
/// a.write_all(b"Content-Length: 10\r\n\r\n{\"id\"").await?;
/// drop(a);
/// let mut b = framed(b, Framing::ContentLength, 1 << 16);
/// let err = b.next().await.expect("an item").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
/// assert!(err.get_ref().is_some_and(|e| e.is::<Truncated>()));
/// assert_eq!(err.to_string(), "stream ended 5 bytes short of a 10 byte frame body");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Truncated {
    message: String,
}

impl Truncated {
    /// The `UnexpectedEof` error that carries `message`.
    pub(crate) fn error(message: String) -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, Self { message })
    }
}

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Truncated {}
