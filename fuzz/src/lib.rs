//! What the fuzz targets share: reading a fuzzer's input as a decoder run, feeding a decoder in chunks, and the shape every JSON-RPC reply must have.

use std::fmt;
use std::io;

use bytes::BytesMut;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_util::codec::Decoder;

/// A decoder run, read off the fuzzer's input.
///
/// The input is laid out as: one byte for the frame limit and the mode, one
/// byte `n` (taken modulo 8), `n` bytes of chunk sizes, then the bytes on
/// the wire. With `n == 0` the wire arrives in one read; otherwise it
/// arrives in reads of those sizes, over and over (a size of 0 counts as 1).
#[derive(Debug)]
pub struct Run<'a> {
    /// The decoder's `max_frame_len`.
    pub max_frame_len: usize,
    /// What the target does with the wire: in its second mode, a target
    /// reads the wire as frames to encode rather than as bytes to decode.
    pub encode_first: bool,
    /// The sizes of the reads, cycled; empty for one read of everything.
    pub chunks: Vec<usize>,
    /// The bytes the peer sent.
    pub wire: &'a [u8],
}

impl<'a> Run<'a> {
    /// Reads a run off `data`; `None` when it is too short to hold one.
    ///
    /// The limit byte's low six bits give limits of 0 to 63 bytes, so that
    /// short inputs reach the paths that skip an oversized message, or, with
    /// its top bit set, the 16 MiB default, under which nothing a fuzzer
    /// sends is skipped. Its bit 6 is [`encode_first`](Self::encode_first).
    pub fn read(data: &'a [u8]) -> Option<Self> {
        let (&limit, rest) = data.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n % 8);
        if rest.len() < n {
            return None;
        }
        let (sizes, wire) = rest.split_at(n);
        let max_frame_len = if limit & 0x80 != 0 {
            rpcpeer_stream::DEFAULT_MAX_FRAME_LEN
        } else {
            usize::from(limit & 0x3f)
        };
        Some(Run {
            max_frame_len,
            encode_first: limit & 0x40 != 0,
            chunks: sizes.iter().map(|&s| usize::from(s).max(1)).collect(),
            wire,
        })
    }
}

/// The frames an encoding run sends: the wire as text, cut at each NUL.
pub fn frames_of(wire: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(wire)
        .split('\0')
        .map(str::to_owned)
        .collect()
}

/// One thing a decoder yielded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A frame.
    Frame(String),
    /// A message skipped for its size: the error's text.
    TooLarge(String),
    /// A message skipped for not being UTF-8: the text of the `Utf8Error`
    /// the error wraps.
    NotUtf8(String),
}

/// Everything a decoder made of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Frames and skipped messages, in order.
    pub items: Vec<Item>,
    /// The kind of the error that ended decoding (any but those of a
    /// skipped message), if one did. Its text is left out: it may show the bytes read so far,
    /// which depend on how the reads were split.
    pub end: Option<io::ErrorKind>,
}

/// Whether `err` reports a message that is not UTF-8, after which the
/// decoders go on: `InvalidData` wrapping the `Utf8Error` itself.
pub fn is_not_utf8(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::InvalidData
        && err
            .get_ref()
            .is_some_and(|inner| inner.is::<std::str::Utf8Error>())
}

/// Feeds `wire` to `codec` in reads of `chunks` (cycled; empty for one
/// read), decoding after each read as `Framed` does, then `decode_eof`.
///
/// Checks on the way that no frame is longer than `max_frame_len` and
/// that, whenever the decoder asks for more bytes, it holds at most
/// `max_buffered` of them: a peer cannot make it buffer more.
pub fn feed<D>(
    mut codec: D,
    wire: &[u8],
    chunks: &[usize],
    max_frame_len: usize,
    max_buffered: usize,
) -> Decoded
where
    D: Decoder<Item = String, Error = io::Error>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().cycle();
    let push = |items: &mut Vec<Item>, result: io::Result<Option<String>>| match result {
        Ok(Some(frame)) => {
            assert!(
                frame.len() <= max_frame_len,
                "a frame of {} bytes got through a limit of {max_frame_len}",
                frame.len()
            );
            items.push(Item::Frame(frame));
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::FileTooLarge => {
            assert!(
                err.to_string().contains(&max_frame_len.to_string()),
                "a skipped message's error does not name the limit: {err}"
            );
            items.push(Item::TooLarge(err.to_string()));
            Ok(true)
        }
        Err(err) if is_not_utf8(&err) => {
            items.push(Item::NotUtf8(err.to_string()));
            Ok(true)
        }
        Err(err) => Err(err.kind()),
    };
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let result = codec.decode(&mut buf);
            match push(&mut items, result) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(end) => {
                    return Decoded {
                        items,
                        end: Some(end),
                    }
                }
            }
        }
        assert!(
            buf.len() <= max_buffered,
            "the decoder holds {} bytes waiting for more, over {max_buffered}",
            buf.len()
        );
    }
    loop {
        let result = codec.decode_eof(&mut buf);
        match push(&mut items, result) {
            Ok(true) => continue,
            Ok(false) => return Decoded { items, end: None },
            Err(end) => {
                return Decoded {
                    items,
                    end: Some(end),
                }
            }
        }
    }
}

