//! Progress reports for one call, typed at both ends: LSP's `$/progress`, under a token the caller puts in its params.
//!
//! The caller asks with [`Peer::request_with_progress`]: its params (by
//! name) get a `workDoneToken` member, and the [`ProgressCall`] it gets back
//! yields the reports sent under that token, in order, then ends once the
//! answer is in. The handler's end is a [`Progress`], made from the token
//! its params carry; `#[rpcpeer::api]` writes both ends for a method that
//! takes a `Progress<T>` argument.
//!
//! On the wire this is LSP's work done progress: a language server or
//! client that knows `$/progress` reads the reports when `T` has LSP's
//! `begin` / `report` / `end` shape (`examples/editor_and_server` declares
//! it), and any peer can send them to a [`ProgressCall`]:
//!
//! ```text
//! --> {"jsonrpc":"2.0","method":"index","params":{"root":"/src","workDoneToken":"rpcpeer:7"},"id":7}
//! <-- {"jsonrpc":"2.0","method":"$/progress","params":{"token":"rpcpeer:7","value":{"done":10}}}
//! <-- {"jsonrpc":"2.0","method":"$/progress","params":{"token":"rpcpeer:7","value":{"done":20}}}
//! <-- {"jsonrpc":"2.0","result":20,"id":7}
//! ```
//!
//! The answer's handler writes every report it sent before its reply (the
//! driver keeps that order), and the caller's driver hands the reports to
//! the `ProgressCall` as it reads them, in that order. A report that comes
//! after the answer, under one of our tokens, is dropped (logged at debug);
//! under a token of the peer's own, it goes to the router like any other
//! `$/progress`. Reports the caller has not read yet hold at most
//! [`Config::max_incoming_bytes`](crate::Config::max_incoming_bytes); past
//! that, they are counted, and the stream yields [`Error::ReportsLost`]
//! with the count.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::handler::BoxFuture;
use crate::params::ParamsError;
use crate::peer::Peer;

/// The notification that carries a report: `{"token": …, "value": …}`.
pub const METHOD: &str = "$/progress";

/// The params member that carries the caller's token (LSP's
/// `WorkDoneProgressParams`).
pub const TOKEN_MEMBER: &str = "workDoneToken";

/// What our own tokens start with: one per call, from its id, so that a
/// token the peer made (LSP's `window/workDoneProgress/create`) is never
/// taken for one of ours.
const OURS: &str = "rpcpeer:";

/// Where the driver puts the reports for one call of ours: handed over as
/// each frame is read, so they keep the order they came in, and held up to
/// a byte budget so that a caller slow to read cannot make a peer's reports
/// take memory without bound.
pub(crate) struct ReportSink {
    reports: mpsc::UnboundedSender<Box<RawValue>>,
    held: Arc<Held>,
}

/// What a call's reports hold between the driver and the caller.
#[derive(Default)]
struct Held {
    bytes: AtomicUsize,
    /// Reports dropped for the budget since the caller last heard of it.
    lost: AtomicU64,
}

impl ReportSink {
    /// Hands `value` to the caller, or counts it lost when the reports
    /// waiting already hold `budget` bytes (one report alone always goes).
    pub(crate) fn deliver(&self, value: &RawValue, budget: usize) {
        let len = value.get().len();
        let held = self.held.bytes.load(Ordering::Relaxed);
        if held > 0 && held.saturating_add(len) > budget {
            self.held.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.held.bytes.fetch_add(len, Ordering::Relaxed);
        if self.reports.send(value.to_owned()).is_err() {
            // The caller stopped listening: nobody holds it.
            self.held.bytes.fetch_sub(len, Ordering::Relaxed);
        }
    }
}

/// A progress token, as LSP has it: a number or a string.
///
/// ```
/// use rpcpeer::progress::ProgressToken;
///
/// let token: ProgressToken = serde_json::from_str(r#""indexing-1""#).unwrap();
/// assert_eq!(token, ProgressToken::Text("indexing-1".into()));
/// assert_eq!(serde_json::to_string(&ProgressToken::Number(3)).unwrap(), "3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProgressToken {
    /// A number token.
    Number(i64),
    /// A string token. (Not named `String`: a public variant of that name
    /// makes rustc spell `std::string::String` in every error message of
    /// the crates that use this one.)
    Text(String),
}

/// A method with a `Progress<T>` param takes the token among its params
/// (`workDoneToken`), so `#[rpcpeer::api(schema)]` describes it with them.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for ProgressToken {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProgressToken".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // LSP: `type ProgressToken = integer | string`.
        schemars::json_schema!({
            "anyOf": [
                {"type": "integer", "format": "int64"},
                {"type": "string"}
            ]
        })
    }
}

