//! Newline framing: one JSON text per line, bounded, with lines over the limit skipped as they arrive.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::not_utf8;
use crate::oversized::Skipping;

/// Newline-delimited framing: each frame is one line of UTF-8 text.
///
/// Decoding:
/// - a frame ends at `\n`, and a `\r` just before it is stripped, so `\r\n`
///   line ends work too;
/// - blank lines and lines of JSON whitespace only (space, tab, `\r`) are
///   skipped, never yielded;
/// - a line longer than `max_frame_len` bytes is skipped: once more than
///   `max_frame_len` bytes have arrived without a `\n`, the codec discards
///   the line as it arrives, up to and including its `\n`, keeping only its
///   first and last bytes. Then decoding fails with an
///   [`io::ErrorKind::FileTooLarge`] error naming the limit, which wraps an
///   [`Oversized`](crate::Oversized) holding those bytes, and the lines
///   after it are decoded as usual (a line that the end of the stream
///   ends is reported then). An endless line is never buffered whole. The
///   limit counts the bytes before the `\n`, including a `\r` if there is
///   one;
/// - a line that is not UTF-8 is consumed whole and reported as an
///   [`io::ErrorKind::InvalidData`] error wrapping the
///   [`Utf8Error`](std::str::Utf8Error) (`err.get_ref()` downcasts to it);
///   its `\n` still ended it, so the lines after it are decoded as usual;
/// - at end of stream, a last line without `\n` is still a frame.
///
/// No error of this codec loses the framing: after each one decoding goes on
/// (with this crate's [`Framed`](crate::Framed), which yields errors as items
/// of the stream and reads on; `tokio_util::codec::Framed` ends at any
/// error).
///
/// Encoding writes the text and then `\n`. See [`Encoder::encode`] on this
/// type for what happens to a text that contains a `\n` itself.
///
/// ```
/// use bytes::BytesMut;
/// use rpcpeer_stream::NewlineCodec;
/// use tokio_util::codec::Decoder;
///
/// let mut codec = NewlineCodec::new(64);
/// let mut buf = BytesMut::from("\n{\"a\":1}\r\n  \n[1,");
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some(r#"{"a":1}"#));
/// assert_eq!(codec.decode(&mut buf)?, None); // `[1,` waits for its `\n`
/// buf.extend_from_slice(b"2]");
/// assert_eq!(codec.decode_eof(&mut buf)?.as_deref(), Some("[1,2]"));
///
/// // A line over the limit is refused, and the next one is decoded.
/// let mut codec = NewlineCodec::new(4);
/// let mut buf = BytesMut::from("[1,2,3]\n[4]\n");
/// let err = codec.decode(&mut buf).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
/// assert_eq!(err.to_string(), "message exceeds the limit of 4 bytes");
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some("[4]"));
///
/// // So is a line that is not UTF-8.
/// let mut buf = BytesMut::from(&b"\"\xff\"\n[5]\n"[..]);
/// let err = codec.decode(&mut buf).unwrap_err();
/// assert!(err.get_ref().is_some_and(|e| e.is::<std::str::Utf8Error>()));
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some("[5]"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewlineCodec {
    max_frame_len: usize,
    /// How many bytes at the front of the buffer are known to hold no
    /// `\n`, so that a line arriving in pieces is searched once.
    searched: usize,
    /// Inside a line over the limit: its bytes are dropped up to its `\n`,
    /// all but its first and last ones.
    discarding: Option<Box<Skipping>>,
}

impl NewlineCodec {
    /// A codec that skips lines longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        NewlineCodec {
            max_frame_len,
            searched: 0,
            discarding: None,
        }
    }

    /// The longest line, in bytes, this codec decodes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The next complete line, without its line end.
    ///
    /// NB: not tokio-util's `LinesCodec`, whose UTF-8 check drops the line
    /// with an error that cannot be told from lost framing: a line that is
    /// not UTF-8 is one bad message, and the lines after it are intact.
    fn next_line(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        loop {
            // A `\n` right after `max_frame_len` bytes still ends a line
            // within the limit, so one byte more is searched.
            let end = src.len().min(self.max_frame_len.saturating_add(1));
            let found = memchr::memchr(b'\n', &src[self.searched.min(end)..end])
                .map(|at| self.searched.min(end) + at);
            match (&mut self.discarding, found) {
                // The end of a line being skipped: it is reported now, with
                // its first and last bytes, and decoding goes on after it.
                (Some(skipping), Some(lf)) => {
                    skipping.take_in(&src[..lf]);
                    src.advance(lf + 1);
                    self.searched = 0;
                    let skipped = self.discarding.take().map_or_else(Default::default, |s| *s);
                    return Err(skipped.into_error(format!(
                        "message exceeds the limit of {} bytes",
                        self.max_frame_len
                    )));
                }
                // Still inside it: what has arrived is dropped at once.
                (Some(skipping), None) => {
                    skipping.take_in(&src[..end]);
                    src.advance(end);
                    self.searched = 0;
                    if src.is_empty() {
                        return Ok(None);
                    }
                }
                (None, Some(lf)) => {
                    self.searched = 0;
                    let mut line = src.split_to(lf + 1);
                    line.truncate(lf);
                    if line.last() == Some(&b'\r') {
                        line.truncate(lf - 1);
                    }
                    return Ok(Some(line));
                }
                // Over the limit without a line end: skipped as it arrives,
                // and refused once it has ended.
                (None, None) if src.len() > self.max_frame_len => {
                    self.discarding = Some(Box::default());
                }
                (None, None) => {
                    self.searched = end;
                    return Ok(None);
                }
            }
        }
    }
}

