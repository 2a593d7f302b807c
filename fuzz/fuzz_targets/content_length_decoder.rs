//! Arbitrary bytes, in arbitrary reads, through `ContentLengthCodec`: no
//! panic, no frame over the limit, never more buffered than the limit or
//! the 8 KiB header cap, and the same result however the reads are split.
//! In its second mode the wire is frames to encode first, which must decode
//! back unchanged (or as one skipped message each, when over the limit).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rpcpeer_fuzz::{feed, frames_of, Decoded, Item, Run};
use rpcpeer_stream::ContentLengthCodec;
use tokio_util::codec::Encoder;

/// The header block's cap, in bytes, which bounds what the decoder holds
/// while it waits for the end of a header line.
const MAX_HEADER_LEN: usize = 8 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some(run) = Run::read(data) else {
        return;
    };
    let limit = run.max_frame_len;
    let held = limit.max(MAX_HEADER_LEN);
    if run.encode_first {
        let frames = frames_of(run.wire);
        let mut codec = ContentLengthCodec::new(limit);
        let mut wire = BytesMut::new();
        for frame in &frames {
            if codec.encode(frame.clone(), &mut wire).is_err() {
                panic!("encoding {frame:?} failed");
            }
        }
        let expected = Decoded {
            items: frames
                .into_iter()
                .map(|frame| match frame.len() {
                    len if len > limit => Item::TooLarge(format!(
                        "message of {len} bytes exceeds the limit of {limit} bytes"
                    )),
                    _ => Item::Frame(frame),
                })
                .collect(),
            end: None,
        };
        let decoded = feed(
            ContentLengthCodec::new(limit),
            &wire,
            &run.chunks,
            limit,
            held,
        );
        assert_eq!(decoded, expected, "frames did not survive encoding");
        return;
    }
    let whole = feed(ContentLengthCodec::new(limit), run.wire, &[], limit, held);
    let split = feed(
        ContentLengthCodec::new(limit),
        run.wire,
        &run.chunks,
        limit,
        held,
    );
    assert_eq!(whole, split, "reads of {:?} changed the frames", run.chunks);
});