impl fmt::Display for ProgressToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgressToken::Number(n) => write!(f, "{n}"),
            ProgressToken::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// The handler's end: sends reports of type `T` to the caller, under the
/// token the caller gave. A caller that gave none asked for no reports:
/// [`Progress::report`] then sends nothing.
///
/// A hand-written handler takes the token in its params struct and makes
/// one with [`Progress::new`]; `#[rpcpeer::api]` does that for a method
/// with a `Progress<T>` argument.
///
/// ```
/// use rpcpeer::progress::{Progress, ProgressToken};
/// use rpcpeer::{Context, ErrorObject, Router};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Count { upto: u32, work_done_token: Option<ProgressToken> }
///
/// let mut router = Router::new();
/// router.method("count", |p: Count, cx: Context| async move {
///     let progress = Progress::<u32>::new(cx.peer().clone(), p.work_done_token);
///     for n in 1..=p.upto {
///         progress.report(n).await?;
///     }
///     Ok::<_, ErrorObject>(p.upto)
/// });
/// ```
pub struct Progress<T> {
    peer: Peer,
    token: Option<ProgressToken>,
    _reports: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for Progress<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Progress<T> {
    fn clone(&self) -> Self {
        Self {
            peer: self.peer.clone(),
            token: self.token.clone(),
            _reports: PhantomData,
        }
    }
}

impl<T: Serialize> Progress<T> {
    /// Reports to `peer` under `token`, or nowhere when there is none.
    pub fn new(peer: Peer, token: Option<ProgressToken>) -> Self {
        Self {
            peer,
            token,
            _reports: PhantomData,
        }
    }

    /// The caller's token, if it asked for reports.
    pub fn token(&self) -> Option<&ProgressToken> {
        self.token.as_ref()
    }

    /// Whether the caller asked for reports and can get them: a handler
    /// may skip the work of making them when not. A caller over a one-shot
    /// transport (an HTTP POST, whose handlers get a
    /// [detached](Peer::is_detached) peer) cannot, token or not.
    pub fn is_wanted(&self) -> bool {
        self.token.is_some() && !self.peer.is_detached()
    }

    /// Sends one report (a `$/progress` notification), waiting while the
    /// outgoing queue is full. The caller gets it before the call's answer.
    /// Nothing is sent, and nothing fails, when the caller gave no token or
    /// came over a one-shot transport (see [`Progress::is_wanted`]).
    ///
    /// # Errors
    /// As [`Peer::notify`]: [`Error::Closed`] when the connection is gone,
    /// [`Error::EncodeParams`] when `value` does not serialize.
    pub async fn report(&self, value: T) -> Result<(), Error> {
        let Some(token) = self.token.as_ref().filter(|_| self.is_wanted()) else {
            return Ok(());
        };
        #[derive(Serialize)]
        struct Report<'a, T> {
            token: &'a ProgressToken,
            value: T,
        }
        self.peer.notify(METHOD, Report { token, value }).await
    }
}

/// The caller's end of a call with progress reports, from
/// [`Peer::request_with_progress`]. As a [`Stream`], it yields the reports
/// in the order they were sent, and ends once the answer is in and every
/// report sent before it was yielded. `.await` it (or
/// [`answer`](ProgressCall::answer)) for the answer; reports not yet read
/// are dropped then.
///
/// Dropping it before the answer cancels the call, as dropping
/// [`Peer::request`]'s future does (`$/cancelRequest`). The connection's
/// request timeout ([`Config::request_timeout`](crate::Config::request_timeout))
/// counts from the last report read, not from the start: a long call that
/// keeps reporting stays alive; one that falls silent for that long fails
/// with [`Error::Timeout`] and is cancelled.
///
/// ```
/// use futures::StreamExt;
/// use rpcpeer::progress::{Progress, ProgressToken};
/// use rpcpeer::{transport::memory_pair, Context, Driver, ErrorObject, Router};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Count { upto: u32, work_done_token: Option<ProgressToken> }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let mut router = Router::new();
/// router.method("count", |p: Count, cx: Context| async move {
///     let progress = Progress::new(cx.peer().clone(), p.work_done_token);
///     for n in 1..=p.upto {
///         progress.report(n).await?;
///     }
///     Ok::<_, ErrorObject>("counted")
/// });
/// let (a, b) = memory_pair();
/// tokio::spawn(Driver::new(a, router).1);
/// let (client, driver) = Driver::new(b, Router::new());
/// tokio::spawn(driver);
///
/// let mut call = client.request_with_progress::<u32, String>("count", serde_json::json!({"upto": 3}));
/// let mut reports = Vec::new();
/// while let Some(report) = call.next().await {
///     reports.push(report?);
/// }
/// assert_eq!(reports, [1, 2, 3]);
/// assert_eq!(call.await?, "counted");
/// # Ok(()) }
/// ```
#[must_use = "a call with progress does nothing unless polled or awaited"]
pub struct ProgressCall<T, R> {
    method: String,
    /// `None` once the stream has ended.
    reports: Option<mpsc::UnboundedReceiver<Box<RawValue>>>,
    held: Arc<Held>,
    answer: Answer<R>,
    /// The connection's request timeout, counted from the last report.
    timeout: Option<Duration>,
    /// When the timeout runs out; made at the first poll (it needs the
    /// runtime), moved on by each report.
    deadline: Option<Pin<Box<Sleep>>>,
    _reports: PhantomData<fn() -> T>,
}

