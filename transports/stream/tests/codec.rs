//! Byte-literal tests of both framings: decoding, encoding, split reads, limits and broken input.

use std::io;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use rpcpeer_stream::{
    framed, ContentLengthCodec, FrameCodec, Framing, NewlineCodec, Oversized, DEFAULT_MAX_FRAME_LEN,
};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, Encoder};

const MIB: usize = 1024 * 1024;

/// Fails the test instead of hanging it when a frame never comes: a guard,
/// not a wait (every test here finishes in milliseconds).
async fn within_deadline<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

/// Decodes every complete frame in `buf`, failing the test on an error.
fn drain<D>(codec: &mut D, buf: &mut BytesMut, frames: &mut Vec<String>)
where
    D: Decoder<Item = String, Error = io::Error>,
{
    while let Some(frame) = codec.decode(buf).expect("decode failed") {
        frames.push(frame);
    }
}

/// Feeds `input` to a fresh codec in the given chunks, then ends the stream.
fn decode_chunks<D>(mut codec: D, chunks: &[&[u8]]) -> Vec<String>
where
    D: Decoder<Item = String, Error = io::Error>,
{
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        drain(&mut codec, &mut buf, &mut frames);
    }
    while let Some(frame) = codec.decode_eof(&mut buf).expect("decode_eof failed") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    frames
}

/// Checks that `input` decodes to `expected` however it is cut into reads:
/// in two reads at every split point, and one byte per read.
fn assert_decodes_at_every_split<D>(new_codec: impl Fn() -> D, input: &[u8], expected: &[&str])
where
    D: Decoder<Item = String, Error = io::Error>,
{
    for split in 0..=input.len() {
        let (head, tail) = input.split_at(split);
        let frames = decode_chunks(new_codec(), &[head, tail]);
        assert_eq!(frames, expected, "split at byte {split}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        decode_chunks(new_codec(), &bytes),
        expected,
        "one byte per read"
    );
}

/// Decodes `input` expecting an error, and returns it.
fn decode_err<D>(codec: &mut D, input: &[u8]) -> io::Error
where
    D: Decoder<Item = String, Error = io::Error>,
{
    let mut buf = BytesMut::from(input);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {input:?}"),
            Err(err) => return err,
        }
    }
}

fn assert_invalid_data(err: &io::Error, needle: &str) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains(needle), "`{err}` lacks `{needle}`");
}

/// A message that is not UTF-8: consumed, and decoding goes on; the error
/// wraps the `Utf8Error`, which is how it is told from lost framing.
fn is_not_utf8(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::InvalidData
        && err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>())
}

/// A message over the limit: skipped, and decoding goes on.
fn assert_too_large(err: &io::Error, message: &str) {
    assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
    assert_eq!(err.to_string(), message);
}

/// Everything a codec yields for `chunks` then the end of the stream:
/// frames as `Ok`, skipped messages as `Err` with the error's text. Fails
/// the test on any other error.
fn items_of<D>(mut codec: D, chunks: &[&[u8]]) -> Vec<Result<String, String>>
where
    D: Decoder<Item = String, Error = io::Error>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let take = |decoded: io::Result<Option<String>>, items: &mut Vec<_>| match decoded {
        Ok(Some(frame)) => {
            items.push(Ok(frame));
            true
        }
        Ok(None) => false,
        Err(err) if err.kind() == io::ErrorKind::FileTooLarge || is_not_utf8(&err) => {
            items.push(Err(err.to_string()));
            true
        }
        Err(err) => panic!("decoding failed: {err}"),
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while take(codec.decode(&mut buf), &mut items) {}
    }
    while take(codec.decode_eof(&mut buf), &mut items) {}
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    items
}

