//! Byte-stream framings (newline and Content-Length) of JSON texts over TCP, Unix sockets, stdio and child processes.
//!
//! A frame is one JSON text as a [`String`]. This crate knows nothing about
//! JSON-RPC: it cuts a byte stream into frames and joins frames back into
//! bytes. Every helper returns a [`Framed`], which is a
//! `Stream<Item = io::Result<String>> + Sink<String, Error = io::Error>`,
//! the transport contract the `rpcpeer` core runs over.
//!
//! Two framings are offered:
//! - [`Framing::Newline`]: one JSON text per line (`\n`, and `\r\n` is
//!   accepted), blank lines ignored. See [`NewlineCodec`].
//! - [`Framing::ContentLength`]: the LSP base protocol,
//!   `Content-Length: N\r\n\r\n` then N bytes of UTF-8. See
//!   [`ContentLengthCodec`].
//!
//! Limits, each with a default and a setting:
//! - a message longer than `max_frame_len` ([`DEFAULT_MAX_FRAME_LEN`],
//!   16 MiB) is skipped without being buffered, and the stream yields an
//!   [`io::ErrorKind::FileTooLarge`] error that names the limit, then goes on
//!   with the next message (see [`Framed`]). Only the message's first and
//!   last bytes are kept, in an [`Oversized`] inside the error, from which
//!   the core reads its id. So does a message that is not
//!   UTF-8: the stream yields an [`io::ErrorKind::InvalidData`] error that
//!   wraps the [`std::str::Utf8Error`], then the next message. Any other
//!   decoding error means the framing is lost: the stream yields that error
//!   and then ends, and nothing tries to resynchronise the byte stream. A
//!   stream that ends inside a Content-Length frame yields an
//!   [`io::ErrorKind::UnexpectedEof`] error with a [`Truncated`] inside,
//!   from which the core tells the peer what was missing;
//! - a [`Listener`] (TCP, Unix, or any [`Accept`]) holds at most
//!   [`DEFAULT_MAX_CONNECTIONS`] connections open at once; it closes the
//!   ones past that as soon as it accepts them
//!   ([`Listener::with_max_connections`]);
//! - a connection may be closed after a time without a complete incoming
//!   message ([`Listener::with_idle_timeout`],
//!   [`Framed::with_idle_timeout`]; off unless set: this crate cannot tell
//!   a long call from an idle peer, `rpcpeer`'s driver can, and has its
//!   own `Config::idle_timeout`).
//!
//! ```
//! use futures::{SinkExt, StreamExt};
//! use rpcpeer_stream::{connect_tcp, Framing, TcpListener};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline).await?;
//! let mut conn = connect_tcp(listener.local_addr()?, Framing::Newline).await?;
//! let (mut server, _) = listener.accept().await?;
//!
//! conn.send(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.to_string()).await?;
//! let request = server.next().await.transpose()?;
//! assert_eq!(request.as_deref(), Some(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#));
//! server.send(r#"{"jsonrpc":"2.0","result":"pong","id":1}"#.to_string()).await?;
//! let reply = conn.next().await.transpose()?;
//! assert_eq!(reply.as_deref(), Some(r#"{"jsonrpc":"2.0","result":"pong","id":1}"#));
//! # Ok(())
//! # }
//! ```

// No unwrap on anything a peer sends: errors are answered, not panicked on.
#![warn(clippy::unwrap_used)]
// docs.rs labels the Unix-only items (see Cargo.toml).
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::io;
use std::str::FromStr;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder};

mod connections;
mod content_length;
mod framed;
mod listener;
mod newline;
mod oversized;
mod process;
mod tcp;
mod tcp_tuning;
mod truncated;
#[cfg(unix)]
mod unix;

pub use content_length::ContentLengthCodec;
pub use framed::Framed;
pub use listener::{Accept, Listener};
pub use newline::NewlineCodec;
pub use oversized::Oversized;
pub use process::{spawn_child, stdio, ChildIo, Stdio};
pub use tcp::{connect_tcp, TcpListener};
pub use truncated::Truncated;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use unix::{connect_unix, UnixListener};

