//! `call` and `notify` to an `http://` or `https://` URL: each one POST of the JSON-RPC text, and what its answer means.

use std::time::Duration;

use rpcpeer::ws::http::{header, StatusCode};
use rpcpeer::ErrorObject;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Failure;

/// Whether `url` names an HTTP peer (`http://` or `https://`), which takes
/// one POST per call rather than a connection.
pub(crate) fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// What the server answered to one POST.
pub(crate) struct Answer {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// Its `Content-Type`, to say what came when it was not JSON.
    content_type: Option<String>,
    /// The body as text (lossy: a body that is not UTF-8 is no JSON anyway).
    pub(crate) body: String,
}

impl Answer {
    /// Whether the status is 2xx.
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The failure for an answer that is not what JSON-RPC over HTTP sends
    /// (an HTTP error page, HTML, nothing), naming the status and what came.
    pub(crate) fn unexpected(&self, url: &str, expected: &str) -> Failure {
        let body = self.body.trim();
        let what = if body.is_empty() {
            "an empty body".to_owned()
        } else {
            let kind = match &self.content_type {
                Some(kind) => format!("a body of {kind}"),
                None => "a body".to_owned(),
            };
            format!("{kind} that is not {expected}: {}", excerpt(body))
        };
        Failure::Connection(format!("{url} answered HTTP {} with {what}", self.status))
    }
}

/// At most 100 characters of `text`, on one line, saying how long it was.
fn excerpt(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(100) {
        Some((end, _)) => format!("{}… ({} bytes)", &line[..end], text.len()),
        None => line,
    }
}

/// POSTs `body` (JSON text) to `url` and reads the answer, all within
/// `timeout`. The answer may be as long as a WebSocket message the client
/// takes (`ws::Config::max_message_len`, 16 MiB).
pub(crate) async fn post(
    url: &str,
    body: String,
    timeout: Option<Duration>,
) -> Result<Answer, Failure> {
    let config = rpcpeer::ws::Config::default();
    let exchange = rpcpeer::ws::post(url, body, &config);
    let answer = match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| Failure::Connection(format!("{url}: no answer within {limit:?}")))?,
        None => exchange.await,
    }
    .map_err(|err| {
        use std::io::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidInput => Failure::Usage(err.to_string()),
            // Worded as the other schemes' connect errors are.
            ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable => {
                Failure::Connection(format!("cannot connect to {url}: {err}"))
            }
            _ => Failure::Connection(format!("{url}: {err}")),
        }
    })?;
    Ok(Answer {
        status: answer.status,
        content_type: answer
            .headers
            .get(header::CONTENT_TYPE)
            .map(|kind| String::from_utf8_lossy(kind.as_bytes()).into_owned()),
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    })
}

/// One JSON-RPC response as it comes over HTTP.
#[derive(Deserialize)]
pub(crate) struct Response {
    /// `None` for `"id": null`, as well as none at all.
    #[serde(default)]
    pub(crate) id: Option<Box<RawValue>>,
    /// `Some` whenever present, `null` too (a result of null is one).
    #[serde(default, deserialize_with = "present")]
    pub(crate) result: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) error: Option<ErrorObject>,
}

impl Response {
    /// Reads one response, or `None` for text that is not one (not JSON,
    /// or an object with neither `result` nor `error`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|r| r.result.is_some() || r.error.is_some())
    }
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("a\nb"), "a b");
        let long = "x".repeat(300);
        assert_eq!(excerpt(&long), format!("{}… (300 bytes)", "x".repeat(100)));
    }

    #[test]
    fn responses_have_a_result_or_an_error() {
        assert!(Response::parse(r#"{"jsonrpc":"2.0","result":null,"id":1}"#).is_some());
        assert!(
            Response::parse(r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"},"id":null}"#)
                .is_some()
        );
        assert!(Response::parse(r#"{"jsonrpc":"2.0","id":1}"#).is_none());
        assert!(Response::parse("<html>").is_none());
    }
}