impl<T, R> fmt::Debug for ProgressCall<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressCall")
            .field("method", &self.method)
            .field("answered", &matches!(self.answer, Answer::Ready(_)))
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned, R: DeserializeOwned + Send + 'static> ProgressCall<T, R> {
    pub(crate) fn start(peer: &Peer, method: &str, params: &impl Serialize) -> Self {
        let id = peer.next_id();
        // NB: the sender travels with the request to the driver, which
        // keeps it until the answer; a request never sent drops it, and
        // the reports end at once.
        let (tx, rx) = mpsc::unbounded_channel();
        let held = Arc::new(Held::default());
        let sink = ReportSink {
            reports: tx,
            held: Arc::clone(&held),
        };
        let answer = match with_token(method, params, &format!("{OURS}{id}")) {
            Ok(params) => {
                let peer = peer.clone();
                let method = method.to_owned();
                // NB: no timeout of its own: ours counts from the last report.
                Answer::Waiting(Box::pin(async move {
                    peer.request_with_reports(id, &method, params, sink).await
                }))
            }
            Err(err) => Answer::Ready(Err(err)),
        };
        Self {
            method: method.to_owned(),
            reports: Some(rx),
            held,
            answer,
            timeout: peer.timeout(),
            deadline: None,
            _reports: PhantomData,
        }
    }

    /// Waits for the call's answer, reading and dropping the reports not
    /// read yet (each still moves the timeout on).
    ///
    /// # Errors
    /// As [`Peer::request`] (the request timeout counts from the last
    /// report, see [`ProgressCall`]), and [`Error::EncodeParams`] when the
    /// params are not by name (an object, or none) or already have a
    /// `workDoneToken`: the call is not sent then, and its reports end at once.
    pub async fn answer(mut self) -> Result<R, Error> {
        while self.next().await.is_some() {}
        let timed_out = self.timed_out();
        let request = match self.answer {
            Answer::Waiting(request) => request,
            Answer::Ready(answer) => return answer,
        };
        // The reports ended first: the answer is in, or about to be.
        let Some(after) = self.timeout else {
            return request.await;
        };
        let deadline = self
            .deadline
            .map_or_else(|| Instant::now() + after, |sleep| sleep.deadline());
        tokio::time::timeout_at(deadline, request)
            .await
            .unwrap_or(Err(timed_out))
    }
}

impl<T, R> ProgressCall<T, R> {
    /// The error of a call whose timeout ran out.
    fn timed_out(&self) -> Error {
        Error::Timeout {
            method: self.method.clone(),
            after: self.timeout.unwrap_or_default(),
        }
    }
}

// NB: nothing in it is pinned in place: the request is boxed, and the
// answer is only ever moved out whole.
impl<T, R> Unpin for ProgressCall<T, R> {}

/// A call's answer: still to come, or in.
enum Answer<R> {
    Waiting(BoxFuture<Result<R, Error>>),
    Ready(Result<R, Error>),
}

impl<T, R> IntoFuture for ProgressCall<T, R>
where
    T: DeserializeOwned + 'static,
    R: DeserializeOwned + Send + 'static,
{
    type Output = Result<R, Error>;
    type IntoFuture = BoxFuture<Result<R, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.answer())
    }
}

