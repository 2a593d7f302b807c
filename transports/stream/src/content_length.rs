//! Content-Length framing, byte-exact to the LSP base protocol: headers, a blank line, then N bytes of UTF-8.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::oversized::Skipping;
use crate::truncated::Truncated;
use crate::{invalid_data, not_utf8};

/// The longest header block accepted, blank line included. Real peers send
/// one or two short headers; this only stops a peer that never ends them.
const MAX_HEADER_LEN: usize = 8 * 1024;

/// How much room for a body is made at once when its header arrives; the
/// buffer grows as the rest comes in.
///
/// NB: room for the whole declared body at once would let a peer that
/// sends a header and nothing more make this connection hold the limit's
/// worth of memory (16 MiB by default) for 28 bytes.
const RESERVE_AHEAD: usize = 64 * 1024;

/// The largest `Content-Length` taken as a message to skip, 1 TiB: a larger
/// one is a broken header, and skipping it would swallow every message
/// after it, unreported until the connection ends.
const MAX_SKIPPED_LEN: u64 = 1 << 40;

/// LSP-style framing: `Content-Length: N\r\n\r\n` then N bytes of UTF-8 JSON.
///
/// Decoding follows the LSP base protocol's header part:
/// - each header is a `Name: value\r\n` line, and an empty `\r\n` line ends
///   the block; names are matched ignoring ASCII case;
/// - `Content-Length` is required and counts the body's bytes, not its
///   characters. A repeat with the same value is accepted, a different value
///   is an error;
/// - `Content-Type` and any other header are accepted and ignored;
/// - a body longer than `max_frame_len` is skipped: the codec discards
///   exactly that many bytes as they arrive, never buffering or reserving
///   them, keeping only the first and last ones. Then decoding fails with an
///   [`io::ErrorKind::FileTooLarge`] error that names the length and the
///   limit, which wraps an [`Oversized`](crate::Oversized) holding those
///   bytes, and the frames after it are decoded as usual;
/// - a body that is not UTF-8 is consumed whole and reported as an
///   [`io::ErrorKind::InvalidData`] error wrapping the
///   [`Utf8Error`](std::str::Utf8Error) (`err.get_ref()` downcasts to it);
///   its length still told where it ended, so the frames after it are
///   decoded as usual;
/// - a header block over 8 KiB, a line not ended by `\r\n`, a line that is
///   not `Name: value`, a `Content-Length` over 1 TiB, and a stream that
///   ends inside a frame are all errors.
///
/// After those two (a body over the limit, a body not UTF-8) decoding goes
/// on: this crate's [`Framed`](crate::Framed) yields them as items of the
/// stream and reads on, where `tokio_util::codec::Framed` ends at any
/// error. The others mean the framing is lost: they are `InvalidData` with a
/// message of their own, except an early end of stream, which is
/// `UnexpectedEof`. `max_frame_len` only bounds decoding:
/// this codec writes frames of any length.
///
/// ```
/// use bytes::BytesMut;
/// use rpcpeer_stream::ContentLengthCodec;
/// use tokio_util::codec::Decoder;
///
/// let mut codec = ContentLengthCodec::new(1024);
/// let mut buf = BytesMut::from("content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}");
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some("{}"));
///
/// // Over the limit: skipped as it arrives, then refused, and the next
/// // frame is decoded.
/// let mut buf = BytesMut::from("Content-Length: 4096\r\n\r\n");
/// buf.extend_from_slice(&[b'x'; 4000]); // dropped as it arrives
/// assert_eq!(codec.decode(&mut buf)?, None);
/// assert!(buf.is_empty());
/// buf.extend_from_slice(&[b'x'; 96]);
/// buf.extend_from_slice(b"Content-Length: 2\r\n\r\n[]");
/// let err = codec.decode(&mut buf).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
/// assert_eq!(err.to_string(), "message of 4096 bytes exceeds the limit of 1024 bytes");
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some("[]"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContentLengthCodec {
    state: DecodeState,
    max_frame_len: usize,
    /// Bytes of the current header block consumed so far, for the 8 KiB cap.
    header_len: usize,
    /// The `Content-Length` seen so far in the current header block, not yet
    /// checked against the limit.
    content_length: Option<u64>,
    /// The body being skipped (`DecodeState::Skip`): its first and last bytes.
    skipping: Option<Box<(u64, Skipping)>>,
}

/// Where the decoder is inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Reading header lines; each complete line is consumed as it arrives.
    Headers,
    /// The header block is done; the body is this many bytes.
    Body(usize),
    /// A body over the limit: this many of its bytes are still to be
    /// thrown away as they arrive.
    Skip(u64),
}

