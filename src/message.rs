//! Wire types and the two directions of the wire: [`parse`] a frame into messages, encode messages into frames.
//!
//! Only [`Id`] and [`Version`] are part of the API (re-exported at the
//! crate root); the rest is public under the `internals` feature alone.

// Without `internals` the module is private and its `pub` items are the
// crate's own (a few, such as `Response::version`, read only by the fuzz
// targets).
#![cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::envelope::{first_byte, scan_batch, scan_object, Element, Envelope};
use crate::error::ErrorObject;
use crate::excerpt::excerpt;
use crate::params::Params;

/// The protocol version a message was written in. Replies mirror the request.
///
/// ```
/// use rpcpeer::{Router, Session, Version};
///
/// # futures::executor::block_on(async {
/// let router = Router::new();
/// // A 1.0 request (no "jsonrpc" member) is answered in 1.0 form.
/// let reply = router.handle_text(r#"{"method":"nope","params":[],"id":1}"#, &Session::new()).await;
/// assert!(reply.unwrap().starts_with(r#"{"result":null,"error":{"code":-32601"#));
/// // Our own calls speak 2.0 until the peer speaks 1.0, unless configured.
/// let config = rpcpeer::Config::default().version(Some(Version::V1));
/// # let _ = config;
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// JSON-RPC 1.0: no `"jsonrpc"` member, `result` and `error` both present in
    /// responses, notifications carry `"id": null`.
    V1,
    /// JSON-RPC 2.0: `"jsonrpc": "2.0"` on every message.
    #[default]
    V2,
}

/// A request id, kept exactly as the peer wrote it: a string, a number of any
/// size or precision, or `null` (spec §4).
///
/// ```
/// use rpcpeer::Id;
///
/// let id = Id::from(7u64);
/// assert_eq!(id.as_u64(), Some(7));
/// assert_eq!(id.to_string(), "7");
/// assert_eq!(Id::from("abc").as_str().as_deref(), Some("abc"));
/// ```
#[derive(Debug, Clone)]
pub struct Id(Repr);

/// One form for each value, so that equal ids compare and hash alike: a
/// number is `Number` exactly when its text is the canonical one of a
/// `u64` (the common case, kept without an allocation), else `Raw`.
#[derive(Debug, Clone)]
enum Repr {
    Null,
    Number(u64),
    /// A string, or a number written any other way (negative, fraction,
    /// exponent, past 64 bits), byte for byte.
    Raw(Box<RawValue>),
}

impl Id {
    /// The `null` id.
    pub fn null() -> Self {
        Self(Repr::Null)
    }

    /// The id written as `text` (valid JSON), if the spec allows it: a
    /// string, a number or null.
    pub(crate) fn from_text(text: &str) -> Option<Self> {
        let raw = || RawValue::from_string(text.to_owned()).ok().map(Repr::Raw);
        match text.as_bytes().first()? {
            b'n' => Some(Self(Repr::Null)),
            b'0'..=b'9' => canonical_u64(text).map(Repr::Number).or_else(raw).map(Self),
            b'"' | b'-' => raw().map(Self),
            _ => None,
        }
    }

    /// Whether this is the `null` id.
    pub fn is_null(&self) -> bool {
        matches!(self.0, Repr::Null)
    }

    /// The id as a `u64`, when it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Number(n) => Some(*n),
            Repr::Raw(raw) => raw.get().parse().ok(),
            Repr::Null => None,
        }
    }

    /// The id as a string, when it is one (escapes resolved).
    pub fn as_str(&self) -> Option<Cow<'_, str>> {
        match &self.0 {
            Repr::Raw(raw) => as_string(raw.get()),
            _ => None,
        }
    }

    /// The id's JSON text, exactly as it was received (a number is
    /// written into `digits`).
    fn json<'a>(&'a self, digits: &'a mut itoa::Buffer) -> &'a str {
        match &self.0 {
            Repr::Null => "null",
            Repr::Number(n) => digits.format(*n),
            Repr::Raw(raw) => raw.get(),
        }
    }
}

/// `text` as a `u64` when writing that `u64` back gives `text` again.
fn canonical_u64(text: &str) -> Option<u64> {
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    // By hand: `str::parse` checks for signs and overflow in ways that cost
    // more than the digits of a typical id.
    text.bytes()
        .try_fold(0u64, |n, digit| {
            let digit = digit.checked_sub(b'0').filter(|d| *d <= 9)?;
            n.checked_mul(10)?.checked_add(u64::from(digit))
        })
        .filter(|_| !text.is_empty())
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Self(Repr::Number(n))
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        match u64::try_from(n) {
            Ok(n) => Self(Repr::Number(n)),
            Err(_) => Self(RawValue::from_string(n.to_string()).map_or(Repr::Null, Repr::Raw)),
        }
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self(serde_json::value::to_raw_value(s).map_or(Repr::Null, Repr::Raw))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Null, Repr::Null) => true,
            (Repr::Number(a), Repr::Number(b)) => a == b,
            (Repr::Raw(a), Repr::Raw(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Null => state.write_u8(0),
            Repr::Number(n) => n.hash(state),
            Repr::Raw(raw) => raw.get().hash(state),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Null => f.write_str("null"),
            Repr::Number(n) => write!(f, "{n}"),
            Repr::Raw(raw) => f.write_str(raw.get()),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Null => s.serialize_unit(),
            Repr::Number(n) => s.serialize_u64(*n),
            Repr::Raw(raw) => raw.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Id::from_text(raw.get())
            .ok_or_else(|| serde::de::Error::custom("an id must be a string, a number or null"))
    }
}

/// A call that expects a reply, borrowed from the frame it was read from:
/// a handler decodes its params before the frame is dropped, so neither
/// the method nor the params are ever copied.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The version the request was written in.
    pub version: Version,
    /// The id to answer with.
    pub id: Id,
    /// The method to call (owned only when it was written with escapes).
    pub method: Cow<'a, str>,
    /// The params as raw JSON (an array or an object), `None` when absent.
    pub params: Option<&'a RawValue>,
}

