//! Newline framing: one JSON text per line, over tokio-util's bounded `LinesCodec`.

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, LinesCodec, LinesCodecError};

use crate::{invalid_data, too_large};

/// Newline-delimited framing: each frame is one line of UTF-8 text.
///
/// Decoding:
/// - a frame ends at `\n`, and a `\r` just before it is stripped, so `\r\n`
///   line ends work too;
/// - blank lines and lines of JSON whitespace only (space, tab, `\r`) are
///   skipped, never yielded;
/// - a line longer than `max_frame_len` bytes is skipped: as soon as more
///   than `max_frame_len` bytes have arrived without a `\n`, decoding fails
///   with an [`io::ErrorKind::FileTooLarge`] error naming the limit, and the
///   codec then discards the rest of the line as it arrives, up to and
///   including its `\n`, and decodes the lines after it as usual. An endless
///   line is never buffered whole. The limit counts the bytes before the
///   `\n`, including a `\r` if there is one;
/// - a line that is not UTF-8 is an `InvalidData` error;
/// - at end of stream, a last line without `\n` is still a frame.
///
/// `FileTooLarge` is the one error after which decoding goes on; after any
/// other, the framing is lost.
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
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewlineCodec {
    lines: LinesCodec,
    max_frame_len: usize,
}

impl NewlineCodec {
    /// A codec that skips lines longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        NewlineCodec {
            lines: LinesCodec::new_with_max_length(max_frame_len),
            max_frame_len,
        }
    }

    /// The longest line, in bytes, this codec decodes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Turns `LinesCodec`'s errors into the `io::Error`s this crate promises.
    fn map_err(&self, err: LinesCodecError) -> io::Error {
        match err {
            // `LinesCodec` now discards up to the next `\n`, and decodes on.
            // How long the line is cannot be known without reading it.
            LinesCodecError::MaxLineLengthExceeded => too_large(format!(
                "message exceeds the limit of {} bytes",
                self.max_frame_len
            )),
            // `LinesCodec` only makes `InvalidData` itself when a line is
            // not UTF-8; its own message does not say it was a frame.
            LinesCodecError::Io(err) if err.kind() == io::ErrorKind::InvalidData => {
                invalid_data("frame is not UTF-8")
            }
            LinesCodecError::Io(err) => err,
        }
    }
}

/// Whether `line` holds nothing but JSON whitespace (RFC 8259 §2), and so no
/// JSON text: such lines are keep-alives or stray line ends, not frames.
fn is_blank(line: &str) -> bool {
    line.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

impl Decoder for NewlineCodec {
    type Item = String;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        loop {
            match self.lines.decode(src) {
                // A blank line is consumed; look for the next one.
                Ok(Some(line)) if is_blank(&line) => continue,
                // A frame, or no complete line yet.
                Ok(other) => return Ok(other),
                Err(err) => return Err(self.map_err(err)),
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        loop {
            // `LinesCodec::decode_eof` yields the unterminated last line too.
            match self.lines.decode_eof(src) {
                Ok(Some(line)) if is_blank(&line) => continue,
                Ok(other) => return Ok(other),
                Err(err) => return Err(self.map_err(err)),
            }
        }
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
        // Looked for first (memchr-fast): a compact JSON text has no line
        // feed, and a byte-by-byte rewrite cost more than the copy itself.
        if frame.as_bytes().contains(&b'\n') {
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
