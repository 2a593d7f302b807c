//! `Oversized`: what a message skipped for its size leaves behind, its first and last bytes, from which the core may read whose message it was.

use std::fmt;
use std::io;

/// How many of a skipped message's first bytes, and of its last, are kept.
const KEPT: usize = 256;

/// The error inside the [`io::ErrorKind::FileTooLarge`] error that reports
/// a message skipped for its size (`err.get_ref()` downcasts to it).
///
/// Nothing of the message is read, but its first and last bytes are kept:
/// a JSON-RPC message usually names its id there (`{"jsonrpc":"2.0","id":…`
/// or `…,"id":7}`), and the `rpcpeer` core reads it from them, to answer a
/// request too large under its own id and to fail at once the call of its
/// own that a reply too large answers.
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use rpcpeer_stream::{framed, Framing, Oversized};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, b) = tokio::io::duplex(1 << 16);
/// let mut a = framed(a, Framing::Newline, 1 << 16);
/// let mut b = framed(b, Framing::Newline, 1 << 16).with_max_frame_len(1000);
/// let big = format!(r#"{{"jsonrpc":"2.0","result":"{}","id":7}}"#, "x".repeat(2000));
/// a.send(big).await?;
/// let err = b.next().await.expect("an item").unwrap_err();
/// let skipped = err.get_ref().and_then(|e| e.downcast_ref::<Oversized>()).expect("kept");
/// assert!(skipped.head().starts_with(br#"{"jsonrpc":"2.0","result":"xxx"#));
/// assert!(skipped.tail().ends_with(br#"xxx","id":7}"#));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Oversized {
    message: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Oversized {
    /// The message's first bytes (at most 256).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The message's last bytes (at most 256; they overlap the head when
    /// the message is shorter than both).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }
}

impl fmt::Display for Oversized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Oversized {}

/// A message being skipped: its first and last bytes so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Skipping {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Skipping {
    /// Takes in the next of the message's bytes, as they are thrown away.
    pub(crate) fn take_in(&mut self, bytes: &[u8]) {
        let room = KEPT - self.head.len();
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() >= KEPT {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - KEPT..]);
        } else {
            let over = (self.tail.len() + bytes.len()).saturating_sub(KEPT);
            self.tail.drain(..over);
            self.tail.extend_from_slice(bytes);
        }
    }

    /// The `FileTooLarge` error that reports the message, saying `message`.
    pub(crate) fn into_error(self, message: String) -> io::Error {
        let Skipping { head, tail } = self;
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            Oversized {
                message,
                head,
                tail,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_and_last_bytes_are_kept_whatever_the_pieces() {
        let message: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        for piece in [1, 7, 255, 256, 257, 1000, 2000] {
            let mut skipping = Skipping::default();
            for chunk in message.chunks(piece) {
                skipping.take_in(chunk);
            }
            assert_eq!(skipping.head, &message[..KEPT], "pieces of {piece}");
            assert_eq!(
                skipping.tail,
                &message[message.len() - KEPT..],
                "pieces of {piece}"
            );
        }
        let mut short = Skipping::default();
        short.take_in(b"{\"id\":1}");
        assert_eq!(
            (&short.head[..], &short.tail[..]),
            (&b"{\"id\":1}"[..], &b"{\"id\":1}"[..])
        );
    }
}