/// A call that gets no reply, borrowed from its frame like [`Request`].
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    /// The version the notification was written in.
    pub version: Version,
    /// The method to call (owned only when it was written with escapes).
    pub method: Cow<'a, str>,
    /// The params as raw JSON (an array or an object), `None` when absent.
    pub params: Option<&'a RawValue>,
}

/// The answer to a request.
#[derive(Debug, Clone)]
pub struct Response {
    /// The version the response was written in.
    pub version: Version,
    /// The id of the request it answers.
    pub id: Id,
    /// The result, or the error object.
    pub outcome: Result<Box<RawValue>, ErrorObject>,
}

/// One JSON-RPC message, borrowed from the frame it was read from.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// A call that expects a reply.
    Request(Request<'a>),
    /// A call that gets no reply.
    Notification(Notification<'a>),
    /// The answer to one of our requests.
    Response(Response),
}

/// A message that could not be read, with the reply it deserves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rejected {
    /// The form to answer in.
    pub version: Version,
    /// The message's id when it could be read and is valid, else `null`.
    pub id: Id,
    /// The error to answer with (boxed: a message that is read well, the
    /// common case, need not carry room for it).
    pub error: Box<ErrorObject>,
    /// When the message has neither `method` nor `params`, it can only
    /// have been meant as the answer to the call with `id`, which may be one
    /// of ours that waits for it: what is wrong with it as an answer.
    pub response: Option<String>,
    /// The message is a valid notification, refused only for a limit of
    /// ours (its nesting): it gets no reply (spec §4.1).
    pub notification: bool,
}

impl Rejected {
    fn v2(error: ErrorObject) -> Self {
        Self {
            version: Version::V2,
            id: Id::null(),
            error: Box::new(error),
            response: None,
            notification: false,
        }
    }

    /// The error reply to write for this message; `None` for a
    /// notification, which is never answered.
    pub fn reply(&self) -> Option<String> {
        (!self.notification).then(|| encode_response(self.version, &self.id, Err(&self.error)))
    }
}

/// What one frame holds.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A single message (or the reason it was rejected).
    Single(Result<Message<'a>, Rejected>),
    /// A batch: one entry per element of the array, in order.
    Batch(Vec<Result<Message<'a>, Rejected>>),
}

/// Reads one frame: a single message or a batch.
///
/// Never fails: what cannot be read becomes a [`Rejected`] carrying the
/// spec's error (-32700 for invalid JSON, -32600 for valid JSON that is not a
/// message) and the id when one could be read.
///
/// ```
/// use rpcpeer::message::{parse, Frame, Message};
///
/// let Frame::Single(Ok(Message::Request(req))) =
///     parse(r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#)
/// else { panic!("not a request") };
/// assert_eq!(req.method, "subtract");
/// assert_eq!(req.params.unwrap().get(), "[42, 23]");
/// ```
pub fn parse(text: &str) -> Frame<'_> {
    parse_within(text, DEFAULT_MAX_DEPTH)
}

/// The nesting depth [`parse`] accepts: serde_json's own limit for values.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// [`parse`], refusing a message whose arrays and objects nest deeper than
/// `max_depth`: a value nested 100,000 deep is valid JSON, but many peers
/// cannot read it back, and a chat post would carry it to every member of
/// a room. A call is refused -32600 under its own id, a notification gets
/// no reply (spec §4.1), and invalid JSON is still a parse error.
///
/// ```
/// use rpcpeer::message::{parse_within, Frame};
///
/// let nested = format!("{}1{}", "[".repeat(9), "]".repeat(9));
/// let call = format!(r#"{{"jsonrpc":"2.0","method":"m","params":{nested},"id":7}}"#);
/// let Frame::Single(Err(refused)) = parse_within(&call, 8) else { panic!() };
/// assert!(refused.reply().unwrap().ends_with(r#""id":7}"#));
/// assert!(matches!(parse_within(&call, 10), Frame::Single(Ok(_))));
///
/// let notification = format!(r#"{{"jsonrpc":"2.0","method":"m","params":{nested}}}"#);
/// let Frame::Single(Err(refused)) = parse_within(&notification, 8) else { panic!() };
/// assert_eq!(refused.reply(), None);
/// ```
pub fn parse_within(text: &str, max_depth: usize) -> Frame<'_> {
    let mut text = text;
    let mut first = first_byte(text);
    // NB: RFC 8259 §8.1 lets a parser ignore a byte order mark, which no
    // JSON sent over a network should carry but some writers (.NET's,
    // editors' saved files) put first; HTTP bodies are read so too. Its
    // first byte, 0xEF, starts no JSON, so only such a message pays.
    if first == Some(0xEF) {
        if let Some(rest) = text.strip_prefix('\u{feff}') {
            text = rest;
            first = first_byte(text);
        }
    }
    // The common shape, read by hand (which checks the nesting too).
    match first {
        Some(b'[') => {
            if let Some(entries) = scan_batch(text, max_depth) {
                let entries = entries.into_iter().map(|env| message(env, None));
                return Frame::Batch(entries.collect());
            }
        }
        Some(b'{') => {
            if let Some(env) = scan_object(text, max_depth) {
                return Frame::Single(message(env, Some(Version::V1)));
            }
        }
        _ => {}
    }
    parse_by_serde(text, first, max_depth)
}

/// A frame outside the common shape, whose first byte is `first`, read by
/// serde_json.
// NB: cold, and kept out of `parse_within`, whose path for the common shape
// then lies together.
#[cold]
#[inline(never)]
fn parse_by_serde(text: &str, first: Option<u8>, max_depth: usize) -> Frame<'_> {
    if nests_deeper_than(text, max_depth) {
        return too_deep(text, max_depth);
    }
    match first {
        Some(b'[') => parse_batch(text),
        Some(b'{') => Frame::Single(parse_object(text)),
        _ => Frame::Single(Err(Rejected::v2(
            match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => ErrorObject::invalid_request("a message must be an object or an array"),
                Err(err) => json_error(&err),
            },
        ))),
    }
}