/// The largest frame accepted when no other limit is given: 16 MiB.
///
/// A frame is held whole in memory before it is handed over, so this bounds
/// what one peer can make us buffer; a longer one is skipped as it arrives
/// (see [`Framed`]). Every listener and connector in this crate uses it;
/// pass another limit to [`framed`] or [`FrameCodec::new`], or set one with
/// [`Framed::with_max_frame_len`] or a listener's `with_max_frame_len`.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// How many connections a listener holds open at once unless told
/// otherwise: 10,000.
///
/// An idle connection costs an `rpcpeer` server some 6 KiB, so this many
/// is about 60 MiB, and each holds a file descriptor (raise `ulimit -n`
/// to use them all). A connection past the cap is accepted and closed at
/// once, and the refusal is logged. Set with
/// [`Listener::with_max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How frames are delimited on a byte stream.
///
/// ```
/// use rpcpeer_stream::Framing;
///
/// // As a command line or a config file names it.
/// let framing: Framing = "content-length".parse().unwrap();
/// assert_eq!(framing, Framing::ContentLength);
/// assert_eq!(Framing::default().to_string(), "newline");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// One frame per line, ended by `\n` (a `\r` before it is stripped).
    /// Written `newline`.
    #[default]
    Newline,
    /// The LSP base protocol: `Content-Length: N\r\n\r\n` then N bytes.
    /// Written `content-length`.
    ContentLength,
}

impl Framing {
    /// The name [`FromStr`] accepts and [`Display`](fmt::Display) writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Framing::Newline => "newline",
            Framing::ContentLength => "content-length",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Framing {
    type Err = ParseFramingError;

    /// Parses `newline` or `content-length`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Framing::Newline, Framing::ContentLength]
            .into_iter()
            .find(|framing| framing.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseFramingError {
                input: s.to_owned(),
            })
    }
}

/// The error [`Framing::from_str`] returns for a name it does not know.
///
/// ```
/// use rpcpeer_stream::Framing;
///
/// let err = "lines".parse::<Framing>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown framing `lines`: expected `newline` or `content-length`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFramingError {
    input: String,
}

impl fmt::Display for ParseFramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown framing `{}`: expected `newline` or `content-length`",
            self.input
        )
    }
}

impl std::error::Error for ParseFramingError {}

/// A codec for either framing, so that every helper returns the same type.
///
/// It decodes bytes into `String` frames and encodes `String` frames into
/// bytes, delegating to [`NewlineCodec`] or [`ContentLengthCodec`]. After an
/// [`io::ErrorKind::FileTooLarge`] error (a message over the limit, being
/// skipped) or an [`io::ErrorKind::InvalidData`] error wrapping a
/// [`std::str::Utf8Error`] (a message that is not UTF-8, consumed) decoding
/// goes on; after any other error the framing is lost: drop the stream
/// rather than decode on.
///
/// ```
/// use bytes::BytesMut;
/// use rpcpeer_stream::{FrameCodec, Framing};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new(Framing::ContentLength, 1024);
/// let mut buf = BytesMut::new();
/// codec.encode(r#"{"msg":"héllo"}"#.to_string(), &mut buf)?;
/// // The length counts bytes: `é` is two of them.
/// assert_eq!(&buf[..], "Content-Length: 16\r\n\r\n{\"msg\":\"héllo\"}".as_bytes());
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some(r#"{"msg":"héllo"}"#));
/// assert_eq!(codec.decode(&mut buf)?, None);
///
/// let mut lines = FrameCodec::new(Framing::Newline, 1024);
/// let mut buf = BytesMut::from("{\"a\":1}\r\n\n[2]\n");
/// assert_eq!(lines.decode(&mut buf)?.as_deref(), Some(r#"{"a":1}"#));
/// assert_eq!(lines.decode(&mut buf)?.as_deref(), Some("[2]"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameCodec {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Newline(NewlineCodec),
    ContentLength(ContentLengthCodec),
}