impl ContentLengthCodec {
    /// A codec that rejects bodies longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        ContentLengthCodec {
            state: DecodeState::Headers,
            max_frame_len,
            header_len: 0,
            content_length: None,
            skipping: None,
        }
    }

    /// The longest body, in bytes, this codec decodes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Takes in one header line, without its `\r\n`.
    fn header_line(&mut self, line: &[u8]) -> io::Result<()> {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(malformed(line));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // RFC 9112 §5.1 forbids whitespace between a field name and its
        // colon; a token check also refuses a line that is not a header.
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(malformed(line));
        }
        if !name.eq_ignore_ascii_case(b"content-length") {
            // LSP: `Content-Type` may name a charset, but only UTF-8 is
            // defined (and "utf8" is accepted for old peers), so it is
            // ignored like any header we don't know.
            return Ok(());
        }
        let len = self.parse_length(trim_ows(value))?;
        match self.content_length {
            // RFC 9110 §8.6: repeats of one value are harmless; differing
            // ones mean we can't know where the body ends.
            Some(previous) if previous != len => Err(invalid_data(format!(
                "conflicting Content-Length headers: {previous} and {len}"
            ))),
            _ => {
                self.content_length = Some(len);
                Ok(())
            }
        }
    }

    /// Parses a `Content-Length` value; the limit is checked once the header
    /// block has ended, since a body over it is skipped, not read.
    fn parse_length(&self, value: &[u8]) -> io::Result<u64> {
        // NB: check the digits by hand: `usize::from_str` would also accept
        // a leading `+`, which is not a valid Content-Length.
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(invalid_data(format!(
                "Content-Length `{}` is not a byte count (expected decimal digits only)",
                shown(value)
            )));
        }
        // Past 1 TiB even skipping is meaningless: no real peer sends that
        // much, so it can only be a broken header.
        std::str::from_utf8(value)
            .ok()
            .and_then(|digits| digits.parse::<u64>().ok())
            .filter(|&len| len <= MAX_SKIPPED_LEN)
            .ok_or_else(|| {
                // NB: the limit a message is refused past is named too: the
                // 1 TiB is only how far a refused body is skipped.
                invalid_data(format!(
                    "Content-Length `{}` is too large to be a message (messages here are at most {} bytes, and no body over {MAX_SKIPPED_LEN} bytes is skipped)",
                    shown(value),
                    self.max_frame_len
                ))
            })
    }
}

impl Decoder for ContentLengthCodec {
    type Item = String;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        loop {
            match self.state {
                DecodeState::Headers => {
                    let budget = MAX_HEADER_LEN - self.header_len;
                    let window = &src[..src.len().min(budget)];
                    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
                        if src.len() >= budget {
                            // Even a `\n` in the next byte would be over the cap.
                            return Err(invalid_data(format!(
                                "header block longer than {MAX_HEADER_LEN} bytes"
                            )));
                        }
                        check_line_start(src)?;
                        return Ok(None); // need more bytes
                    };
                    let line = src.split_to(lf + 1);
                    self.header_len += lf + 1;
                    let Some(line) = line.strip_suffix(b"\r\n") else {
                        return Err(invalid_data(
                            "header line ended by a bare `\\n`; the base protocol requires `\\r\\n`",
                        ));
                    };
                    if !line.is_empty() {
                        // A header line: check it before the next one.
                        check_line_start(line)?;
                        self.header_line(line)?;
                        continue;
                    }
                    // The blank line: the body starts right after it.
                    let Some(len) = self.content_length.take() else {
                        return Err(invalid_data("missing Content-Length header"));
                    };
                    self.header_len = 0;
                    let len = match usize::try_from(len) {
                        Ok(len) if len <= self.max_frame_len => len,
                        // Too big: skip the body rather than end the
                        // connection, which the length lets us do exactly,
                        // and refuse it once it has passed.
                        _ => {
                            self.state = DecodeState::Skip(len);
                            self.skipping = Some(Box::new((len, Skipping::default())));
                            continue;
                        }
                    };
                    src.reserve(len.saturating_sub(src.len()).min(RESERVE_AHEAD));
                    self.state = DecodeState::Body(len);
                }
                // Skipping: what has arrived of the body is dropped at once.
                DecodeState::Skip(left) => {
                    let here = src.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if let Some(skipping) = &mut self.skipping {
                        skipping.1.take_in(&src[..here]);
                    }
                    src.advance(here);
                    // `here` is at most `left`, so this cannot wrap.
                    let left = left - here as u64;
                    if left > 0 {
                        self.state = DecodeState::Skip(left);
                        return Ok(None);
                    }
                    self.state = DecodeState::Headers;
                    let (len, skipped) = *self.skipping.take().unwrap_or_default();
                    return Err(skipped.into_error(format!(
                        "message of {len} bytes exceeds the limit of {} bytes",
                        self.max_frame_len
                    )));
                }
                // Part of the body is still on its way.
                DecodeState::Body(len) if src.len() < len => return Ok(None),
                // The whole body is here: the frame is complete.
                DecodeState::Body(len) => {
                    let body = src.split_to(len);
                    self.state = DecodeState::Headers;
                    // Not UTF-8: one bad message; the next header block
                    // starts right after it all the same.
                    return std::str::from_utf8(&body)
                        .map(|text| Some(text.to_owned()))
                        .map_err(not_utf8);
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<String>> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        match self.state {
            // Between frames: a clean end.
            DecodeState::Headers if src.is_empty() && self.header_len == 0 => Ok(None),
            DecodeState::Headers => Err(Truncated::error(format!(
                "stream ended inside a header block, after {} bytes of it",
                self.header_len + src.len()
            ))),
            DecodeState::Body(len) => Err(Truncated::error(format!(
                "stream ended {} bytes short of a {len} byte frame body",
                len - src.len()
            ))),
            DecodeState::Skip(left) => Err(Truncated::error(format!(
                "stream ended {left} bytes short of the end of a message being skipped"
            ))),
        }
    }
}

impl Encoder<String> for ContentLengthCodec {
    type Error = io::Error;