/// A frame that nests deeper than `max_depth`, read in full all the same
/// (serde_json reads a raw value in a loop, not by recursion, so the depth
/// costs no stack): invalid JSON is a parse error, like any other; a call
/// is refused under its own id, so that its caller learns why at once; a
/// notification gets no reply (spec §4.1). In a batch, only the entries too
/// deep are refused.
fn too_deep(text: &str, max_depth: usize) -> Frame<'_> {
    let refusal = |depth: usize| {
        ErrorObject::invalid_request(format!(
            "the message nests arrays and objects deeper than the limit of {depth} levels"
        ))
    };
    if let Err(err) = serde_json::from_str::<&RawValue>(text) {
        return Frame::Single(Err(Rejected::v2(json_error(&err))));
    }
    if first_byte(text) != Some(b'[') {
        return Frame::Single(refused(parse_object(text), refusal(max_depth)));
    }
    match serde_json::from_str::<Vec<&RawValue>>(text) {
        Ok(entries) if entries.is_empty() => Frame::Single(Err(Rejected::v2(
            ErrorObject::invalid_request("empty batch"),
        ))),
        Ok(entries) => Frame::Batch(
            entries
                .into_iter()
                .map(|raw| {
                    // NB: the batch's array is the first level.
                    let within = max_depth.saturating_sub(1);
                    match nests_deeper_than(raw.get(), within) {
                        true => refused(raw_batch_item(raw), refusal(max_depth)),
                        false => raw_batch_item(raw),
                    }
                })
                .collect(),
        ),
        Err(err) => Frame::Single(Err(Rejected::v2(json_error(&err)))),
    }
}

/// `read`, refused with `error` for a limit of ours: a call under its id
/// and in its form, a notification with no reply, an answer as invalid. A
/// message already refused keeps its own reason.
fn refused(
    read: Result<Message<'_>, Rejected>,
    error: ErrorObject,
) -> Result<Message<'_>, Rejected> {
    let (version, id, response, notification) = match read? {
        Message::Request(req) => (req.version, req.id, None, false),
        Message::Notification(n) => (n.version, Id::null(), None, true),
        Message::Response(resp) => (resp.version, resp.id, Some(error.message.clone()), false),
    };
    Err(Rejected {
        version,
        id,
        error: Box::new(error),
        response,
        notification,
    })
}

/// A batch that is not all of the common shape, read by serde_json.
fn parse_batch(text: &str) -> Frame<'_> {
    match serde_json::from_str::<Vec<Element<'_>>>(text) {
        Ok(items) if items.is_empty() => Frame::Single(Err(Rejected::v2(
            ErrorObject::invalid_request("empty batch"),
        ))),
        // Spec §6: each element is answered on its own, in 2.0 form.
        Ok(items) => Frame::Batch(items.into_iter().map(batch_item).collect()),
        // NB: serde_json refuses some valid JSON as a batch entry (see
        // `raw_batch_item`); only when the text is not an array of JSON
        // values at all is the whole batch a parse error.
        Err(err) => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(raw) => Frame::Batch(raw.into_iter().map(raw_batch_item).collect()),
            Err(_) => Frame::Single(Err(Rejected::v2(json_error(&err)))),
        },
    }
}

