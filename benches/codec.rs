//! The wire without a connection: `message::parse` of each kind of frame, the
//! `encode_*` functions, and the newline and Content-Length frame codecs.
//!
//! `cargo bench --bench codec` (add `-- parse` to run one group).

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rpcpeer::message::{encode_notification, encode_request, encode_response, parse, Frame};
use rpcpeer::stream::{FrameCodec, Framing, DEFAULT_MAX_FRAME_LEN};
use rpcpeer::{ErrorObject, Id, Version};
use serde_json::value::RawValue;
use tokio_util::codec::{Decoder, Encoder};

const REQUEST: &str =
    r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":1234}"#;
const NOTIFICATION: &str = r#"{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}"#;
const RESPONSE: &str = r#"{"jsonrpc":"2.0","result":19,"id":1234}"#;
const BATCH_LEN: usize = 100;

/// Each element with its own id, as a client writes a batch; a hundred
/// copies of one id would be a batch no client sends.
fn batch_text() -> String {
    let items: Vec<String> = (0..BATCH_LEN)
        .map(|id| {
            format!(r#"{{"jsonrpc":"2.0","method":"subtract","params":[42,{id}],"id":{id}}}"#)
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

fn parsing(c: &mut Criterion) {
    let batch = batch_text();
    // Guards against measuring the rejection path by mistake.
    match parse(&batch) {
        Frame::Batch(items) => assert!(items.len() == BATCH_LEN && items.iter().all(Result::is_ok)),
        Frame::Single(_) => panic!("the batch text did not parse as a batch"),
    }
    let mut group = c.benchmark_group("parse");
    for (name, text) in [
        ("request", REQUEST),
        ("notification", NOTIFICATION),
        ("response", RESPONSE),
        ("batch_100", batch.as_str()),
    ] {
        assert!(
            matches!(parse(text), Frame::Single(Ok(_)) | Frame::Batch(_)),
            "{name} did not parse"
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(text))));
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let id = Id::from(1234u64);
    let result = raw("19");
    let error = ErrorObject::method_not_found("subtract");
    let params = raw(r#"{"minuend":42,"subtrahend":23}"#);
    let list = raw("[1,2,3,4,5]");

    let mut group = c.benchmark_group("encode");
    group.bench_function("response", |b| {
        b.iter(|| encode_response(Version::V2, black_box(&id), Ok(black_box(&result))))
    });
    group.bench_function("response_error", |b| {
        b.iter(|| encode_response(Version::V2, black_box(&id), Err(black_box(&error))))
    });
    group.bench_function("request", |b| {
        b.iter(|| {
            encode_request(
                Version::V2,
                black_box(&id),
                black_box("subtract"),
                Some(black_box(&params)),
            )
        })
    });
    group.bench_function("notification", |b| {
        b.iter(|| encode_notification(Version::V2, black_box("update"), Some(black_box(&list))))
    });
    group.finish();
}

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(REQUEST.len() as u64));
    for framing in [Framing::Newline, Framing::ContentLength] {
        let mut codec = FrameCodec::new(framing, DEFAULT_MAX_FRAME_LEN);
        let mut wire = BytesMut::new();
        codec
            .encode(REQUEST.to_owned(), &mut wire)
            .expect("encode a frame");

        // The frame is moved into the codec and the buffer consumed by it,
        // so each iteration gets fresh ones, made outside the measurement.
        group.bench_function(format!("{framing}/decode"), |b| {
            b.iter_batched_ref(
                || BytesMut::from(&wire[..]),
                |buf| codec.decode(buf).expect("a whole frame"),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("{framing}/encode"), |b| {
            b.iter_batched_ref(
                || (REQUEST.to_owned(), BytesMut::with_capacity(wire.len())),
                |(frame, buf)| {
                    codec
                        .encode(std::mem::take(frame), buf)
                        .expect("encode a frame")
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Each case takes well under a microsecond: a short window is plenty.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = parsing, encoding, framing
}
criterion_main!(benches);
