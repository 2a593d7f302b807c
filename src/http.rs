//! JSON-RPC over plain HTTP: `POST` a request or batch, or `GET /method?params` for safe methods.

use std::borrow::Cow;

use rpcpeer_ws::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::error::ErrorObject;
use crate::message::{encode_response, Id, Version};
use crate::router::Router;
use crate::session::Session;

/// What the HTTP side allows beyond `POST`.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Answer `GET /method?…&callback=name` with `name(<reply>);` as
    /// `application/javascript` (JSONP, for pages that cannot make
    /// cross-origin requests). Off by default: it lets any web page read
    /// the answers of safe methods.
    pub jsonp: bool,
}

/// Media types taken as JSON in a `POST`. `application/x-www-form-urlencoded`
/// is among them because it is what `curl -d` sends unless told otherwise.
const JSON_TYPES: [&str; 4] = [
    "application/json",
    "application/json-rpc",
    "application/jsonrequest",
    "application/x-www-form-urlencoded",
];

/// Answers one HTTP request with `router`.
///
/// - `POST` (any path) with a JSON body, single or batch: the JSON-RPC reply
///   with 200 and `Content-Type: application/json`, or 204 when nothing is
///   to be returned (notifications only). JSON-RPC errors are 200 too: HTTP
///   worked, the call did not.
/// - `GET /method?a=1&b=x`: calls a method registered with
///   [`MethodConfig::safe`](crate::MethodConfig::safe), params by name
///   (`0=…&1=…` by position), each value as JSON when it parses, else as a
///   string (JSON-RPC 1.1's idempotent procedures).
/// - Anything else: 405 (wrong HTTP method, or a method that is not safe
///   for `GET`), 404 (unknown method), 415 (a body that is not JSON), each
///   with a JSON-RPC error body that says what to do instead.
///
/// ```
/// use rpcpeer::{http::{respond, HttpOptions}, ErrorObject, Router, Session};
/// use rpcpeer::ws::http::Request;
///
/// # futures::executor::block_on(async {
/// let mut router = Router::new();
/// router.method("sum", |xs: Vec<i64>| async move { Ok::<_, ErrorObject>(xs.iter().sum::<i64>()) }).safe();
/// let get = Request::get("/sum?0=1&1=2").body(String::new()).unwrap();
/// let reply = respond(&router, get, &Session::new(), &HttpOptions::default()).await;
/// assert_eq!(reply.status(), 200);
/// assert_eq!(reply.body(), r#"{"jsonrpc":"2.0","result":3,"id":null}"#);
/// # });
/// ```
pub async fn respond<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: Request<String>,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    match *req.method() {
        Method::POST => post(router, &req, session).await,
        Method::GET => get(router, &req, session, options).await,
        _ => with_allow(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorObject::invalid_request(format!(
                "HTTP {} is not supported: POST a JSON-RPC request, or GET /<method>?<params> for a safe method",
                req.method()
            )),
        )),
    }
}

async fn post<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    session: &Session,
) -> Response<String> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if let Some(kind) =
        content_type.filter(|k| !JSON_TYPES.contains(&k.as_str()) && !k.ends_with("+json"))
    {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorObject::invalid_request(format!(
                "the body must be JSON (Content-Type: application/json), not {kind}"
            )),
        );
    }
    match router.handle_text(req.body(), session).await {
        Some(reply) => json_response(StatusCode::OK, reply),
        None => {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
    }
}

async fn get<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    let path = req.uri().path().trim_start_matches('/');
    let name = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let Some(info) = router.method_info(&name) else {
        return with_allow(if name.is_empty() {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorObject::invalid_request(
                    "POST a JSON-RPC request to this URL, or GET /<method>?<params> for a safe method",
                ),
            )
        } else {
            error_response(StatusCode::NOT_FOUND, ErrorObject::method_not_found(&name))
        });
    };
    if !info.is_safe() {
        return with_allow(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorObject::invalid_request(format!(
                "`{name}` is not marked safe for GET: call it with POST"
            )),
        ));
    }
    let (params, callback) = query_params(req.uri().query().unwrap_or_default());
    let callback = match callback {
        Some(name) if !options.jsonp => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorObject::invalid_request(format!(
                    "JSONP (callback={name}) is not enabled on this server"
                )),
            )
        }
        Some(name) if !is_js_identifier(&name) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorObject::invalid_request(
                    "`callback` must be a JavaScript identifier (letters, digits, _, $, .)",
                ),
            )
        }
        other => other,
    };
    let request = serde_json::json!({ "jsonrpc": "2.0", "method": name, "params": params, "id": Value::Null });
    let reply = router
        .handle_text(&request.to_string(), session)
        .await
        .unwrap_or_else(|| {
            encode_response(
                Version::V2,
                &Id::null(),
                Err(&ErrorObject::internal_error()),
            )
        });
    match callback {
        Some(callback) => {
            let mut response = Response::new(format!("{callback}({reply});"));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript"),
            );
            response
        }
        None => json_response(StatusCode::OK, reply),
    }
}

/// `a=1&b=x` as `{"a": 1, "b": "x"}`; `0=1&1=2` as `[1, 2]` (positional).
/// Values are JSON when they parse, else strings. `callback` is taken out
/// for JSONP.
fn query_params(query: &str) -> (Value, Option<String>) {
    let mut callback = None;
    let mut pairs: Vec<(Cow<'_, str>, Value)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "callback" {
            callback = Some(value.into_owned());
            continue;
        }
        let value =
            serde_json::from_str(&value).unwrap_or_else(|_| Value::String(value.into_owned()));
        pairs.push((name, value));
    }
    let positional = !pairs.is_empty()
        && pairs
            .iter()
            .enumerate()
            .all(|(i, (name, _))| name.parse::<usize>() == Ok(i));
    let params = if positional {
        Value::Array(pairs.into_iter().map(|(_, v)| v).collect())
    } else {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect::<Map<_, _>>(),
        )
    };
    (params, callback)
}

fn is_js_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

fn json_response(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An HTTP error that is also a JSON-RPC error, so a JSON-RPC client can read it.
fn error_response(status: StatusCode, err: ErrorObject) -> Response<String> {
    json_response(status, encode_response(Version::V2, &Id::null(), Err(&err)))
}

fn with_allow(mut response: Response<String>) -> Response<String> {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_strings_become_params() {
        assert_eq!(
            query_params("minuend=42&subtrahend=23").0,
            json!({"minuend": 42, "subtrahend": 23})
        );
        assert_eq!(query_params("0=1&1=2.5").0, json!([1, 2.5]));
        assert_eq!(
            query_params("value=hello+world&x=%5B1%2C2%5D&callback=cb"),
            (
                json!({"value": "hello world", "x": [1, 2]}),
                Some("cb".to_owned())
            )
        );
        assert_eq!(query_params("").0, json!({}));
    }

    #[test]
    fn only_identifiers_are_jsonp_callbacks() {
        assert!(is_js_identifier("jQuery123.cb_$"));
        assert!(!is_js_identifier("alert(1)//"));
        assert!(!is_js_identifier("1abc"));
    }
}
