//! The members of a message object, kept raw: read by hand when the frame has the common shape, by serde_json otherwise.
//!
//! Every frame must be read as JSON in full (spec §5.1: -32700 for invalid
//! JSON, notifications included). serde_json's map visitor does that at
//! about 2,000 instructions for a 55-byte notification, most of them in
//! setting up each member name and each raw value. The frames almost every
//! peer sends have one shape: an object (or an array of objects) whose
//! member names are plain strings, and whose `jsonrpc`, `method` and `id`
//! are plain strings, integers or `null`; their other values (`params`,
//! `result`, `error`, members we do not know) hold plain strings, numbers,
//! literals, arrays and objects. [`scan_object`] and [`scan_batch`] read
//! that shape by hand, and leave any other value to serde_json, one value
//! each. A value read by hand is handed on as serde_json's `&RawValue`
//! without serde_json reading it again (see `checked_raw`).
//!
//! The hand-written reader never rejects anything: at the first byte it
//! does not expect (an escape, a duplicate member, a fraction, a syntax
//! error) it gives up, and the frame is read again by serde_json, whose
//! verdict and error messages stand. What it accepts, serde_json accepts
//! too, with the same members (the tests below compare the two):
//! - the skeleton is checked byte for byte as serde_json checks it:
//!   whitespace (space, tab, line feed, carriage return), braces, brackets,
//!   colons and commas, nothing after the end;
//! - a string it reads itself holds no backslash and no control character,
//!   so its text is its value (the frame is `&str`: already UTF-8);
//! - a number it reads itself as `jsonrpc`, `id` or `method` is an integer
//!   with no sign and no leading zero; any other number follows RFC 8259
//!   §6 (a leading zero is followed by no digit);
//! - a value it reads itself nests no deeper than the limit;
//! - every other value is read by serde_json's own reader, the one its map
//!   visitor uses for a raw value, which follows no nesting limit either.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::checked_raw;

/// Every member a JSON-RPC 1.0 or 2.0 message may carry, all optional and
/// raw. Members are classified by hand (never `#[serde(untagged)]`) so that
/// each problem gets its own error and the id survives a bad `method`. A
/// member that is present holds `Some`, even as `null`: a plain `Option`
/// would turn `"id": null` into `None` and make a 2.0 request look like a
/// notification.
#[derive(Debug, Default)]
pub(crate) struct Envelope<'a> {
    /// The JSON text of `jsonrpc`, `id` and `method`, which are short and
    /// read as text.
    pub(crate) jsonrpc: Option<&'a str>,
    pub(crate) id: Option<&'a str>,
    pub(crate) method: Option<&'a str>,
    /// Handed on as raw values.
    pub(crate) params: Option<&'a RawValue>,
    pub(crate) result: Option<&'a RawValue>,
    pub(crate) error: Option<&'a RawValue>,
    /// A member given twice. Recorded rather than failed on, so that in a
    /// batch the other entries are still read.
    pub(crate) duplicate: Option<&'static str>,
    /// Read by the scanner, which takes strings only without escapes: a
    /// string member's value is its text between the quotes.
    pub(crate) plain: bool,
}

/// The members an envelope keeps; any other is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl Key {
    fn of(name: &str) -> Self {
        match name {
            "jsonrpc" => Key::Jsonrpc,
            "id" => Key::Id,
            "method" => Key::Method,
            "params" => Key::Params,
            "result" => Key::Result,
            "error" => Key::Error,
            _ => Key::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Key::Jsonrpc => "jsonrpc",
            Key::Id => "id",
            Key::Method => "method",
            Key::Params => "params",
            Key::Result => "result",
            Key::Error => "error",
            Key::Other => "",
        }
    }
}

impl<'a> Envelope<'a> {
    /// Whether member `key` has been read already.
    fn has(&self, key: Key) -> bool {
        match key {
            Key::Jsonrpc => self.jsonrpc.is_some(),
            Key::Id => self.id.is_some(),
            Key::Method => self.method.is_some(),
            Key::Params => self.params.is_some(),
            Key::Result => self.result.is_some(),
            Key::Error => self.error.is_some(),
            Key::Other => false,
        }
    }