/// Whether `line` holds nothing but JSON whitespace (RFC 8259 §2), and so no
/// JSON text: such lines are keep-alives or stray line ends, not frames.
fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// A line's text, or the error that says it is not UTF-8.
fn text(line: &[u8]) -> io::Result<String> {
    std::str::from_utf8(line)
        .map(str::to_owned)
        .map_err(not_utf8)
}

impl Decoder for NewlineCodec {
    type Item = String;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        loop {
            match self.next_line(src)? {
                // A blank line is consumed; look for the next one.
                Some(line) if is_blank(&line) => continue,
                Some(line) => return text(&line).map(Some),
                None => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        // The stream ended: a last line without `\n` is still a frame
        // (unless it was being skipped, or is blank).
        self.searched = 0;
        // The end ended the line being skipped, as it ends a last line.
        if let Some(skipped) = self.discarding.take() {
            src.clear();
            return Err(skipped.into_error(format!(
                "message exceeds the limit of {} bytes",
                self.max_frame_len
            )));
        }
        let mut line = src.split();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if is_blank(&line) {
            return Ok(None);
        }
        text(&line).map(Some)
    }
}

impl Encoder<String> for NewlineCodec {
    type Error = io::Error;

    /// Writes `frame` and a `\n`.
    ///
    /// A `\n` inside `frame` (a pretty-printed JSON text, say) would cut it
    /// into two frames on the other side, so each one is written as a space.
    /// That keeps a JSON text's meaning: in valid JSON a raw line feed can
    /// only be whitespace between tokens, because inside strings control
    /// characters must be escaped (RFC 8259 §2 and §7).
    fn encode(&mut self, frame: String, dst: &mut BytesMut) -> io::Result<()> {
        dst.reserve(frame.len() + 1);
        let start = dst.len();
        dst.extend_from_slice(frame.as_bytes());
        // Looked for first: a compact JSON text has no line feed, and a
        // byte-by-byte rewrite cost more than the copy itself. (memchr's
        // search, not the slice's own: a vector search from 32 bytes up.)
        if memchr::memchr(b'\n', frame.as_bytes()).is_some() {
            for byte in &mut dst[start..] {
                if *byte == b'\n' {
                    *byte = b' ';
                }
            }
        }
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}