impl<T: DeserializeOwned, R> Stream for ProgressCall<T, R> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(reports) = this.reports.as_mut() else {
                return Poll::Ready(None);
            };
            let lost = this.held.lost.swap(0, Ordering::Relaxed);
            if lost > 0 {
                return Poll::Ready(Some(Err(Error::ReportsLost {
                    method: this.method.clone(),
                    lost,
                })));
            }
            match reports.poll_recv(cx) {
                Poll::Ready(Some(raw)) => {
                    this.held
                        .bytes
                        .fetch_sub(raw.get().len(), Ordering::Relaxed);
                    if let (Some(after), Some(deadline)) = (this.timeout, this.deadline.as_mut()) {
                        deadline.as_mut().reset(Instant::now() + after);
                    }
                    let report =
                        serde_json::from_str(raw.get()).map_err(|source| Error::DecodeReport {
                            method: this.method.clone(),
                            source,
                        });
                    return Poll::Ready(Some(report));
                }
                // NB: the driver lets go of the sender when it reads the
                // answer, after every report read before it: the channel
                // ends after the last one.
                Poll::Ready(None) => {
                    this.reports = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
            let Answer::Waiting(request) = &mut this.answer else {
                return Poll::Pending;
            };
            match request.as_mut().poll(cx) {
                Poll::Ready(answer) => {
                    this.answer = Answer::Ready(answer);
                    continue;
                }
                Poll::Pending => {}
            }
            let Some(after) = this.timeout else {
                return Poll::Pending;
            };
            let deadline = this
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
            if deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // NB: dropping the request tells the peer to cancel it, and the
            // driver lets go of its reports: the stream ends after those
            // already read.
            this.answer = Answer::Ready(Err(this.timed_out()));
        }
    }
}

/// `params` by name with our token added.
fn with_token(method: &str, params: &impl Serialize, token: &str) -> Result<Box<RawValue>, Error> {
    let encode = |source| Error::EncodeParams {
        method: method.to_owned(),
        source,
    };
    let mut members =
        match serde_json::to_value(params).map_err(|e| encode(ParamsError::Json(e)))? {
            Value::Object(members) => members,
            Value::Null => Map::new(),
            other => {
                return Err(encode(ParamsError::NotByName {
                    found: crate::excerpt::excerpt(&other.to_string()).to_string(),
                }))
            }
        };
    if members.contains_key(TOKEN_MEMBER) {
        return Err(encode(ParamsError::TokenTaken));
    }
    members.insert(TOKEN_MEMBER.to_owned(), Value::String(token.to_owned()));
    serde_json::value::to_raw_value(&members).map_err(|e| encode(ParamsError::Json(e)))
}

/// The id of the call of ours that a `$/progress` notification's params
/// report on, when its token is one of ours.
///
/// NB: borrowed, not copied: the peer's own reports (an LSP server's, say)
/// go on to the router, and a report over the budget is not kept either.
pub(crate) fn reported_call(params: Option<&RawValue>) -> Option<(u64, &RawValue)> {
    #[derive(Deserialize)]
    struct Report<'a> {
        #[serde(borrow)]
        token: &'a RawValue,
        #[serde(borrow)]
        value: &'a RawValue,
    }
    let report: Report<'_> = serde_json::from_str(params?.get()).ok()?;
    // Our tokens are plain strings: `"rpcpeer:17"`, no escapes.
    let id = report
        .token
        .get()
        .strip_prefix('"')?
        .strip_suffix('"')?
        .strip_prefix(OURS)?
        .parse()
        .ok()?;
    Some((id, report.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_tokens_are_told_from_others() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).ok();
        let params = raw(r#"{"token":"rpcpeer:17","value":{"n":1}}"#);
        let ours = reported_call(params.as_deref());
        assert_eq!(
            ours.map(|(id, v)| (id, v.get().to_owned())),
            Some((17, r#"{"n":1}"#.to_owned()))
        );
        for other in [
            r#"{"token":17,"value":1}"#,
            r#"{"token":"17","value":1}"#,
            r#"{"token":"rpcpeer:x","value":1}"#,
            r#"{"token":"rpcpeer:1"}"#,
            r#"[1,2]"#,
        ] {
            assert!(reported_call(raw(other).as_deref()).is_none(), "{other}");
        }
        assert!(reported_call(None).is_none());
    }

    #[test]
    fn the_token_goes_into_params_by_name_only() {
        let with = |p: Value| with_token("m", &p, "rpcpeer:1").map(|raw| raw.get().to_owned());
        assert_eq!(
            with(serde_json::json!({"a": 1})).unwrap(),
            r#"{"a":1,"workDoneToken":"rpcpeer:1"}"#
        );
        assert_eq!(
            with(Value::Null).unwrap(),
            r#"{"workDoneToken":"rpcpeer:1"}"#
        );
        let positional = with(serde_json::json!([1])).unwrap_err().to_string();
        assert!(positional.contains("by name"), "{positional}");
        let taken = with(serde_json::json!({"workDoneToken": 3}))
            .unwrap_err()
            .to_string();
        assert!(taken.contains("already"), "{taken}");
    }
}