    /// Keeps `raw` as member `key`.
    fn keep(&mut self, key: Key, raw: &'a RawValue) {
        match key {
            Key::Jsonrpc => self.jsonrpc = Some(raw.get()),
            Key::Id => self.id = Some(raw.get()),
            Key::Method => self.method = Some(raw.get()),
            Key::Params => self.params = Some(raw),
            Key::Result => self.result = Some(raw),
            Key::Error => self.error = Some(raw),
            Key::Other => {}
        }
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::Other {
                map.next_value::<IgnoredAny>()?;
            } else if env.has(key) {
                env.duplicate.get_or_insert(key.name());
                map.next_value::<IgnoredAny>()?;
            } else {
                env.keep(key, map.next_value::<&RawValue>()?);
            }
        }
        Ok(env)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(Key::of(key))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// One element of a batch, read by serde_json in the same pass as the
/// array (reading each as raw text first, then again as an object, scanned
/// it twice): an object's envelope, or what the element is instead.
pub(crate) struct Element<'a>(pub(crate) Result<Envelope<'a>, String>);

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch element")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element<'de>, A::Error> {
        EnvelopeVisitor.visit_map(map).map(|env| Element(Ok(env)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element(Err("an array".into())))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Element<'de>, E> {
        Ok(Element(Err(v.to_string())))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Element<'de>, E> {
        Ok(Element(Err(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Element<'de>, E> {
        Ok(Element(Err(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Element<'de>, E> {
        Ok(Element(Err(v.to_string())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Element<'de>, E> {
        let text: String = v.chars().take(40).collect();
        Ok(Element(Err(format!("the string {text:?}"))))
    }

    fn visit_unit<E>(self) -> Result<Element<'de>, E> {
        Ok(Element(Err("null".into())))
    }
}

/// `text` as one object of the common shape, nested no deeper than
/// `max_depth`; `None`: let serde_json read it.
pub(crate) fn scan_object(text: &str, max_depth: usize) -> Option<Envelope<'_>> {
    let mut scan = Scanner::new(text, max_depth.checked_sub(1)?);
    let env = scan.object()?;
    scan.end()?;
    Some(env)
}

/// `text` as a batch whose entries are all objects of the common shape,
/// nested no deeper than `max_depth`; `None`: let serde_json read it (an
/// empty array included).
pub(crate) fn scan_batch(text: &str, max_depth: usize) -> Option<Vec<Envelope<'_>>> {
    let mut scan = Scanner::new(text, max_depth.checked_sub(2)?);
    scan.skip_ws();
    scan.eat(b'[')?;
    let mut entries = Vec::new();
    loop {
        entries.push(scan.object()?);
        scan.skip_ws();
        match scan.next()? {
            b',' => {}
            b']' => break,
            _ => return None,
        }
    }
    scan.end()?;
    Some(entries)
}

/// JSON's whitespace, and nothing else (RFC 8259 §2): `str::trim_start`
/// would skip Unicode's too, at some 40 instructions a message.
pub(crate) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first byte of `text` past JSON's whitespace.
pub(crate) fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|&byte| !is_whitespace(byte))
}

/// How deep a value read by hand may nest (the default limit): what
/// nests deeper is left to serde_json, whatever the limit.
const HAND_DEPTH: usize = crate::message::DEFAULT_MAX_DEPTH;

/// The bytes a plain string holds: any but its closing quote, a backslash
/// or a control character.
const PLAIN: [bool; 256] = {
    let mut plain = [true; 256];
    let mut byte = 0;
    while byte < 0x20 {
        plain[byte] = false;
        byte += 1;
    }
    plain[b'"' as usize] = false;
    plain[b'\\' as usize] = false;
    plain
};

/// A position in the frame. Every method returns `None` at the first byte
/// outside the common shape, wherever it stands.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// How deep a member's value may nest: the limit, less the levels of
    /// the batch and the object around it.
    depth_left: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, depth_left: usize) -> Self {
        Scanner {
            text,
            at: 0,
            depth_left,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_whitespace) {
            self.at += 1;
        }
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.at == self.text.len()).then_some(())
    }

    fn object(&mut self) -> Option<Envelope<'a>> {
        self.skip_ws();
        self.eat(b'{')?;
        let mut env = Envelope {
            plain: true,
            ..Envelope::default()
        };
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(env);
        }
        loop {
            self.skip_ws();
            let key = self.key()?;
            self.skip_ws();
            self.eat(b':')?;
            self.skip_ws();
            if env.has(key) {
                // serde_json's reading names the duplicate.
                return None;
            }
            // NB: tests, not a `match` on `key`, for the reason in `key`.
            if key == Key::Jsonrpc {
                // Nearly always exactly this.
                env.jsonrpc = Some(if self.eat_str(r#""2.0""#) {
                    r#""2.0""#
                } else {
                    self.simple()?
                });
            } else if key == Key::Method {
                env.method = Some(self.simple()?);
            } else if key == Key::Id {
                env.id = Some(self.simple()?);
            } else {
                let raw = self.raw()?;
                env.keep(key, raw);
            }
            self.skip_ws();
            match self.next()? {
                b',' => {}
                b'}' => return Some(env),
                _ => return None,
            }
        }
    }

    /// Whether the text goes on with `expected`; if so, it is read.
    #[inline(always)]
    fn eat_str(&mut self, expected: &str) -> bool {
        let found = (self.text.as_bytes().get(self.at..))
            .is_some_and(|rest| rest.starts_with(expected.as_bytes()));
        if found {
            self.at += expected.len();
        }
        found
    }

    /// A member name. One of ours is compared whole, which is cheaper than
    /// reading it and then looking it up.
    fn key(&mut self) -> Option<Key> {
        // NB: a chain of tests in the order peers write the members, not a
        // `match` on the first letter, which compiles to a jump table: an
        // indirect jump whose target changes from one member to the next,
        // which callgrind's branch simulation saw mispredicted at nearly
        // every member. Each name is spelled out: a comparison of known
        // length is a few loads, where one of a length known only at run
        // time is a call to `memcmp`.
        let ours = if self.eat_str(r#""jsonrpc""#) {
            Key::Jsonrpc
        } else if self.eat_str(r#""method""#) {
            Key::Method
        } else if self.eat_str(r#""params""#) {
            Key::Params
        } else if self.eat_str(r#""id""#) {
            Key::Id
        } else if self.eat_str(r#""result""#) {
            Key::Result
        } else if self.eat_str(r#""error""#) {
            Key::Error
        } else {
            return self.plain_string().map(Key::of);
        };
        Some(ours)
    }

    /// A string without escapes or control characters: what is between
    /// its quotes, which is its value.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        // NB: byte by byte: the strings read here are a few bytes long,
        // shorter than what a word-at-a-time search needs to pay off. One
        // look-up a byte rather than three comparisons.
        let rest = &self.text.as_bytes()[start..];
        let len = rest.iter().take_while(|&&b| PLAIN[usize::from(b)]).count();
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        self.text.get(start..start + len)
    }

    /// `jsonrpc`, `id` or `method`: a plain string, a non-negative integer
    /// or `null`, as JSON text.
    fn simple(&mut self) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.plain_string()?;
            }
            b'n' if self.eat_str("null") => {}
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        // A fraction, an exponent or a leading zero is left to serde_json.
        if matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
            return None;
        }
        self.text.get(start..self.at)
    }

    /// Any value, as raw text checked in full. One of the common shape is
    /// read here; any other by serde_json, and its nesting checked after
    /// (serde_json reads a raw value to any depth).
    fn raw(&mut self) -> Option<&'a RawValue> {
        let start = self.at;
        // NB: `value` recurses once a level, and the limit is the user's to
        // raise: past `HAND_DEPTH` levels, serde_json's reader, which keeps
        // its levels on the heap, takes over.
        if self.value(self.depth_left.min(HAND_DEPTH)).is_some() {
            if let Some(raw) = self.text.get(start..self.at).and_then(checked_raw::checked) {
                return Some(raw);
            }
        }
        self.raw_by_serde(start)
    }

    /// A value outside the common shape, from `start`, read by serde_json.
    // NB: kept out of `raw`, whose path for the common shape then lies
    // together. Not cold: a peer that sends strings with escapes (an
    // editor's text, a Windows path) comes here with most messages.
    #[inline(never)]
    fn raw_by_serde(&mut self, start: usize) -> Option<&'a RawValue> {
        self.at = start;
        let rest = self.text.get(start..)?;
        // NB: one value read by a plain deserializer, not a stream of them,
        // which would also look at what follows it: that is ours to read.
        let raw = <&RawValue>::deserialize(&mut serde_json::Deserializer::from_str(rest)).ok()?;
        if crate::message::nests_deeper_than(raw.get(), self.depth_left) {
            return None;
        }
        // The value is borrowed from `rest`: the text after it starts where
        // its own text ends.
        let end =
            (raw.get().as_ptr() as usize + raw.get().len()).checked_sub(rest.as_ptr() as usize)?;
        if end > rest.len() {
            return None;
        }
        self.at += end;
        Some(raw)
    }

    /// A value of the common shape, whole: a plain string, a number,
    /// `true`, `false`, `null`, or an array or object of such values
    /// (member names plain strings too), opening no more than `depth_left`
    /// arrays and objects at once.
    fn value(&mut self, depth_left: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.plain_string().map(drop),
            b'[' => self.entries(b']', depth_left, Self::value),
            b'{' => self.entries(b'}', depth_left, |scan, inner| {
                scan.plain_string()?;
                scan.skip_ws();
                scan.eat(b':')?;
                scan.skip_ws();
                scan.value(inner)
            }),
            b't' => self.eat_str("true").then_some(()),
            b'f' => self.eat_str("false").then_some(()),
            b'n' => self.eat_str("null").then_some(()),
            _ => self.number(),
        }
    }

    /// The entries of the array or object opened here, each read by
    /// `entry` with one level less to open, up to `close`.
    fn entries(
        &mut self,
        close: u8,
        depth_left: usize,
        mut entry: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        let inner = depth_left.checked_sub(1)?;
        self.at += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_ws();
            entry(self, inner)?;
            self.skip_ws();
            match self.next()? {
                b',' => {}
                byte if byte == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// A number as RFC 8259 §6 writes it. What follows is the caller's to
    /// check: a digit after a leading zero, say, is refused there.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// At least one digit.
    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An envelope's members as text, to compare.
    type Members<'a> = [Option<&'a str>; 6];

    fn members<'a>(env: &Envelope<'a>) -> (Members<'a>, Option<&'static str>) {
        let raw = |value: Option<&'a RawValue>| value.map(RawValue::get);
        let members = [
            env.jsonrpc,
            env.id,
            env.method,
            raw(env.params),
            raw(env.result),
            raw(env.error),
        ];
        (members, env.duplicate)
    }

    /// What serde_json reads: one object, or a batch of objects.
    fn by_serde(text: &str) -> Option<Vec<(Members<'_>, Option<&'static str>)>> {
        let envs: Vec<Envelope<'_>> = if text.trim_start().starts_with('[') {
            let items: Vec<Element<'_>> = serde_json::from_str(text).ok()?;
            items
                .into_iter()
                .map(|item| item.0.ok())
                .collect::<Option<_>>()?
        } else {
            vec![serde_json::from_str(text).ok()?]
        };
        Some(envs.iter().map(members).collect())
    }

    fn by_hand(text: &str) -> Option<Vec<(Members<'_>, Option<&'static str>)>> {
        let envs = if text.trim_start().starts_with('[') {
            scan_batch(text, 128)?
        } else {
            vec![scan_object(text, 128)?]
        };
        Some(envs.iter().map(members).collect())
    }

    /// What the hand-written reader accepts, serde_json reads the same.
    fn agrees(text: &str) {
        if let Some(hand) = by_hand(text) {
            assert_eq!(Some(hand), by_serde(text), "{text:?}");
        }
    }

    #[test]
    fn the_common_shapes_are_read_by_hand() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"update","params":["hello"]}"#,
            r#" { "jsonrpc" : "2.0" , "method" : "echo" , "params" : {"a":[1,{"b":"]"}]} , "id" : 7 } "#,
            r#"{"jsonrpc":"2.0","result":{"x":"\"}"},"id":"abc"}"#,
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":null}"#,
            r#"{"method":"m","params":[],"id":null}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":0,"extra":[1e400,-0.5,true]}"#,
            r#"[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b"}]"#,
            "{}",
            "{\"method\":\"ünïcödé\"}\n",
        ] {
            assert!(by_hand(text).is_some(), "{text:?} was left to serde");
            agrees(text);
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for text in [
            // Invalid JSON: serde_json says why.
            r#"{"jsonrpc":"2.0","method":"m",}"#,
            r#"{"jsonrpc":"2.0","method":"m"} x"#,
            r#"{"jsonrpc":"2.0","method":"m","id":01}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":[1,]}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":[1]x}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":nul}"#,
            "{\"method\":\"a\u{1}b\"}",
            r#"{"jsonrpc":"2.0","method":"m""id":1}"#,
            r#"{"jsonrpc":"2.0" "method":"m"}"#,
            "{\"jsonrpc\":\"2.0\",\u{b}\"method\":\"m\"}",
            // Valid, but not the common shape.
            r#"{"jsonrpc":"2.0","method":"m\u0061","id":1}"#,
            r#"{"json\u0072pc":"2.0","method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":-1}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":1.5}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":1e3}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":true}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":1,"id":2}"#,
            r#"{"jsonrpc":2.0,"method":"m"}"#,
            "[]",
            r#"[{"method":"m"},1]"#,
            "[[]]",
        ] {
            assert_eq!(by_hand(text), None, "{text:?} was read by hand");
        }
    }

    #[test]
    fn values_of_the_common_shape_are_read_whole() {
        for text in [
            r#"["hello"]"#,
            "[]",
            "{}",
            r#"{"a":[1,-2,3.5,1e9,-0.0E-7,true,false,null,"x"],"b":{}}"#,
            "0",
            "-0",
            "12.25e+3",
            r#"[ 1 , { "a" : [ ] } ]"#,
        ] {
            let mut scan = Scanner::new(text, 128);
            assert_eq!(scan.value(128), Some(()), "{text}");
            assert_eq!(scan.at, text.len(), "{text}");
        }
        // Refused, or read only in part, so that the member around it is
        // refused and serde_json reads the frame.
        for text in [
            "[1,]",
            "01",
            "1.",
            "-",
            "1e",
            "1e+",
            ".5",
            "+1",
            "[1 2]",
            r#"{"a" 1}"#,
            "{a:1}",
            r#"{"a":}"#,
            r#""a\"b""#,
            "\"\u{1}\"",
            "tru",
            "nul",
            "[",
            "",
        ] {
            let mut scan = Scanner::new(text, 128);
            let whole = scan.value(128).is_some() && scan.at == text.len();
            assert!(!whole, "{text:?} was read by hand");
        }
    }

    #[test]
    fn deeper_than_the_hand_reader_goes_serde_json_reads() {
        // A limit raised far past the default: the hand reader, which
        // recurses, stops at its own depth, and serde_json's (which does
        // not) reads the rest, within the limit or not.
        let depth = 100_000;
        let params = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(r#"{{"method":"m","params":{params}}}"#);
        let env = scan_object(&text, depth + 1).expect("read by serde_json");
        assert_eq!(env.params.map(RawValue::get), Some(params.as_str()));
        assert!(scan_object(&text, depth).is_none());
    }

    #[test]
    fn a_value_read_by_hand_keeps_to_the_limit() {
        let text = r#"{"method":"m","params":[[1]]}"#;
        assert!(scan_object(text, 3).is_some());
        // Over the limit, serde_json reads it (and the caller refuses it).
        assert!(scan_object(text, 2).is_none());
        let mut scan = Scanner::new("[[1]]", 0);
        assert_eq!(scan.value(1), None);
    }

    /// Text that is often, but not always, a message of the common shape.
    fn message_like() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("\"jsonrpc\""),
            Just("\"method\""),
            Just("\"params\""),
            Just("\"id\""),
            Just("\"result\""),
            Just("\"error\""),
            Just("\"x\""),
            Just("\"m\\u0065thod\""),
        ];
        let value = prop_oneof![
            Just("\"2.0\""),
            Just("\"sum\""),
            Just("\"a\\\"b\""),
            Just("[1,2]"),
            Just("{\"a\":[{}]}"),
            Just("null"),
            Just("true"),
            Just("0"),
            Just("12"),
            Just("-3"),
            Just("1.5e2"),
            Just("01"),
            Just("[1,]"),
            Just("\"]}\""),
            Just("[\"a\",-0,2.5E-3,{\"k\":[true,false,null]},[]]"),
            Just("{ \"a\" : 1 , \"b\" : [ ] }"),
            Just("-"),
            Just("1."),
            Just("1e+"),
            Just("[[[[1]]]]"),
        ];
        let sep = prop_oneof![Just(""), Just(" "), Just("\n"), Just(","), Just("\t\r")];
        let member = (key, sep.clone(), value, sep.clone())
            .prop_map(|(k, s1, v, s2)| format!("{k}{s1}:{v}{s2}"));
        let object = proptest::collection::vec(member, 0..6)
            .prop_map(|members| format!("{{{}}}", members.join(",")));
        let frame = prop_oneof![
            object.clone(),
            proptest::collection::vec(object, 1..4)
                .prop_map(|objects| format!("[{}]", objects.join(","))),
        ];
        let stray = prop_oneof![
            sep.prop_map(str::to_owned),
            (0u8..128).prop_map(|b| char::from(b).to_string())
        ];
        let mutation = proptest::option::weighted(0.5, (any::<prop::sample::Index>(), stray));
        (frame, mutation).prop_map(|(mut text, mutation)| {
            // Half the time, a stray byte or space somewhere.
            if let Some((at, stray)) = mutation {
                text.insert_str(at.index(text.len() + 1), &stray);
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_hand_written_reader_agrees_with_serde(text in message_like()) {
            agrees(&text);
        }

        #[test]
        fn on_any_text_too(text in "\\PC{0,40}") {
            agrees(&text);
        }
    }
}