/// Whether `text` opens more than `max_depth` arrays or objects at once,
/// outside strings. Invalid JSON may pass: the parser that follows says so.
pub(crate) fn nests_deeper_than(text: &str, max_depth: usize) -> bool {
    // NB: each level takes a byte, so a short message (almost every one) is
    // not scanned at all; nor is one with no more openings than the limit
    // (in strings or not), which a vectorized count finds several times
    // faster than following the strings.
    let bytes = text.as_bytes();
    if bytes.len() <= max_depth
        || bytes.iter().filter(|&&b| b == b'[' || b == b'{').count() <= max_depth
    {
        return false;
    }
    // NB: byte by byte: a batch's strings are mostly a few bytes long,
    // shorter than what a search for the closing quote needs to pay off.
    let mut depth = 0usize;
    let mut rest = bytes.iter();
    while let Some(&byte) = rest.next() {
        match byte {
            // Skip the string: to its closing quote, stepping over escapes.
            b'"' => loop {
                match rest.next() {
                    Some(b'\\') => {
                        rest.next();
                    }
                    Some(b'"') => break,
                    Some(_) => {}
                    // Cut off inside a string: no claim.
                    None => return false,
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A batch entry is read with 2.0 rules and answered in 2.0 form: batches
/// do not exist in 1.0, so an entry without `"jsonrpc": "2.0"` is invalid.
fn batch_item(element: Element<'_>) -> Result<Message<'_>, Rejected> {
    match element.0 {
        Ok(env) => message(env, None),
        Err(what) => Err(Rejected::v2(ErrorObject::invalid_request(format!(
            "a batch entry must be an object, not {what}"
        )))),
    }
}

/// A batch entry read on its own, after the batch failed to read in one
/// pass although it is JSON: an entry serde_json will not read, such as a
/// number past `f64` (`1e400`, RFC 8259 §6 lets a reader limit the range)
/// or a member name with a lone surrogate escape (§8.2), is refused alone,
/// and the other entries still run.
fn raw_batch_item(raw: &RawValue) -> Result<Message<'_>, Rejected> {
    match serde_json::from_str::<Element<'_>>(raw.get()) {
        Ok(element) => batch_item(element),
        Err(err) => Err(Rejected::v2(ErrorObject::invalid_request(format!(
            "batch entry {} cannot be read ({err})",
            excerpt(raw.get())
        )))),
    }
}

fn json_error(err: &serde_json::Error) -> ErrorObject {
    match err.classify() {
        serde_json::error::Category::Data => ErrorObject::invalid_request(err),
        _ => ErrorObject::parse_error(err),
    }
}

/// Reads one object sent alone (not in a batch).
fn parse_object(text: &str) -> Result<Message<'_>, Rejected> {
    match serde_json::from_str(text) {
        Ok(env) => message(env, Some(Version::V1)),
        Err(err) => Err(Rejected::v2(json_error(&err))),
    }
}

/// Classifies an envelope by its keys. `unmarked` is the version of an
/// object without a `"jsonrpc"` member: 1.0 alone, none in a batch.
fn message(env: Envelope<'_>, unmarked: Option<Version>) -> Result<Message<'_>, Rejected> {
    let method = match env.method {
        Some(text) if env.plain => unquoted(text),
        text => text.and_then(as_string),
    };
    // The version the message is in, when it says one: 2.0, or 1.0 for one
    // sent alone with no "jsonrpc" member, or with `"jsonrpc": "1.0"`,
    // which some 1.0 clients write (Bitcoin Core's examples send it).
    let said = match (env.jsonrpc, unmarked) {
        (None, Some(unmarked)) => Some(unmarked),
        // The first test is the common case, without unquoting.
        (Some(v), _) if v == r#""2.0""# || as_string(v).as_deref() == Some("2.0") => {
            Some(Version::V2)
        }
        (Some(v), Some(Version::V1)) if as_string(v).as_deref() == Some("1.0") => Some(Version::V1),
        _ => None,
    };
    // A 1.0 message is refused in 1.0 form, whatever else is wrong with it:
    // its sender reads answers so.
    let reject_version = said.unwrap_or(Version::V2);
    if let Some(key) = env.duplicate {
        return Err(duplicate(&env, key, reject_version));
    }
    let version = match said {
        Some(version) => version,
        None => return Err(no_version(&env)),
    };
    let id = match env.id.map(Id::from_text) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => {
            let what = "`id` must be a string, a number or null";
            return Err(invalid(reject_version, None, what, None));
        }
    };

    if let Some(m) = env.method {
        let Some(method) = method else {
            return Err(not_a_method(reject_version, id, m));
        };
        let params = match env.params {
            None => None,
            // 1.0 peers often send `"params": null` for "no params".
            Some(p) if version == Version::V1 && p.get() == "null" => None,
            // Spec §4.2: params MUST be a structured value when present.
            Some(p) => match Params::check(p) {
                Ok(()) => Some(p),
                Err(err) => return Err(invalid(reject_version, id, err, None)),
            },
        };
        return Ok(match (version, id) {
            // Spec §4.1: in 2.0 only the absence of `id` makes a notification;
            // in 1.0 a null id does.
            (Version::V2, None) => Message::Notification(Notification {
                version,
                method,
                params,
            }),
            (Version::V1, None) => Message::Notification(Notification {
                version,
                method,
                params,
            }),
            (Version::V1, Some(id)) if id.is_null() => Message::Notification(Notification {
                version,
                method,
                params,
            }),
            (_, Some(id)) => Message::Request(Request {
                version,
                id,
                method,
                params,
            }),
        });
    }

    if let (Some(result), Some(error)) = (env.result, env.error) {
        // Spec §5 (and 1.0's, which sends the other one as null): never both;
        // which of two outcomes to believe is no guess to make.
        if result.get() != "null" && error.get() != "null" {
            let what = "both `result` and `error`";
            return Err(invalid(reject_version, id, what, as_answer(&env, what)));
        }
    }
    if env.result.is_some() || env.error.is_some() {
        let id = id.unwrap_or_else(Id::null);
        let outcome = match (env.result, env.error) {
            // 1.0 sends both members with one of them null.
            (_, Some(err)) if err.get() != "null" => Err(decode_error_object(err)),
            (Some(result), _) => Ok(result.to_owned()),
            (None, _) => Ok(crate::error::null()),
        };
        return Ok(Message::Response(Response {
            version,
            id,
            outcome,
        }));
    }

    let what = "no `method`, `result` or `error` member";
    let response = as_answer(&env, "neither `result` nor `error`");
    Err(invalid(reject_version, id, what, response))
}

/// What is wrong with a message that has neither `method` nor `params`,
/// for the caller it was meant to answer: only a call has either, so it
/// was meant as an answer.
fn as_answer(env: &Envelope<'_>, what: &str) -> Option<String> {
    let answer_like = env.method.is_none() && env.params.is_none();
    answer_like.then(|| what.to_owned())
}

/// An invalid request, refused under `id` (null when it has none).
/// `response`: for a message meant as an answer, what is wrong with it,
/// for the call of ours it answers.
// NB: this and the other refusals below are cold, and kept out of
// `message`, whose path for a well-formed message then lies together.
#[cold]
#[inline(never)]
fn invalid(
    version: Version,
    id: Option<Id>,
    what: impl fmt::Display,
    response: Option<String>,
) -> Rejected {
    Rejected {
        version,
        id: id.unwrap_or_else(Id::null),
        error: Box::new(ErrorObject::invalid_request(what)),
        response,
        notification: false,
    }
}

/// A call whose `method`, the JSON text `m`, is not a string of Unicode
/// text.
#[cold]
#[inline(never)]
fn not_a_method(version: Version, id: Option<Id>, m: &str) -> Rejected {
    // NB: a JSON string that is no text: serde_json read the whole message,
    // so only an escaped surrogate without its pair is left.
    let what = match m.starts_with('"') {
        true => format!(
            "`method` must be Unicode text, and {} holds an unpaired surrogate \
             (an escape in \\uD800-\\uDFFF without its pair)",
            excerpt(m)
        ),
        false => format!("`method` must be a string, not {}", excerpt(m)),
    };
    invalid(version, id, what, None)
}

/// A message with the member `key` twice.
#[cold]
#[inline(never)]
fn duplicate(env: &Envelope<'_>, key: &str, version: Version) -> Rejected {
    // RFC 8259 §4 leaves a repeated name's meaning to the reader; which of
    // two ids or methods to believe is no guess to make. The reply still
    // carries the id when it is not the member repeated (spec §5: null only
    // when the id could not be detected).
    let id = match key {
        "id" => None,
        _ => env.id.and_then(Id::from_text),
    };
    let what = format!("duplicate member `{key}`");
    invalid(version, id, &what, as_answer(env, &what))
}

/// A message in no version we read.
#[cold]
#[inline(never)]
fn no_version(env: &Envelope<'_>) -> Rejected {
    let id = env.id.and_then(Id::from_text);
    let what = match env.jsonrpc {
        Some(_) => r#"`jsonrpc` must be exactly "2.0""#,
        None => r#"a batch entry must have `"jsonrpc": "2.0"` (batches are 2.0 only)"#,
    };
    invalid(Version::V2, id, what, as_answer(env, what))
}

/// The value of a JSON string written as `text` (valid JSON), borrowed
/// unless it holds escapes (serde's own `Cow<str>` always copies); `None`
/// for any other value.
fn as_string(text: &str) -> Option<Cow<'_, str>> {
    // A valid JSON string without a backslash is its text between the
    // quotes; only escapes need serde.
    if !text.as_bytes().contains(&b'\\') {
        return unquoted(text);
    }
    unescaped(text)
}

/// The value of a JSON string with escapes, written as `text`.
// NB: cold, and kept out of line: `as_string` is asked of every message's
// version, and rarely meets an escape.
#[cold]
#[inline(never)]
fn unescaped(text: &str) -> Option<Cow<'_, str>> {
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The value of a JSON string written as `text` without escapes; `None`
/// for any other value.
fn unquoted(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    Some(Cow::Borrowed(inner))
}

/// A peer's error as an [`ErrorObject`]; a non-standard one (1.0 allowed any
/// value) is kept whole in `data` so nothing the peer said is lost.
// NB: kept out of `message`: serde's reader of an error object is long,
// and most answers carry a result.
#[inline(never)]
fn decode_error_object(raw: &RawValue) -> ErrorObject {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| ErrorObject {
        code: ErrorObject::INTERNAL_ERROR,
        message: "the peer sent an error that is not a JSON-RPC 2.0 error object".into(),
        data: Some(raw.to_owned()),
    })
}

