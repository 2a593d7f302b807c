//! Property test: whatever bytes a peer sends over TCP, in whatever reads,
//! the server answers only with well-formed JSON-RPC replies (errors, or
//! results of the calls that happened to be in the bytes) and closes once
//! the peer has finished sending; it never hangs, its connection task never
//! panics, and the next connection is served as usual.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use common::{spec_router, within, Wire, FRAMINGS};
use proptest::prelude::*;
use rpcpeer::Driver;
use rpcpeer_stream::{FrameCodec, Framing, TcpListener};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

/// Small, so that the bytes often hold a message over it, which is skipped.
const MAX_FRAME_LEN: usize = 256;

/// One server per framing for every case, on a runtime of its own.
struct Servers {
    runtime: tokio::runtime::Runtime,
    addrs: Vec<(Framing, SocketAddr)>,
    /// Connection tasks that ended in a panic, over all cases.
    panics: Arc<AtomicUsize>,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let panics = Arc::new(AtomicUsize::new(0));
        let addrs = runtime.block_on(async {
            let mut addrs = Vec::new();
            for framing in FRAMINGS {
                addrs.push((framing, serve_watched(framing, panics.clone()).await));
            }
            addrs
        });
        Servers {
            runtime,
            addrs,
            panics,
        }
    })
}