impl FrameCodec {
    /// A codec for `framing` that rejects frames longer than
    /// `max_frame_len` bytes (see [`DEFAULT_MAX_FRAME_LEN`]).
    pub fn new(framing: Framing, max_frame_len: usize) -> Self {
        let inner = match framing {
            Framing::Newline => Inner::Newline(NewlineCodec::new(max_frame_len)),
            Framing::ContentLength => Inner::ContentLength(ContentLengthCodec::new(max_frame_len)),
        };
        FrameCodec { inner }
    }

    /// The framing this codec reads and writes.
    pub fn framing(&self) -> Framing {
        match self.inner {
            Inner::Newline(_) => Framing::Newline,
            Inner::ContentLength(_) => Framing::ContentLength,
        }
    }

    /// The largest frame, in bytes, this codec decodes.
    pub fn max_frame_len(&self) -> usize {
        match &self.inner {
            Inner::Newline(codec) => codec.max_frame_len(),
            Inner::ContentLength(codec) => codec.max_frame_len(),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = String;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        match &mut self.inner {
            Inner::Newline(codec) => codec.decode(src),
            Inner::ContentLength(codec) => codec.decode(src),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        match &mut self.inner {
            Inner::Newline(codec) => codec.decode_eof(src),
            Inner::ContentLength(codec) => codec.decode_eof(src),
        }
    }
}

impl Encoder<String> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: String, dst: &mut BytesMut) -> io::Result<()> {
        match &mut self.inner {
            Inner::Newline(codec) => codec.encode(frame, dst),
            Inner::ContentLength(codec) => codec.encode(frame, dst),
        }
    }
}

/// Wraps any byte stream in `framing`, skipping messages longer than
/// `max_frame_len` bytes (see [`Framed`]).
///
/// Use it for a transport this crate has no helper for, or to set a limit
/// other than [`DEFAULT_MAX_FRAME_LEN`] on a connection:
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{framed, Framing};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // Any byte stream: here an in-memory pipe, framed at both ends.
/// let (a, b) = tokio::io::duplex(4096);
/// let mut a = framed(a, Framing::ContentLength, 1 << 20);
/// let mut b = framed(b, Framing::ContentLength, 16);
/// a.send(r#"{"jsonrpc":"2.0","method":"a_longer_one"}"#.to_owned()).await?;
/// a.send("{}".to_owned()).await?;
/// // Over b's limit of 16 bytes: skipped, and said so; the next one is read.
/// let skipped = b.next().await.unwrap().unwrap_err();
/// assert_eq!(skipped.kind(), std::io::ErrorKind::FileTooLarge);
/// assert_eq!(b.next().await.transpose()?.as_deref(), Some("{}"));
/// # Ok(()) }
/// ```
pub fn framed<T: AsyncRead + AsyncWrite>(
    io: T,
    framing: Framing,
    max_frame_len: usize,
) -> Framed<T> {
    Framed::new(io, framing, max_frame_len)
}

/// An `InvalidData` error: the bytes on the wire broke the framing.
pub(crate) fn invalid_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// An `InvalidData` error wrapping the `Utf8Error` itself: a whole message
/// that is not UTF-8, consumed, after which decoding goes on. The wrapped
/// type is what tells it from lost framing (see [`Framed`]).
pub(crate) fn not_utf8(err: std::str::Utf8Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// Whether decoding goes on after `err`: one message was skipped, for its
/// size or because it is not UTF-8, and the framing is intact.
pub(crate) fn is_skipped(err: &io::Error) -> bool {
    match err.kind() {
        io::ErrorKind::FileTooLarge => true,
        io::ErrorKind::InvalidData => err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>()),
        _ => false,
    }
}