/// A member that is absent, `null`, or a value.
enum Member<T> {
    Absent,
    Null,
    Value(T),
}

impl<T> Member<T> {
    fn is_absent(&self) -> bool {
        matches!(self, Member::Absent)
    }
}

impl<T: Serialize> Serialize for Member<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Member::Value(v) => v.serialize(s),
            _ => s.serialize_unit(),
        }
    }
}

/// Every shape of outgoing message, members in the order the spec's examples use.
#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Member::is_absent")]
    params: Member<&'a RawValue>,
    #[serde(skip_serializing_if = "Member::is_absent")]
    result: Member<&'a RawValue>,
    #[serde(skip_serializing_if = "Member::is_absent")]
    error: Member<&'a ErrorObject>,
    #[serde(skip_serializing_if = "Member::is_absent")]
    id: Member<&'a Id>,
}

impl Outgoing<'_> {
    fn to_text(&self) -> String {
        // Only strings and already-valid raw JSON go in, so this cannot fail;
        // answering with a fixed internal error keeps the promise of a reply anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":null}"#
                .to_owned()
        })
    }
}

fn jsonrpc(version: Version) -> Option<&'static str> {
    match version {
        Version::V1 => None,
        Version::V2 => Some("2.0"),
    }
}

/// The reply to a request, in the request's version: 2.0 carries either
/// `result` or `error`, 1.0 carries both with one of them `null`.
pub fn encode_response(
    version: Version,
    id: &Id,
    outcome: Result<&RawValue, &ErrorObject>,
) -> String {
    encode_outcome(version, id, outcome.map(RawValue::get))
}

/// [`encode_response`] of a result given as its JSON text (valid JSON).
pub(crate) fn encode_outcome(
    version: Version,
    id: &Id,
    outcome: Result<&str, &ErrorObject>,
) -> String {
    let Ok(result) = outcome else {
        let mut out = String::new();
        write_response(&mut out, version, id, outcome);
        return out;
    };
    // NB: sized exactly: a WebSocket transport hands the text on as its
    // buffer, and a buffer with room to spare costs an allocation more
    // there (`bytes::Bytes::from(Vec)`).
    let mut digits = itoa::Buffer::new();
    let id = id.json(&mut digits);
    let (head, tail) = result_members(version);
    let mut out = String::with_capacity(head.len() + result.len() + tail.len() + id.len() + 1);
    for part in [head, result, tail, id, "}"] {
        out.push_str(part);
    }
    out
}