    /// Writes `Content-Length: {bytes}\r\n\r\n{frame}`; the length counts
    /// UTF-8 bytes.
    fn encode(&mut self, frame: String, dst: &mut BytesMut) -> io::Result<()> {
        let header = format!("Content-Length: {}\r\n\r\n", frame.len());
        dst.reserve(header.len() + frame.len());
        dst.extend_from_slice(header.as_bytes());
        dst.extend_from_slice(frame.as_bytes());
        Ok(())
    }
}

/// Fails early when a header line cannot be one, so that a peer speaking the
/// wrong framing gets a clear error now rather than "header block too long"
/// after 8 KiB.
fn check_line_start(line: &[u8]) -> io::Result<()> {
    match line.first() {
        None => Ok(()),
        Some(&b) if is_tchar(b) || b == b'\r' => Ok(()),
        Some(b'{' | b'[') => Err(invalid_data(
            "expected a Content-Length header, found the start of a JSON text (is the peer using newline framing?)",
        )),
        Some(_) => Err(malformed(line)),
    }
}

/// RFC 9110 §5.6.2: the characters a header name (a token) is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Strips optional whitespace (RFC 9110 §5.6.3: spaces and tabs).
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn malformed(line: &[u8]) -> io::Error {
    invalid_data(format!(
        "malformed header line `{}` (expected `Name: value`)",
        shown(line)
    ))
}

/// Header bytes as text for an error message, cut short so that a hostile
/// header cannot make a huge message.
fn shown(bytes: &[u8]) -> String {
    const MAX_SHOWN: usize = 64;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_SHOWN)]);
    let ellipsis = if bytes.len() > MAX_SHOWN { "…" } else { "" };
    format!("{}{ellipsis}", text.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_ows_strips_spaces_and_tabs_only() {
        assert_eq!(trim_ows(b" \t42 \t"), b"42");
        assert_eq!(trim_ows(b"  "), b"");
        assert_eq!(trim_ows(b"4 2"), b"4 2");
        assert_eq!(trim_ows(b"\r42"), b"\r42");
    }

    #[test]
    fn long_header_values_are_cut_short_in_messages() {
        let err = malformed(&[b'x'; 1000]);
        assert!(err.to_string().len() < 200, "{err}");
        assert!(err.to_string().contains('…'), "{err}");
    }

    #[test]
    fn header_bookkeeping_resets_between_frames() {
        let mut codec = ContentLengthCodec::new(64);
        let buf = &mut BytesMut::from("Content-Length: 2\r\n\r\n{}");
        assert_eq!(codec.decode(buf).ok().flatten().as_deref(), Some("{}"));
        assert_eq!(codec.state, DecodeState::Headers);
        assert_eq!(codec.header_len, 0);
        assert_eq!(codec.content_length, None);
    }
}
