//! Property tests: arbitrary bytes, split at arbitrary points, never panic a
//! decoder, and the frames it yields do not depend on how reads were split.

use bytes::BytesMut;
use proptest::prelude::*;
use rpcpeer_stream::{FrameCodec, Framing};
use tokio_util::codec::Decoder;

/// Every frame the codec yields for `input` read in `chunks` (as `Ok`, and
/// each message skipped for its size or for not being UTF-8 as `Err` with
/// the error's text), stopping at the first other error; `true` when there
/// was one.
fn decode_all(
    framing: Framing,
    input: &[u8],
    chunks: &[usize],
) -> (Vec<Result<String, String>>, bool) {
    let mut codec = FrameCodec::new(framing, 256);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(Ok(frame)),
                Ok(None) => break,
                Err(err) if skipped(&err) => frames.push(Err(err.to_string())),
                Err(_) => return (frames, true),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(Ok(frame)),
            Ok(None) => return (frames, false),
            Err(err) if skipped(&err) => frames.push(Err(err.to_string())),
            Err(_) => return (frames, true),
        }
    }
}

/// The errors after which decoding goes on: a message over the limit, or
/// one that is not UTF-8 (the error wraps the `Utf8Error`).
fn skipped(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::FileTooLarge
        || err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>())
}

/// Bytes that are often, but not always, valid frames.
fn wire() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"Content-Length: 2\r\n\r\n{}".to_vec()),
        Just(b"Content-Length: 9\r\n\r\n".to_vec()),
        // Over the limit of 256: skipped, whatever follows.
        Just(b"Content-Length: 300\r\n\r\n".to_vec()),
        Just([vec![b'x'; 300], b"\n".to_vec()].concat()),
        Just(b"{\"a\":1}\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just("h\u{e9}llo \u{2713}\n".as_bytes().to_vec()),
        Just(b"\"\xff\"\n".to_vec()),
        Just(b"Content-Length: 2\r\n\r\n\xc3\x28".to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn splitting_reads_changes_nothing(input in wire(), chunks in prop::collection::vec(1usize..40, 1..8)) {
        for framing in [Framing::Newline, Framing::ContentLength] {
            let whole = decode_all(framing, &input, &[input.len().max(1)]);
            let split = decode_all(framing, &input, &chunks);
            prop_assert_eq!(&whole, &split, "{:?} split as {:?}", framing, chunks);
            for frame in whole.0.iter().flatten() {
                prop_assert!(frame.len() <= 256, "a frame over the limit got through");
            }
        }
    }
}