/// What goes before a result and between it and the id (2.0 carries
/// either `result` or `error`, 1.0 both with one of them `null`).
fn result_members(version: Version) -> (&'static str, &'static str) {
    match version {
        Version::V2 => (r#"{"jsonrpc":"2.0","result":"#, r#","id":"#),
        Version::V1 => (r#"{"result":"#, r#","error":null,"id":"#),
    }
}

/// [`encode_outcome`], appended to `out` (a batch's array, say).
pub(crate) fn write_response(
    out: &mut String,
    version: Version,
    id: &Id,
    outcome: Result<&str, &ErrorObject>,
) {
    let error = match outcome {
        // The hot path, written by hand: both members are valid JSON text
        // already.
        Ok(result) => {
            let (head, tail) = result_members(version);
            let mut digits = itoa::Buffer::new();
            for part in [head, result, tail, id.json(&mut digits), "}"] {
                out.push_str(part);
            }
            return;
        }
        Err(error) => error,
    };
    out.push_str(
        &Outgoing {
            jsonrpc: jsonrpc(version),
            method: None,
            params: Member::Absent,
            result: match version {
                Version::V2 => Member::Absent,
                Version::V1 => Member::Null,
            },
            error: Member::Value(error),
            id: Member::Value(id),
        }
        .to_text(),
    );
}

/// A request with a numeric id. 1.0 requires `params` to be an array, so a
/// missing one is sent as `[]`.
pub fn encode_request(
    version: Version,
    id: &Id,
    method: &str,
    params: Option<&RawValue>,
) -> String {
    Outgoing {
        jsonrpc: jsonrpc(version),
        method: Some(method),
        params: params_member(version, params),
        result: Member::Absent,
        error: Member::Absent,
        id: Member::Value(id),
    }
    .to_text()
}

/// A notification: no `id` member in 2.0, `"id": null` in 1.0.
pub fn encode_notification(version: Version, method: &str, params: Option<&RawValue>) -> String {
    Outgoing {
        jsonrpc: jsonrpc(version),
        method: Some(method),
        params: params_member(version, params),
        result: Member::Absent,
        error: Member::Absent,
        id: match version {
            Version::V1 => Member::Null,
            Version::V2 => Member::Absent,
        },
    }
    .to_text()
}

fn params_member(version: Version, params: Option<&RawValue>) -> Member<&RawValue> {
    match (params, version) {
        (Some(p), _) => Member::Value(p),
        (None, Version::V2) => Member::Absent,
        (None, Version::V1) => Member::Value(empty_array()),
    }
}

fn empty_array() -> &'static RawValue {
    // A literal that is valid JSON; `from_string` would allocate every call.
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| crate::error::null())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Result<Message<'_>, Rejected> {
        match parse(text) {
            Frame::Single(m) => m,
            Frame::Batch(_) => panic!("unexpected batch"),
        }
    }

    #[test]
    fn null_id_is_a_request_in_2_0_and_a_notification_in_1_0() {
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"m","id":null}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            single(r#"{"method":"m","params":[],"id":null}"#),
            Ok(Message::Notification(Notification {
                version: Version::V1,
                ..
            }))
        ));
    }

    #[test]
    fn a_method_reads_the_same_with_or_without_escapes() {
        // The first is read by the scanner, the others by serde_json.
        for text in [
            r#"{"jsonrpc":"2.0","method":"update","params":[]}"#,
            r#"{"jsonrpc":"2.0","method":"upd\u0061te","params":[]}"#,
            r#"{"jsonrpc":"2.0","method":"update","\u0078":1}"#,
        ] {
            let Ok(Message::Notification(n)) = single(text) else {
                panic!("{text}")
            };
            assert_eq!(n.method, "update", "{text}");
        }
        for text in [
            r#"{"jsonrpc":"2.0","method":5,"id":1}"#,
            r#"{"jsonrpc":"2.0","method":null,"id":1}"#,
        ] {
            let Err(r) = single(text) else {
                panic!("{text}")
            };
            assert_eq!(r.error.code, ErrorObject::INVALID_REQUEST, "{text}");
        }
    }

    #[test]
    fn ids_are_kept_as_written() {
        let Ok(Message::Request(req)) =
            single(r#"{"jsonrpc":"2.0","method":"m","id":123456789012345678901234567890}"#)
        else {
            panic!()
        };
        assert_eq!(req.id.to_string(), "123456789012345678901234567890");
        assert_eq!(
            encode_response(Version::V2, &req.id, Ok(RawValue::NULL)),
            r#"{"jsonrpc":"2.0","result":null,"id":123456789012345678901234567890}"#
        );
    }

    #[test]
    fn bad_members_are_named_and_keep_the_id() {
        let Err(r) = single(r#"{"jsonrpc":"2.0","method":"m","params":5,"id":"x"}"#) else {
            panic!()
        };
        assert_eq!(r.error.code, ErrorObject::INVALID_REQUEST);
        assert!(r.error.message.contains("params"), "{}", r.error.message);
        assert_eq!(r.id.to_string(), r#""x""#);

        let Err(r) = single(r#"{"jsonrpc":"2.0","method":"m","id":{"a":1}}"#) else {
            panic!()
        };
        assert!(r.id.is_null());
        assert!(r.error.message.contains("id"), "{}", r.error.message);

        let Err(r) = single(r#"{"jsonrpc":"2.1","method":"m","id":3}"#) else {
            panic!()
        };
        assert_eq!(r.id.to_string(), "3");
    }

    #[test]
    fn one_zero_response_with_both_members() {
        let Ok(Message::Response(resp)) = single(r#"{"result":7,"error":null,"id":1}"#) else {
            panic!()
        };
        assert_eq!(resp.version, Version::V1);
        assert_eq!(resp.outcome.unwrap().get(), "7");
        let Ok(Message::Response(resp)) = single(r#"{"result":null,"error":"boom","id":1}"#) else {
            panic!()
        };
        assert_eq!(resp.outcome.unwrap_err().data.unwrap().get(), r#""boom""#);
    }

    #[test]
    fn batch_entries_must_say_they_are_2_0() {
        let text = r#"[{"method":"m","params":[],"id":null},{"method":"n","id":"x"},{"jsonrpc":"2.0","method":"o","id":null}]"#;
        let Frame::Batch(items) = parse(text) else {
            panic!()
        };
        // Batches do not exist in 1.0: an entry without "jsonrpc" is no
        // valid 2.0 request, refused under its id, in 2.0 form.
        for (item, id) in items[..2]
            .iter()
            .zip([Id::null(), Id::from("x".to_owned())])
        {
            let Err(rejected) = item else {
                panic!("an entry without \"jsonrpc\" was accepted: {item:?}")
            };
            assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
            assert!(rejected.error.message.contains("batches are 2.0 only"));
            assert_eq!((rejected.version, &rejected.id), (Version::V2, &id));
            assert!(rejected.reply().is_some());
        }
        assert!(
            matches!(&items[2], Ok(Message::Request(r)) if r.version == Version::V2 && r.id.is_null())
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_message_is_ignored() {
        let call = "\u{feff}{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1}";
        assert!(matches!(parse(call), Frame::Single(Ok(Message::Request(r))) if r.method == "m"));
        let batch = "\u{feff}[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}]";
        assert!(matches!(parse(batch), Frame::Batch(items) if items.len() == 1));
        // Only first: elsewhere it is no JSON.
        let Frame::Single(Err(rejected)) = parse("\u{feff}\u{feff}{}") else {
            panic!()
        };
        assert_eq!(rejected.error.code, ErrorObject::PARSE_ERROR);
    }

    #[test]
    fn a_bad_1_0_call_is_answered_in_1_0_form_whatever_is_wrong() {
        for text in [
            r#"{"method":"m","params":[1],"params":[2],"id":1}"#,
            r#"{"method":"m","params":[1],"id":1,"id":2}"#,
            r#"{"method":"m","params":5,"id":1}"#,
            // No string method either: without "jsonrpc" it is still 1.0.
            r#"{"method":5,"params":[1],"id":1}"#,
            r#"{"method":null,"params":[1],"id":1}"#,
            r#"{"method":["x"],"id":1}"#,
            r#"{"params":[1],"id":1}"#,
        ] {
            let Err(rejected) = single(text) else {
                panic!("{text} was accepted")
            };
            assert_eq!(rejected.version, Version::V1, "{text}");
            assert!(rejected
                .reply()
                .unwrap()
                .starts_with(r#"{"result":null,"error":"#));
        }
        // With a "jsonrpc" member, however wrong, the 2.0 form; "1.0",
        // which some 1.0 clients write, is 1.0.
        let Err(rejected) = single(r#"{"jsonrpc":"2.0","method":5,"id":1}"#) else {
            panic!()
        };
        assert_eq!(rejected.version, Version::V2);
        let Err(rejected) = single(r#"{"jsonrpc":"1.0","method":5,"id":1}"#) else {
            panic!()
        };
        assert_eq!(rejected.version, Version::V1);
        let Ok(Message::Request(call)) = single(r#"{"jsonrpc":"1.0","method":"m","id":1}"#) else {
            panic!()
        };
        assert_eq!(call.version, Version::V1);
        // In a batch (2.0 only) it is refused.
        let Frame::Batch(items) = parse(r#"[{"jsonrpc":"1.0","method":"m","id":1}]"#) else {
            panic!()
        };
        assert!(matches!(&items[0], Err(r) if r.version == Version::V2));
    }

    #[test]
    fn an_answer_with_both_outcomes_is_no_answer() {
        for text in [
            r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"x"},"id":4}"#,
            r#"{"result":1,"error":"boom","id":4}"#,
        ] {
            let Err(rejected) = single(text) else {
                panic!("{text} was accepted")
            };
            assert_eq!(rejected.id, Id::from(4u64));
            assert_eq!(
                rejected.response.as_deref(),
                Some("both `result` and `error`")
            );
        }
        // 1.0's form, the other one null, is read in either version.
        for text in [
            r#"{"jsonrpc":"2.0","result":1,"error":null,"id":4}"#,
            r#"{"result":null,"error":{"code":1,"message":"x"},"id":4}"#,
        ] {
            assert!(matches!(single(text), Ok(Message::Response(_))), "{text}");
        }
    }

    #[test]
    fn encodes_each_form() {
        let id = Id::from(1u64);
        let params = RawValue::from_string("[1]".into()).unwrap();
        assert_eq!(
            encode_request(Version::V2, &id, "m", Some(&params)),
            r#"{"jsonrpc":"2.0","method":"m","params":[1],"id":1}"#
        );
        assert_eq!(
            encode_notification(Version::V1, "m", None),
            r#"{"method":"m","params":[],"id":null}"#
        );
        assert_eq!(
            encode_notification(Version::V2, "m", None),
            r#"{"jsonrpc":"2.0","method":"m"}"#
        );
        let err = ErrorObject::new(1, "x");
        assert_eq!(
            encode_response(Version::V1, &id, Err(&err)),
            r#"{"result":null,"error":{"code":1,"message":"x"},"id":1}"#
        );
    }

    #[test]
    fn a_duplicate_member_refuses_its_own_batch_entry_only() {
        let Frame::Batch(items) = parse(
            r#"[{"jsonrpc":"2.0","method":"a","id":1,"id":2},{"jsonrpc":"2.0","method":"b","id":3}]"#,
        ) else {
            panic!("not a batch");
        };
        let Err(rejected) = &items[0] else {
            panic!("a duplicate id was accepted");
        };
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
        assert!(rejected.error.message.contains("duplicate member `id`"));
        assert!(rejected.id.is_null(), "which of two ids is unknown: null");
        assert!(matches!(&items[1], Ok(Message::Request(r)) if r.method == "b"));
        let Err(rejected) = single(r#"{"jsonrpc":"2.0","method":"a","method":"b","id":1}"#) else {
            panic!("a duplicate method was accepted");
        };
        assert_eq!(rejected.id, Id::from(1u64), "the id was not repeated: kept");
    }

    #[test]
    fn batch_elements_that_are_not_objects_say_what_they_are() {
        let Frame::Batch(items) =
            parse(r#"[1, "x", [2], null, true, -1.5, {"jsonrpc":"2.0","method":"m"}]"#)
        else {
            panic!("not a batch");
        };
        let said: Vec<String> = items
            .iter()
            .map(|item| match item {
                Err(rejected) => rejected.error.message.clone(),
                Ok(_) => "a message".into(),
            })
            .collect();
        for (said, what) in
            said.iter()
                .zip(["1", "the string \"x\"", "an array", "null", "true", "-1.5"])
        {
            assert!(said.ends_with(&format!("not {what}")), "{said}");
        }
        assert_eq!(said[6], "a message");
    }

    #[test]
    fn ids_keep_their_exact_text() {
        for text in [
            "1",
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-0",
            "1.0",
            "1e3",
            "\"a\\u0062\"",
            "null",
        ] {
            let reply = encode_response(
                Version::V2,
                &Id::from_text(text).unwrap(),
                Ok(RawValue::NULL),
            );
            assert_eq!(
                reply,
                format!(r#"{{"jsonrpc":"2.0","result":null,"id":{text}}}"#)
            );
        }
        assert_eq!(Id::from(7u64), Id::from_text("7").unwrap());
        assert_ne!(Id::from(7u64), Id::from("7"));
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let long = "x".repeat(300);
        assert!(!nests_deeper_than(&format!("[{long}]"), 128));
        assert!(!nests_deeper_than(&nested(128), 128));
        assert!(nests_deeper_than(&nested(129), 128));
        // Siblings do not add up: depth is what is open at once.
        let wide = format!("[{}]", vec![nested(100); 3].join(","));
        assert!(!nests_deeper_than(&wide, 128));
        // Brackets and escaped quotes inside strings are text.
        let in_string = format!(r#"["{}\"{}"]"#, "[".repeat(200), "{".repeat(200));
        assert!(!nests_deeper_than(&in_string, 128));
        let after_string = format!(r#"["a\"b", {}]"#, nested(200));
        assert!(nests_deeper_than(&after_string, 128));
        // Cut off inside a string or after an escape: no panic, no claim.
        assert!(!nests_deeper_than(
            &format!("[\"{}\\", "[".repeat(200)),
            128
        ));
    }

    #[test]
    fn the_depth_limit_holds_for_messages_read_by_hand_too() {
        let refused = |item: &Result<Message<'_>, Rejected>| matches!(item, Err(rejected) if rejected.error.message.contains("nests"));
        let too_deep = |frame: Frame<'_>| match frame {
            Frame::Single(item) => refused(&item),
            Frame::Batch(items) => items.iter().any(refused),
        };
        for limit in [0, 1, 2, 3, 5] {
            for k in 1..limit + 3 {
                let value = format!("{}1{}", "[".repeat(k), "]".repeat(k));
                let single = [
                    format!(r#"{{"jsonrpc":"2.0","method":"m","params":{value},"id":1}}"#),
                    format!(r#"{{"jsonrpc":"2.0","result":{value},"id":1}}"#),
                    format!(r#"{{"jsonrpc":"2.0","method":"m","x":{value}}}"#),
                ];
                let batches = single.clone().map(|one| format!("[{one}]"));
                for text in single.into_iter().chain(batches) {
                    assert_eq!(
                        too_deep(parse_within(&text, limit)),
                        nests_deeper_than(&text, limit),
                        "{text} within {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_message_nested_too_deep_is_refused_with_the_limit() {
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"m","params":{}0{},"id":1}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let Frame::Single(Err(rejected)) = parse(&text) else {
            panic!("a message nested 200 deep was read");
        };
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
        assert!(
            rejected.error.message.contains("128"),
            "{}",
            rejected.error.message
        );
        assert!(matches!(parse_within(&text, 300), Frame::Single(Ok(_))));
    }

    #[test]
    fn a_method_with_an_unpaired_surrogate_is_named_as_such() {
        let Frame::Single(Err(rejected)) = parse(r#"{"jsonrpc":"2.0","method":"\ud800","id":1}"#)
        else {
            panic!("a method that is no Unicode text was read");
        };
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
        assert!(
            rejected.error.message.contains("unpaired surrogate"),
            "{}",
            rejected.error.message
        );
        assert_eq!(rejected.id, Id::from(1_u64));
    }

    #[test]
    fn a_message_too_deep_is_still_read_for_what_it_is() {
        let deep = format!("{}0{}", "[".repeat(200), "]".repeat(200));
        let refusal = |item: &Result<Message<'_>, Rejected>| match item {
            Err(rejected) => (rejected.error.code, rejected.id.clone(), rejected.reply()),
            Ok(message) => panic!("read: {message:?}"),
        };
        // Invalid JSON is a parse error, however deep.
        let unclosed = "[".repeat(201);
        let Frame::Single(item) = parse(&unclosed) else {
            panic!()
        };
        assert_eq!(refusal(&item).0, ErrorObject::PARSE_ERROR);
        // A call is refused under its id, in its own form.
        let call = format!(r#"{{"method":"m","params":{deep},"id":3}}"#);
        let Frame::Single(item) = parse(&call) else {
            panic!()
        };
        let (code, id, reply) = refusal(&item);
        assert_eq!((code, id), (ErrorObject::INVALID_REQUEST, Id::from(3u64)));
        assert!(reply.unwrap().starts_with(r#"{"result":null,"error":"#));
        // A notification gets no reply, alone or in a batch, where only the
        // entry too deep is refused.
        let notification = format!(r#"{{"jsonrpc":"2.0","method":"m","params":{deep}}}"#);
        let Frame::Single(item) = parse(&notification) else {
            panic!()
        };
        assert_eq!(refusal(&item).2, None);
        let batch = format!(r#"[{notification},{{"jsonrpc":"2.0","method":"m","id":1}}]"#);
        let Frame::Batch(items) = parse(&batch) else {
            panic!()
        };
        assert_eq!(refusal(&items[0]).2, None);
        assert!(matches!(&items[1], Ok(Message::Request(_))));
        // An answer too deep is an invalid answer to its call.
        let answer = format!(r#"{{"jsonrpc":"2.0","result":{deep},"id":9}}"#);
        let Frame::Single(Err(rejected)) = parse(&answer) else {
            panic!()
        };
        assert_eq!(rejected.id, Id::from(9u64));
        assert!(rejected.response.unwrap().contains("128 levels"));
    }
}
