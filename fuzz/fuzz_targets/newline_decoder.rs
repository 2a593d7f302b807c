//! Arbitrary bytes, in arbitrary reads, through `NewlineCodec`: no panic, no
//! frame over the limit, never more than the limit buffered, the same
//! result however the reads are split, and exactly what a plain model of
//! the framing says (lines cut at `\n`, one `\r` stripped, blank lines
//! skipped, lines over the limit or not UTF-8 skipped and reported).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rpcpeer_fuzz::{feed, frames_of, Decoded, Item, Run};
use rpcpeer_stream::NewlineCodec;
use tokio_util::codec::Encoder;

fuzz_target!(|data: &[u8]| {
    let Some(run) = Run::read(data) else {
        return;
    };
    let limit = run.max_frame_len;
    let wire = if run.encode_first {
        // The encoder's side: whatever the frames hold, what it writes
        // decodes into one frame each (or one skipped message each).
        let mut codec = NewlineCodec::new(limit);
        let mut buf = BytesMut::new();
        let frames = frames_of(run.wire);
        for frame in &frames {
            let before = buf.len();
            if codec.encode(frame.clone(), &mut buf).is_err() {
                panic!("encoding {frame:?} failed");
            }
            let written = &buf[before..];
            assert_eq!(
                written.iter().filter(|&&b| b == b'\n').count(),
                1,
                "{frame:?} was not written as exactly one line"
            );
        }
        buf.to_vec()
    } else {
        run.wire.to_vec()
    };
    let whole = feed(NewlineCodec::new(limit), &wire, &[], limit, limit);
    let split = feed(NewlineCodec::new(limit), &wire, &run.chunks, limit, limit);
    assert_eq!(whole, split, "reads of {:?} changed the frames", run.chunks);
    assert_eq!(
        whole,
        model(&wire, limit),
        "the codec and the model disagree"
    );
});

/// The newline framing as its documentation states it, on the whole input.
fn model(wire: &[u8], limit: usize) -> Decoded {
    let too_large = || Item::TooLarge(format!("message exceeds the limit of {limit} bytes"));
    let mut items = Vec::new();
    let mut rest = wire;
    loop {
        let (line, last) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let line = &rest[..at];
                rest = &rest[at + 1..];
                (line, false)
            }
            None => (rest, true),
        };
        // The limit counts the bytes before the `\n`, a `\r` included.
        if line.len() > limit {
            items.push(too_large());
        } else if !(last && (line.is_empty() || line == b"\r")) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let blank = line
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            match std::str::from_utf8(line) {
                _ if blank => {}
                Ok(text) => items.push(Item::Frame(text.to_owned())),
                Err(err) => items.push(Item::NotUtf8(err.to_string())),
            }
        }
        if last {
            return Decoded { items, end: None };
        }
    }
}