/// Checks that `input` gives `expected` however it is cut into reads, as
/// [`assert_decodes_at_every_split`] does, skipped messages included.
fn assert_items_at_every_split<D>(
    new_codec: impl Fn() -> D,
    input: &[u8],
    expected: &[Result<&str, &str>],
) where
    D: Decoder<Item = String, Error = io::Error>,
{
    let expected: Vec<Result<String, String>> = expected
        .iter()
        .map(|item| item.map(str::to_owned).map_err(str::to_owned))
        .collect();
    for split in 0..=input.len() {
        let (head, tail) = input.split_at(split);
        assert_eq!(
            items_of(new_codec(), &[head, tail]),
            expected,
            "split at byte {split}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(items_of(new_codec(), &bytes), expected, "one byte per read");
}

/// Feeds `total` bytes of `x` in `chunk` byte reads, checking after each
/// that the codec held none of them, and returns what it decoded.
fn feed_filler<D>(codec: &mut D, buf: &mut BytesMut, total: usize, chunk: usize) -> Vec<String>
where
    D: Decoder<Item = String, Error = io::Error>,
{
    let mut frames = Vec::new();
    let filler = vec![b'x'; chunk];
    let mut sent = 0;
    while sent < total {
        let n = chunk.min(total - sent);
        buf.extend_from_slice(&filler[..n]);
        sent += n;
        drain(codec, buf, &mut frames);
        assert!(buf.is_empty(), "{} skipped bytes were kept", buf.len());
    }
    frames
}

fn encode<E: Encoder<String, Error = io::Error>>(codec: &mut E, frame: &str) -> BytesMut {
    let mut buf = BytesMut::new();
    codec
        .encode(frame.to_owned(), &mut buf)
        .expect("encode failed");
    buf
}

// ---- Newline ----

#[test]
fn newline_decodes_one_frame_per_line() {
    let mut codec = NewlineCodec::new(64);
    let buf = &mut BytesMut::from(&b"{\"a\":1}\n[1,2]\n\"x\""[..]);
    assert_eq!(
        codec.decode(buf).expect("decode").as_deref(),
        Some(r#"{"a":1}"#)
    );
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("[1,2]"));
    // The last line has no `\n` yet: wait for it.
    assert_eq!(codec.decode(buf).expect("decode"), None);
    assert_eq!(&buf[..], b"\"x\"");
}

#[test]
fn newline_frames_split_at_every_byte() {
    assert_decodes_at_every_split(
        || NewlineCodec::new(64),
        "{\"a\":1}\n\r\n  \n\"héllo ✓\"\r\n[]".as_bytes(),
        &[r#"{"a":1}"#, "\"héllo ✓\"", "[]"],
    );
}

#[test]
fn newline_several_frames_in_one_read() {
    let frames = decode_chunks(NewlineCodec::new(64), &[b"1\n2\n3\n4\n"]);
    assert_eq!(frames, ["1", "2", "3", "4"]);
}

#[test]
fn newline_strips_only_the_carriage_return_before_the_line_feed() {
    let frames = decode_chunks(NewlineCodec::new(64), &[b"{}\r\n\"a\rb\"\n[]\r\r\n"]);
    assert_eq!(frames, ["{}", "\"a\rb\"", "[]\r"]);
}

#[test]
fn newline_skips_blank_and_whitespace_only_lines() {
    let frames = decode_chunks(NewlineCodec::new(64), &[b"\n\r\n \t \r\n{}\n\n\n  "]);
    assert_eq!(frames, ["{}"]);
    // Only blank lines: no frame at all, not even at the end of the stream.
    assert!(decode_chunks(NewlineCodec::new(64), &[b"\n \n\t\r\n \r"]).is_empty());
}

#[test]
fn newline_yields_the_unterminated_last_line_at_eof() {
    let mut codec = NewlineCodec::new(64);
    let buf = &mut BytesMut::from(&b"[1]\n\n{\"last\":true}\r"[..]);
    assert_eq!(codec.decode_eof(buf).expect("eof").as_deref(), Some("[1]"));
    assert_eq!(
        codec.decode_eof(buf).expect("eof").as_deref(),
        Some(r#"{"last":true}"#)
    );
    assert_eq!(codec.decode_eof(buf).expect("eof"), None);
}

#[test]
fn newline_limit_counts_bytes_not_chars() {
    let text = "\"héllo ✓\""; // 9 chars, 12 bytes
    assert_eq!(text.len(), 12);
    let input = format!("{text}\n");
    assert_eq!(
        decode_chunks(NewlineCodec::new(12), &[input.as_bytes()]),
        [text]
    );
    let err = decode_err(&mut NewlineCodec::new(11), input.as_bytes());
    assert_too_large(&err, "message exceeds the limit of 11 bytes");
}

#[test]
fn newline_drops_a_long_line_as_it_arrives_and_refuses_it_at_its_end() {
    let mut codec = NewlineCodec::new(16);
    let buf = &mut BytesMut::from(&[b'x'; 16][..]);
    // Exactly at the limit, a `\n` may still come.
    assert_eq!(codec.decode(buf).expect("decode"), None);
    // One byte more and no `\n` in sight: dropped now, refused once the
    // line has ended, so that the refusal can say whose line it was.
    buf.extend_from_slice(b"x");
    assert_eq!(codec.decode(buf).expect("17 bytes: skipped"), None);
    assert!(buf.is_empty(), "{} bytes of it kept", buf.len());
    buf.extend_from_slice(b"y\n");
    let err = codec.decode(buf).expect_err("the line has ended");
    assert_too_large(&err, "message exceeds the limit of 16 bytes");
}

#[test]
fn newline_reports_an_oversize_last_line_that_the_end_cuts_off() {
    let mut codec = NewlineCodec::new(4);
    let buf = &mut BytesMut::from(&b"[1]\n123456789"[..]);
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("[1]"));
    assert_eq!(codec.decode(buf).expect("skipped"), None);
    let err = codec.decode_eof(buf).expect_err("the end ended it");
    assert_too_large(&err, "message exceeds the limit of 4 bytes");
    assert_eq!(codec.decode_eof(buf).expect("the end"), None);
}

#[test]
fn newline_skips_an_oversize_line_in_one_read_and_decodes_the_next() {
    let mut input = vec![b'x'; MIB + 1];
    input.extend_from_slice(b"\n[1]\n");
    let mut codec = NewlineCodec::new(MIB);
    let buf = &mut BytesMut::from(&input[..]);
    let err = codec.decode(buf).expect_err("over the limit");
    assert_too_large(&err, &format!("message exceeds the limit of {MIB} bytes"));
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("[1]"));
    assert_eq!(codec.decode(buf).expect("decode"), None);
}

#[test]
fn newline_skips_an_oversize_line_without_holding_it() {
    let mut codec = NewlineCodec::new(64);
    let buf = &mut BytesMut::from(&br#"{"jsonrpc":"2.0","result":""#[..]);
    // Ten MiB more of the same line: dropped as it comes.
    assert!(feed_filler(&mut codec, buf, 10 * MIB, 64 * 1024).is_empty());
    buf.extend_from_slice(b"\",\"id\":7}\n{\"next\":1}\n");
    let err = codec.decode(buf).expect_err("over the limit");
    assert_too_large(&err, "message exceeds the limit of 64 bytes");
    // Its first and last bytes are kept, where its id usually is.
    let skipped = oversized(&err);
    assert!(skipped
        .head()
        .starts_with(br#"{"jsonrpc":"2.0","result":"xx"#));
    assert!(skipped.tail().ends_with(br#"xx","id":7}"#));
    assert_eq!((skipped.head().len(), skipped.tail().len()), (256, 256));
    assert_eq!(
        codec.decode(buf).expect("decode").as_deref(),
        Some(r#"{"next":1}"#)
    );
}

/// The `Oversized` inside a skipped message's error.
fn oversized(err: &io::Error) -> &Oversized {
    let inner = err.get_ref().expect("an inner error");
    inner.downcast_ref::<Oversized>().expect("an Oversized")
}

#[test]
fn newline_skipped_lines_split_at_every_byte() {
    assert_items_at_every_split(
        || NewlineCodec::new(4),
        b"[1]\n[1,2,3]\r\n[2]\n123456789\n\n[3]",
        &[
            Ok("[1]"),
            Err("message exceeds the limit of 4 bytes"),
            Ok("[2]"),
            Err("message exceeds the limit of 4 bytes"),
            Ok("[3]"),
        ],
    );
}

#[test]
fn newline_rejects_invalid_utf8() {
    let err = decode_err(&mut NewlineCodec::new(64), b"\"\xff\xfe\"\n");
    assert!(is_not_utf8(&err), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid utf-8 sequence of 1 bytes from index 1"
    );
    // A multi-byte character cut short by the end of the line.
    let err = decode_err(&mut NewlineCodec::new(64), b"\"\xe2\x9c\"\n");
    assert!(is_not_utf8(&err), "{err}");
}

#[test]
fn newline_lines_that_are_not_utf8_are_skipped_at_every_split() {
    assert_items_at_every_split(
        || NewlineCodec::new(16),
        b"[1]\n\"\xff\"\r\n[2]\n\"\xe2\x9c\"\n[3]",
        &[
            Ok("[1]"),
            Err("invalid utf-8 sequence of 1 bytes from index 1"),
            Ok("[2]"),
            Err("invalid utf-8 sequence of 2 bytes from index 1"),
            Ok("[3]"),
        ],
    );
}

#[test]
fn newline_encodes_the_text_and_a_line_feed() {
    let mut codec = NewlineCodec::new(64);
    assert_eq!(&encode(&mut codec, r#"{"a":1}"#)[..], b"{\"a\":1}\n");
    assert_eq!(
        &encode(&mut codec, "\"héllo ✓\"")[..],
        "\"héllo ✓\"\n".as_bytes()
    );
    assert_eq!(&encode(&mut codec, "")[..], b"\n");
}

#[test]
fn newline_encodes_a_pretty_printed_text_as_one_line() {
    let mut codec = NewlineCodec::new(64);
    let pretty = "{\n  \"a\": \"x\\ny\"\r\n}";
    let mut buf = encode(&mut codec, pretty);
    assert_eq!(&buf[..], b"{   \"a\": \"x\\ny\"\r }\n");
    // It comes back as one frame, not three.
    let frames = decode_chunks(NewlineCodec::new(64), &[&buf.split()[..]]);
    assert_eq!(frames, ["{   \"a\": \"x\\ny\"\r }"]);
}

// ---- Content-Length ----

#[test]
fn content_length_decodes_a_frame() {
    let mut codec = ContentLengthCodec::new(64);
    let buf = &mut BytesMut::from(&b"Content-Length: 7\r\n\r\n{\"a\":1}Content-Length: 2\r\n"[..]);
    assert_eq!(
        codec.decode(buf).expect("decode").as_deref(),
        Some(r#"{"a":1}"#)
    );
    assert_eq!(codec.decode(buf).expect("decode"), None);
    buf.extend_from_slice(b"\r\n[]");
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("[]"));
    assert!(buf.is_empty());
}

#[test]
fn content_length_frames_split_at_every_byte() {
    let input = concat!(
        "Content-Length: 7\r\n\r\n{\"a\":1}",
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: 12\r\n\r\n\"héllo ✓\"",
        "Content-Length: 0\r\n\r\n",
        "CONTENT-LENGTH:2\r\n\r\n[]",
    );
    assert_decodes_at_every_split(
        || ContentLengthCodec::new(64),
        input.as_bytes(),
        &[r#"{"a":1}"#, "\"héllo ✓\"", "", "[]"],
    );
}

#[test]
fn content_length_several_frames_in_one_read() {
    let input = b"Content-Length: 1\r\n\r\n1Content-Length: 1\r\n\r\n2Content-Length: 3\r\n\r\n[3]";
    assert_eq!(
        decode_chunks(ContentLengthCodec::new(64), &[input]),
        ["1", "2", "[3]"]
    );
}

#[test]
fn content_length_counts_bytes_not_chars() {
    let text = "\"héllo ✓\""; // 9 chars, 12 bytes
    let mut codec = ContentLengthCodec::new(64);
    let encoded = encode(&mut codec, text);
    assert_eq!(
        &encoded[..],
        "Content-Length: 12\r\n\r\n\"héllo ✓\"".as_bytes()
    );
    assert_eq!(
        decode_chunks(ContentLengthCodec::new(64), &[&encoded[..]]),
        [text]
    );
    // A peer that counted chars cuts `✓` in half: the body is not UTF-8.
    let wrong = format!("Content-Length: 9\r\n\r\n{text}");
    let err = decode_err(&mut ContentLengthCodec::new(64), wrong.as_bytes());
    assert!(is_not_utf8(&err), "{err}");
}

#[test]
fn content_length_ignores_header_case_content_type_and_unknown_headers() {
    let input = concat!(
        "X-Trace: abc:def\r\n",
        "cOnTeNt-LeNgTh: \t2 \r\n",
        "Content-Type: application/vscode-jsonrpc; charset=utf8\r\n",
        "\r\n{}"
    );
    assert_eq!(
        decode_chunks(ContentLengthCodec::new(64), &[input.as_bytes()]),
        ["{}"]
    );
}

#[test]
fn content_length_accepts_a_repeated_equal_length() {
    let input = b"Content-Length: 2\r\ncontent-length: 02\r\n\r\n{}";
    assert_eq!(decode_chunks(ContentLengthCodec::new(64), &[input]), ["{}"]);
}

#[test]
fn content_length_rejects_conflicting_lengths() {
    let err = decode_err(
        &mut ContentLengthCodec::new(64),
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    );
    assert_invalid_data(&err, "conflicting Content-Length headers: 2 and 3");
}

#[test]
fn content_length_rejects_a_missing_length() {
    let err = decode_err(
        &mut ContentLengthCodec::new(64),
        b"Content-Type: application/json\r\n\r\n{}",
    );
    assert_invalid_data(&err, "missing Content-Length header");
    // No headers at all.
    let err = decode_err(&mut ContentLengthCodec::new(64), b"\r\n{}");
    assert_invalid_data(&err, "missing Content-Length header");
}

#[test]
fn content_length_rejects_lengths_that_are_not_decimal_digits() {
    for value in ["abc", "-5", "+5", "", "5 5", "0x10", "5.0", "１"] {
        let input = format!("Content-Length: {value}\r\n\r\n{{}}");
        let err = decode_err(&mut ContentLengthCodec::new(64), input.as_bytes());
        assert_invalid_data(&err, "is not a byte count");
        assert!(err.to_string().contains(&format!("`{value}`")), "{err}");
    }
}

#[test]
fn content_length_rejects_malformed_header_lines() {
    for line in [
        "Content-Length 2",
        "Content-Length : 2",
        ": 2",
        " Content-Length: 2",
    ] {
        let input = format!("{line}\r\n\r\n{{}}");
        let err = decode_err(&mut ContentLengthCodec::new(64), input.as_bytes());
        assert_invalid_data(&err, "malformed header line");
    }
}

#[test]
fn content_length_rejects_bare_line_feeds() {
    let err = decode_err(&mut ContentLengthCodec::new(64), b"Content-Length: 2\n\n{}");
    assert_invalid_data(&err, "bare `\\n`");
}

#[test]
fn content_length_rejects_newline_framed_json_at_its_first_byte() {
    let err = decode_err(&mut ContentLengthCodec::new(64), b"{");
    assert_invalid_data(&err, "is the peer using newline framing?");
}

#[test]
fn content_length_never_reserves_an_oversize_body() {
    let mut codec = ContentLengthCodec::new(MIB);
    let buf = &mut BytesMut::from(&b"Content-Length: 1073741824\r\n\r\n"[..]);
    assert_eq!(
        codec
            .decode(buf)
            .expect("1 GiB over a 1 MiB limit: skipped"),
        None
    );
    assert!(buf.capacity() < MIB, "reserved {} bytes", buf.capacity());
}

#[test]
fn content_length_skips_exactly_the_oversize_body_without_holding_it() {
    let body = 10 * MIB + 3;
    let mut codec = ContentLengthCodec::new(1024);
    let buf = &mut BytesMut::from(format!("Content-Length: {body}\r\n\r\n{{").as_bytes());
    assert!(feed_filler(&mut codec, buf, body - 2, 64 * 1024).is_empty());
    // The body's last byte ends it: refused now, with its first and last
    // bytes.
    buf.extend_from_slice(b"}");
    let err = codec.decode(buf).expect_err("over the limit");
    assert_too_large(
        &err,
        &format!("message of {body} bytes exceeds the limit of 1024 bytes"),
    );
    let skipped = oversized(&err);
    assert!(skipped.head().starts_with(b"{xxx") && skipped.tail().ends_with(b"xxx}"));
    // The body's last byte was the last skipped: the next frame starts here.
    buf.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("{}"));
}

#[test]
fn content_length_skipped_bodies_split_at_every_byte() {
    assert_items_at_every_split(
        || ContentLengthCodec::new(4),
        b"Content-Length: 4\r\n\r\n1234Content-Length: 5\r\n\r\n\r\n\r\n\rContent-Length: 2\r\n\r\n{}",
        &[
            Ok("1234"),
            Err("message of 5 bytes exceeds the limit of 4 bytes"),
            Ok("{}"),
        ],
    );
}

#[test]
fn content_length_eof_while_skipping_is_an_error() {
    let mut codec = ContentLengthCodec::new(4);
    let buf = &mut BytesMut::from(&b"Content-Length: 10\r\n\r\n123"[..]);
    assert_eq!(codec.decode(buf).expect("over the limit: skipped"), None);
    let err = codec.decode_eof(buf).expect_err("stream ended mid-body");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(
        err.to_string(),
        "stream ended 7 bytes short of the end of a message being skipped"
    );
}

#[test]
fn content_length_rejects_a_length_too_big_to_be_a_message() {
    let input = b"Content-Length: 99999999999999999999999999\r\n\r\n";
    let err = decode_err(&mut ContentLengthCodec::new(64), input);
    assert_invalid_data(
        &err,
        "Content-Length `99999999999999999999999999` is too large to be a message (messages here are at most 64 bytes, and no body over 1099511627776 bytes is skipped)",
    );
    // One that fits in 64 bits but no message has: skipping it would
    // swallow every message after it.
    let input = b"Content-Length: 18446744073709551615\r\n\r\n";
    let err = decode_err(&mut ContentLengthCodec::new(64), input);
    assert_invalid_data(
        &err,
        "Content-Length `18446744073709551615` is too large to be a message (messages here are at most 64 bytes, and no body over 1099511627776 bytes is skipped)",
    );
}

#[test]
fn content_length_reads_a_length_with_many_leading_zeros() {
    let input = format!("Content-Length: {}2\r\n\r\n{{}}", "0".repeat(70));
    let mut codec = ContentLengthCodec::new(64);
    let buf = &mut BytesMut::from(input.as_bytes());
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("{}"));
}

#[test]
fn content_length_makes_room_for_a_body_as_it_arrives() {
    // A header alone, promising a body within the limit: the buffer does
    // not grow to the body's size before the body comes.
    let mut codec = ContentLengthCodec::new(256 * MIB);
    let buf = &mut BytesMut::from(&b"Content-Length: 209715200\r\n\r\n"[..]);
    assert_eq!(codec.decode(buf).expect("a body to wait for"), None);
    assert!(buf.capacity() < MIB, "reserved {} bytes", buf.capacity());
}

#[test]
fn content_length_accepts_a_length_at_the_limit() {
    let input = b"Content-Length: 4\r\n\r\n1234Content-Length: 5\r\n\r\n12345";
    let mut codec = ContentLengthCodec::new(4);
    let buf = &mut BytesMut::from(&input[..]);
    assert_eq!(codec.decode(buf).expect("decode").as_deref(), Some("1234"));
    let err = codec.decode(buf).expect_err("5 bytes over a 4 byte limit");
    assert_too_large(&err, "message of 5 bytes exceeds the limit of 4 bytes");
}

/// A header block of exactly `block_len` bytes, blank line included, for a
/// two byte body.
fn header_block_of(block_len: usize) -> String {
    let fixed = "Content-Length: 2\r\nX-Pad: \r\n\r\n".len();
    let pad = "a".repeat(block_len - fixed);
    format!("Content-Length: 2\r\nX-Pad: {pad}\r\n\r\n")
}

#[test]
fn content_length_header_block_may_be_8_kib() {
    let input = header_block_of(8 * 1024) + "{}";
    assert_eq!(
        decode_chunks(ContentLengthCodec::new(64), &[input.as_bytes()]),
        ["{}"]
    );
}

#[test]
fn content_length_rejects_a_header_block_over_8_kib() {
    let input = header_block_of(8 * 1024 + 1) + "{}";
    let err = decode_err(&mut ContentLengthCodec::new(64), input.as_bytes());
    assert_invalid_data(&err, "header block longer than 8192 bytes");
}

#[test]
fn content_length_rejects_an_endless_header_line_without_waiting_for_its_end() {
    let mut codec = ContentLengthCodec::new(64);
    let buf = &mut BytesMut::from("X-Pad: ");
    buf.extend_from_slice(&[b'a'; 8 * 1024]);
    let err = codec.decode(buf).expect_err("8 KiB without a line end");
    assert_invalid_data(&err, "header block longer than 8192 bytes");
}

#[test]
fn content_length_rejects_a_body_that_is_not_utf8() {
    let err = decode_err(
        &mut ContentLengthCodec::new(64),
        b"Content-Length: 2\r\n\r\n\xc3\x28",
    );
    assert!(is_not_utf8(&err), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid utf-8 sequence of 1 bytes from index 0"
    );
}

#[test]
fn content_length_bodies_that_are_not_utf8_are_skipped_at_every_split() {
    assert_items_at_every_split(
        || ContentLengthCodec::new(16),
        b"Content-Length: 3\r\n\r\n[1]Content-Length: 2\r\n\r\n\xc3\x28Content-Length: 3\r\n\r\n[2]",
        &[
            Ok("[1]"),
            Err("invalid utf-8 sequence of 1 bytes from index 0"),
            Ok("[2]"),
        ],
    );
}

#[test]
fn content_length_eof_in_the_body_names_the_missing_bytes() {
    let mut codec = ContentLengthCodec::new(64);
    let buf = &mut BytesMut::from(&b"Content-Length: 10\r\n\r\n{\"a\""[..]);
    assert_eq!(codec.decode(buf).expect("decode"), None);
    let err = codec.decode_eof(buf).expect_err("stream ended mid-body");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(
        err.to_string(),
        "stream ended 6 bytes short of a 10 byte frame body"
    );
}

#[test]
fn content_length_eof_in_the_headers_is_an_error() {
    for input in [
        &b"Content-Len"[..],
        b"Content-Length: 2\r\n",
        b"Content-Length: 2\r\n\r",
    ] {
        let mut codec = ContentLengthCodec::new(64);
        let err = codec
            .decode_eof(&mut BytesMut::from(input))
            .expect_err("stream ended mid-headers");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("header block"), "{err}");
    }
}

#[test]
fn content_length_eof_between_frames_is_a_clean_end() {
    let mut codec = ContentLengthCodec::new(64);
    let buf = &mut BytesMut::from(&b"Content-Length: 2\r\n\r\n{}"[..]);
    assert_eq!(codec.decode_eof(buf).expect("eof").as_deref(), Some("{}"));
    assert_eq!(codec.decode_eof(buf).expect("eof"), None);
}

#[test]
fn content_length_encodes_header_and_body() {
    let mut codec = ContentLengthCodec::new(64);
    assert_eq!(
        &encode(&mut codec, r#"{"a":1}"#)[..],
        b"Content-Length: 7\r\n\r\n{\"a\":1}"
    );
    assert_eq!(&encode(&mut codec, "")[..], b"Content-Length: 0\r\n\r\n");
}

// ---- Framing, FrameCodec and framed ----

#[test]
fn framing_parses_its_two_names_and_lists_them_on_error() {
    assert_eq!("newline".parse::<Framing>(), Ok(Framing::Newline));
    assert_eq!(
        "content-length".parse::<Framing>(),
        Ok(Framing::ContentLength)
    );
    assert_eq!(
        "Content-Length".parse::<Framing>(),
        Ok(Framing::ContentLength)
    );
    let err = "lsp".parse::<Framing>().expect_err("unknown name");
    assert_eq!(
        err.to_string(),
        "unknown framing `lsp`: expected `newline` or `content-length`"
    );
    for framing in [Framing::Newline, Framing::ContentLength] {
        assert_eq!(framing.to_string().parse::<Framing>(), Ok(framing));
    }
    assert_eq!(Framing::default(), Framing::Newline);
    assert_eq!(Framing::ContentLength.to_string(), "content-length");
}

#[test]
fn frame_codec_delegates_to_the_chosen_framing() {
    for (framing, wire) in [
        (Framing::Newline, &b"[1]\n"[..]),
        (Framing::ContentLength, &b"Content-Length: 3\r\n\r\n[1]"[..]),
    ] {
        let mut codec = FrameCodec::new(framing, 7);
        assert_eq!(codec.framing(), framing);
        assert_eq!(codec.max_frame_len(), 7);
        assert_eq!(&encode(&mut codec, "[1]")[..], wire, "{framing}");
        assert_eq!(
            decode_chunks(FrameCodec::new(framing, 7), &[wire]),
            ["[1]"],
            "{framing}"
        );
        let err = decode_err(&mut FrameCodec::new(framing, 2), wire);
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{framing}: {err}");
        assert!(
            err.to_string().ends_with("exceeds the limit of 2 bytes"),
            "{framing}: {err}"
        );
    }
}

#[test]
fn default_limit_is_16_mib() {
    assert_eq!(DEFAULT_MAX_FRAME_LEN, 16 * MIB);
}

#[tokio::test]
async fn framed_carries_frames_both_ways_in_both_framings() {
    within_deadline(async {
        for framing in [Framing::Newline, Framing::ContentLength] {
            let (a, b) = tokio::io::duplex(64);
            let (mut a, mut b) = (framed(a, framing, 1024), framed(b, framing, 1024));
            // Bigger than the duplex buffer, so the write has to wait for reads.
            let big = format!("\"{}\"", "✓".repeat(100));
            let (sent, received) = tokio::join!(a.send(big.clone()), b.next());
            sent.expect("send");
            assert_eq!(
                received.expect("a frame").expect("no error"),
                big,
                "{framing}"
            );
            b.send("{\"back\":true}".to_owned())
                .await
                .expect("send back");
            let back = a.next().await.expect("a frame").expect("no error");
            assert_eq!(back, r#"{"back":true}"#, "{framing}");
            drop(b);
            assert!(
                a.next().await.is_none(),
                "{framing}: stream ends with the peer"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn framed_stream_yields_the_error_then_ends() {
    within_deadline(async {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let mut conn = framed(reader, Framing::ContentLength, 1024);
        writer
            .write_all(b"Content-Length: 2\r\n\r\n{}Content-Length: 10\r\n\r\n{\"a\"")
            .await
            .expect("write");
        drop(writer);
        assert_eq!(conn.next().await.expect("a frame").expect("no error"), "{}");
        let err = conn
            .next()
            .await
            .expect("an item")
            .expect_err("truncated frame");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(conn.next().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn framed_stream_stays_ended_once_the_framing_is_lost() {
    within_deadline(async {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let mut conn = framed(reader, Framing::ContentLength, 1024);
        // Two lengths: where the body ends is unknown, so nothing after it
        // may be read as a message, however often the stream is polled.
        writer
            .write_all(b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n[1,2]")
            .await
            .expect("write");
        let err = conn
            .next()
            .await
            .expect("an item")
            .expect_err("conflicting lengths");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(conn.next().await.is_none());
        writer
            .write_all(b"Content-Length: 2\r\n\r\n{}")
            .await
            .expect("write");
        assert!(conn.next().await.is_none(), "read on after the end");
    })
    .await;
}

#[tokio::test]
async fn framed_stream_skips_an_oversize_message_and_goes_on() {
    within_deadline(async {
        for (framing, wire, error) in [
            (
                Framing::Newline,
                &b"[1]\n[1,2,3,4,5,6,7,8,9]\n[2]\n"[..],
                "message exceeds the limit of 8 bytes",
            ),
            (
                Framing::ContentLength,
                b"Content-Length: 3\r\n\r\n[1]Content-Length: 19\r\n\r\n[1,2,3,4,5,6,7,8,9]Content-Length: 3\r\n\r\n[2]",
                "message of 19 bytes exceeds the limit of 8 bytes",
            ),
        ] {
            let (mut writer, reader) = tokio::io::duplex(1024);
            let mut conn = framed(reader, framing, 8);
            writer.write_all(wire).await.expect("write");
            drop(writer);
            assert_eq!(conn.next().await.expect("a frame").expect("no error"), "[1]");
            let err = conn
                .next()
                .await
                .expect("an item")
                .expect_err("over the limit");
            assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{framing}: {err}");
            assert_eq!(err.to_string(), error, "{framing}");
            assert_eq!(
                conn.next().await.expect("a frame").expect("no error"),
                "[2]",
                "{framing}: the stream goes on after the skipped message"
            );
            assert!(conn.next().await.is_none(), "{framing}");
        }
    })
    .await;
}

#[tokio::test]
async fn framed_with_max_frame_len_replaces_the_limit() {
    let (a, _b) = tokio::io::duplex(64);
    let conn = framed(a, Framing::ContentLength, 1024).with_max_frame_len(7);
    assert_eq!(conn.codec().max_frame_len(), 7);
    assert_eq!(conn.codec().framing(), Framing::ContentLength);
    assert_eq!(conn.idle_timeout(), None, "no idle timeout unless set");
}

/// Paused time: the clock moves only when every task waits, straight to
/// the next timer, so these tests are exact and take no real time.
mod idle {
    use std::time::Duration;

    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_restarts_at_each_complete_message() {
        let (a, b) = tokio::io::duplex(1024);
        let mut client = framed(a, Framing::Newline, 1024);
        let mut server = framed(b, Framing::Newline, 1024).with_idle_timeout(Some(IDLE));
        assert_eq!(server.idle_timeout(), Some(IDLE));
        for n in 0..3 {
            // 8 s each time: 24 s in all, over the 10 s, but never 10 s
            // without a message.
            tokio::time::advance(Duration::from_secs(8)).await;
            client.send(format!("[{n}]")).await.expect("send");
            let frame = server.next().await.expect("a frame").expect("not idle");
            assert_eq!(frame, format!("[{n}]"));
        }
        let err = server.next().await.expect("an item").expect_err("idle");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("idle"), "{err}");
        assert!(server.next().await.is_none(), "the stream ends after it");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_that_never_make_a_message_do_not_count() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut server = framed(b, Framing::ContentLength, 1024).with_idle_timeout(Some(IDLE));
        let trickle = async {
            // One byte every 2 s of a header block that never ends.
            for byte in b"Content-Length: 99999" {
                a.write_all(&[*byte]).await.expect("write");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            a
        };
        let (item, _a) = tokio::join!(server.next(), trickle);
        let err = item.expect("an item").expect_err("idle");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_skipped_message_counts_as_one() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut server = framed(b, Framing::Newline, 4).with_idle_timeout(Some(IDLE));
        tokio::time::advance(Duration::from_secs(8)).await;
        a.write_all(b"[1,2,3]\n").await.expect("write");
        let err = server
            .next()
            .await
            .expect("an item")
            .expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
        tokio::time::advance(Duration::from_secs(8)).await;
        a.write_all(b"[4]\n").await.expect("write");
        assert_eq!(
            server.next().await.expect("a frame").expect("not idle"),
            "[4]"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_idle_timeout_is_none() {
        let (_a, b) = tokio::io::duplex(64);
        let server = framed(b, Framing::Newline, 64).with_idle_timeout(Some(Duration::ZERO));
        assert_eq!(server.idle_timeout(), None);
    }
}