/// `common::serve_with`, counting the connection tasks that panic: a
/// panicking driver would only look like a closed connection from outside.
async fn serve_watched(framing: Framing, panics: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0", framing)
        .await
        .expect("bind 127.0.0.1:0")
        .with_max_frame_len(MAX_FRAME_LEN);
    let addr = listener.local_addr().expect("local addr");
    let router = spec_router();
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            let (_peer, driver) = Driver::new(transport, router.clone());
            let task = tokio::spawn(driver);
            let panics = panics.clone();
            tokio::spawn(async move {
                if task.await.is_err_and(|e| e.is_panic()) {
                    panics.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    addr
}

/// Bytes that are sometimes messages in either framing, sometimes nearly,
/// sometimes nothing of the kind.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#.to_owned()),
        Just(r#"{"jsonrpc":"2.0","method":"update","params":[1]}"#.to_owned()),
        Just(r#"{"method":"subtract","params":[42,23],"id":"v1"}"#.to_owned()),
        Just(r#"[{"jsonrpc":"2.0","method":"sum","params":[3],"id":2},{"foo":1},7]"#.to_owned()),
        Just(r#"{"jsonrpc":"2.0","result":5,"id":99}"#.to_owned()),
        Just(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#.to_owned()),
        Just(r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#.to_owned()),
        Just("[]".to_owned()),
        Just("[1e400]".to_owned()),
        Just(format!("[{}]", "1,".repeat(150))),
        "[\\[\\]{}\",:a-z0-9 ]{0,24}",
    ];
    let piece = prop_oneof![
        json.clone()
            .prop_map(|text| format!("{text}\n").into_bytes()),
        json.prop_map(|text| format!("Content-Length: {}\r\n\r\n{text}", text.len()).into_bytes()),
        Just(b"Content-Length: 100000\r\n\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n\r\n".to_vec()),
        Just(b"Content-Length: x\r\n\r\n".to_vec()),
        Just(b"Content-Type: text/plain\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(vec![b' '; 300]),
        Just(vec![0xff, 0xfe, b'\n']),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

/// What the server wrote before it closed, and whether it reset the
/// connection (closing with input unread), which may cut its last frame.
struct Output {
    bytes: Vec<u8>,
    reset: bool,
}

/// Sends `input` in reads of `chunks`, half-closes, and reads to the end.
async fn exchange(addr: SocketAddr, input: &[u8], chunks: &[usize]) -> Output {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let write = async {
        let mut rest = input;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            // The server may close first (framing lost): then stop.
            if writer.write_all(&rest[..n]).await.is_err() {
                return;
            }
            rest = &rest[n..];
            tokio::task::yield_now().await;
        }
        let _ = writer.shutdown().await;
    };
    // Read while writing: replies must not wait for the input to end.
    let read = async {
        let mut bytes = Vec::new();
        // A reset connection is a close too; what came before it counts.
        let reset = reader.read_to_end(&mut bytes).await.is_err();
        Output { bytes, reset }
    };
    let ((), out) = within("the server closing after the input ends", async {
        tokio::join!(write, read)
    })
    .await;
    out
}

/// Every frame the server wrote, checked as a JSON-RPC reply; fails on a
/// frame that is not one, or on bytes that are not in the framing.
fn check_output(framing: Framing, out: &Output, input: &[u8]) -> Result<(), TestCaseError> {
    let mut codec = FrameCodec::new(framing, usize::MAX);
    let mut buf = BytesMut::from(&out.bytes[..]);
    loop {
        // After a reset the last frame may be cut short: it is left over.
        let decoded = if out.reset {
            codec.decode(&mut buf)
        } else {
            codec.decode_eof(&mut buf)
        };
        let frame = match decoded {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(err) => {
                return Err(TestCaseError::fail(format!(
                    "the server's output is not in {framing} framing ({err}): {:?}",
                    String::from_utf8_lossy(&out.bytes)
                )))
            }
        };
        let value: Value = serde_json::from_str(&frame)
            .map_err(|e| TestCaseError::fail(format!("a reply is not JSON ({e}): {frame}")))?;
        match &value {
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    check_reply(item, &frame, input)?;
                }
            }
            other => check_reply(other, &frame, input)?,
        }
    }
}

/// A reply object: an id, `"jsonrpc": "2.0"` and exactly one outcome, or
/// the 1.0 form with both; an error with an integer code and a message.
fn check_reply(reply: &Value, frame: &str, input: &[u8]) -> Result<(), TestCaseError> {
    let input = String::from_utf8_lossy(input);
    let fail =
        |what: &str| TestCaseError::fail(format!("{what}: {frame}\n(in answer to {input:?})"));
    let obj = reply
        .as_object()
        .ok_or_else(|| fail("a reply that is not an object"))?;
    if !obj.contains_key("id") {
        return Err(fail("a reply without an id"));
    }
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "jsonrpc" | "id" | "result" | "error"))
    {
        return Err(fail("a member a reply does not have"));
    }
    let error = match obj.get("jsonrpc") {
        Some(v) if v == "2.0" => match (obj.get("result"), obj.get("error")) {
            (Some(_), None) => None,
            (None, Some(error)) => Some(error),
            _ => return Err(fail("a 2.0 reply without exactly one of result and error")),
        },
        Some(_) => return Err(fail("a jsonrpc member other than \"2.0\"")),
        None => match (obj.get("result"), obj.get("error")) {
            (Some(_), Some(Value::Null)) => None,
            (Some(Value::Null), Some(error)) => Some(error),
            _ => return Err(fail("a 1.0 reply without both result and error, one null")),
        },
    };
    if let Some(error) = error {
        let has_code = error["code"].is_i64();
        let has_message = error["message"].as_str().is_some_and(|m| !m.is_empty());
        if !(has_code && has_message) {
            return Err(fail(
                "an error object without an integer code and a message",
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bytes_get_only_replies_then_a_close(
        input in soup(),
        chunks in prop::collection::vec(1usize..48, 1..6),
    ) {
        let servers = servers();
        for &(framing, addr) in &servers.addrs {
            let out = servers.runtime.block_on(exchange(addr, &input, &chunks));
            check_output(framing, &out, &input)?;
            // The server is unhurt: a new connection is answered as usual.
            let reply = servers.runtime.block_on(async {
                let mut wire = Wire::connect(addr, framing).await;
                wire.call(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"after"}"#).await
            });
            prop_assert_eq!(&reply["result"], 3, "{} after {:?}", reply, String::from_utf8_lossy(&input));
            prop_assert_eq!(servers.panics.load(Ordering::SeqCst), 0, "a connection task panicked");
        }
    }
}