/// The members of a JSON object, in order, repeats kept, values raw (so
/// that numbers past `f64`, which JSON allows, are not refused).
#[derive(Debug)]
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The value of `name`, if the object has it.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, v)| *v)
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(key, _)| key.as_str()).collect()
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

/// The elements of a JSON array, raw.
pub fn elements(text: &str) -> Result<Vec<&RawValue>, String> {
    struct ElementsVisitor;
    impl<'de> Visitor<'de> for ElementsVisitor {
        type Value = Vec<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<&RawValue>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let items = de
        .deserialize_seq(ElementsVisitor)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(items)
}

/// Whether `text` is one JSON text (RFC 8259), numbers of any size allowed.
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text).is_ok()
}

/// Which protocol version a reply was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `"jsonrpc": "2.0"`, and exactly one of `result` and `error`.
    V2,
    /// No `jsonrpc`; both `result` and `error`, one of them `null`.
    V1,
}

/// A reply object, checked: which form, its id's text, and its error code
/// (`None` for a result).
#[derive(Debug)]
pub struct Reply<'a> {
    /// The version it is written in.
    pub form: Form,
    /// The id member's JSON text.
    pub id: &'a str,
    /// The error's code, or `None` when the reply carries a result.
    pub code: Option<i64>,
}

/// Checks that `text` is one JSON-RPC reply object (spec §5, or its 1.0
/// form): valid JSON, no member repeated or unknown, an id that is a string,
/// a number or null, exactly one outcome, and an error object with an
/// integer code and a message. Panics, naming what is wrong, otherwise.
pub fn check_reply(text: &str) -> Reply<'_> {
    assert!(is_json(text), "reply is not JSON: {text}");
    let members: Members<'_> = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("reply is not an object ({e}): {text}"));
    let mut names = members.names();
    names.sort_unstable();
    let unique = names.len();
    names.dedup();
    assert_eq!(unique, names.len(), "a member is repeated: {text}");
    for name in &names {
        assert!(
            matches!(*name, "jsonrpc" | "id" | "result" | "error"),
            "unexpected member `{name}` in a reply: {text}"
        );
    }
    let id = members
        .get("id")
        .unwrap_or_else(|| panic!("reply without id: {text}"))
        .get();
    assert!(
        matches!(
            id.as_bytes().first(),
            Some(b'"' | b'-' | b'0'..=b'9' | b'n')
        ),
        "id must be a string, a number or null: {text}"
    );
    let (form, error) = match members.get("jsonrpc") {
        Some(version) => {
            assert_eq!(version.get(), "\"2.0\"", "jsonrpc must be \"2.0\": {text}");
            match (members.get("result"), members.get("error")) {
                (Some(_), None) => (Form::V2, None),
                (None, Some(error)) => (Form::V2, Some(error)),
                _ => panic!("a 2.0 reply needs exactly one of result and error: {text}"),
            }
        }
        None => match (members.get("result"), members.get("error")) {
            (Some(_), Some(error)) if error.get() == "null" => (Form::V1, None),
            (Some(result), Some(error)) => {
                assert_eq!(
                    result.get(),
                    "null",
                    "1.0: result or error must be null: {text}"
                );
                (Form::V1, Some(error))
            }
            _ => panic!("a 1.0 reply needs both result and error: {text}"),
        },
    };
    let code = error.map(|error| check_error_object(error.get(), text));
    Reply { form, id, code }
}

/// Checks an error object (spec §5.1): an integer code, a non-empty message
/// string, maybe data, nothing else. Returns the code.
fn check_error_object(error: &str, reply: &str) -> i64 {
    let members: Members<'_> = serde_json::from_str(error)
        .unwrap_or_else(|e| panic!("error is not an object ({e}): {reply}"));
    for name in members.names() {
        assert!(
            matches!(name, "code" | "message" | "data"),
            "unexpected member `{name}` in an error object: {reply}"
        );
    }
    let code = members
        .get("code")
        .and_then(|code| code.get().parse::<i64>().ok())
        .unwrap_or_else(|| panic!("error code must be an integer: {reply}"));
    let message = members
        .get("message")
        .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
        .unwrap_or_else(|| panic!("error message must be a string: {reply}"));
    assert!(!message.is_empty(), "error message is empty: {reply}");
    code
}
