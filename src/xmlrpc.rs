//! XML-RPC from the router's own methods (feature `xmlrpc`): a `methodCall` posted as `text/xml` is run as the JSON-RPC call it stands for, and answered as a `methodResponse`.
//!
//! [`http::respond`](crate::http::respond) hands it every `POST` sent as
//! `text/xml` or `application/xml`, as django-modern-rpc answers both
//! protocols from one set of methods:
//!
//! - The params are always by position: `<params>` becomes a JSON array, each
//!   value in the JSON form the table on [`types`](crate::types) and below
//!   gives, and the handler decodes it as it would a JSON-RPC call's (a
//!   struct of params takes them in field order; one `<struct>` param stays
//!   one param).
//! - The result is written back with the XML-RPC types of its JSON form; a
//!   string is a `<dateTime.iso8601>` or `<base64>` when the method's result
//!   schema says so (`"format": "date-time"`, `"contentEncoding": "base64"`,
//!   what [`types::DateTime`](crate::types) and [`types::Base64`](crate::types::Base64)
//!   declare). `null` is `<nil/>`.
//! - An error object is a `<fault>` with its `faultCode` and `faultString`
//!   (the message; its data is not sent). Faults about the XML itself use
//!   the codes of the XML-RPC fault code interoperability spec, which are
//!   JSON-RPC's: -32700 not well-formed (a DOCTYPE among it), -32701
//!   unsupported encoding (one declared other than UTF-8), -32702 invalid
//!   character for encoding (bytes that are not UTF-8, and no other
//!   encoding declared), -32600 not a valid `methodCall`.
//! - `system.listMethods`, `system.methodHelp`, `system.methodSignature`
//!   and `system.multicall` are answered from the router, unless it has
//!   methods of those names itself. A multicall runs as one JSON-RPC batch
//!   (its calls concurrently, at most
//!   [`HttpOptions::max_batch_len`](crate::http::HttpOptions::max_batch_len)).
//!
//! | XML-RPC | JSON |
//! |---|---|
//! | `int`, `i4`, `i8` | a number (results past i32 are written as `<i8>`) |
//! | `boolean` | `true`, `false` |
//! | `string`, or a `<value>` with text only | a string |
//! | `double` | a number |
//! | `dateTime.iso8601` | an ISO 8601 string, `"2026-11-30T07:18:03"`, zone as written (none: UTC to `types::DateTime`) |
//! | `base64` | a base64 string |
//! | `struct`, `array` | an object, an array |
//! | `nil` | `null` |
//!
//! ```
//! use rpcpeer::{http::{respond, HttpOptions}, ErrorObject, Router, Session};
//! use rpcpeer::ws::http::Request;
//!
//! # futures::executor::block_on(async {
//! let mut router = Router::new();
//! router.method("add", |(a, b): (i64, i64)| async move { Ok::<_, ErrorObject>(a + b) });
//! let call = "<?xml version=\"1.0\"?><methodCall><methodName>add</methodName><params>\
//!     <param><value><int>2</int></value></param><param><value><i4>3</i4></value></param>\
//!     </params></methodCall>";
//! let post = Request::post("/").header("content-type", "text/xml").body(call.to_owned()).unwrap();
//! let reply = respond(&router, post, &Session::new(), &HttpOptions::default()).await;
//! assert_eq!(reply.headers()["content-type"], "text/xml");
//! assert!(reply.body().contains("<params><param><value><int>5</int></value></param></params>"));
//! # });
//! ```

mod tree;
mod value;

use std::collections::HashMap;

use rpcpeer_ws::http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::error::ErrorObject;
use crate::http::HttpOptions;
use crate::router::Router;
use crate::session::Session;
use value::Hint;

/// The introspection methods answered here, as XML-RPC clients expect them.
const SYSTEM_METHODS: [&str; 4] = [
    "system.listMethods",
    "system.methodHelp",
    "system.methodSignature",
    "system.multicall",
];

/// Media types taken as XML-RPC (parameters such as `charset` allowed).
const XML_TYPES: [&str; 2] = ["text/xml", "application/xml"];

/// -32600: the XML is well-formed but not a valid XML-RPC call.
fn invalid(why: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::invalid_request(format!("Invalid XML-RPC: {why}"))
}

/// Whether the request was sent as XML, and so is XML-RPC.
pub(crate) fn is_xml(content_type: &crate::http::ContentType<'_>) -> bool {
    content_type.is_one_of(&XML_TYPES)
}

/// Answers an XML-RPC `methodCall` with a `methodResponse`: always 200 and
/// `text/xml`, a fault when the call failed or was not understood (XML-RPC
/// has no other way to say so).
pub(crate) async fn respond<S: Send + Sync + 'static>(
    router: &Router<S>,
    body: &str,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    answer(call(router, body, session, options).await)
}

/// The fault that answers a request refused before its body was read.
pub(crate) fn fault_response(err: ErrorObject) -> Response<String> {
    answer(Err(err))
}

/// The fault that answers a body that is not UTF-8, the one encoding read,
/// in the fault code interoperability spec's terms: -32701 "unsupported
/// encoding" when it declares another, else -32702 "invalid character for
/// encoding".
pub(crate) fn not_utf8(
    body: &std::string::FromUtf8Error,
    options: &HttpOptions,
) -> Response<String> {
    // NB: the declaration is the first thing the parser reads, and it is
    // ASCII, so a lossy copy shows it as sent.
    let text = String::from_utf8_lossy(body.as_bytes());
    let declared = match tree::parse(&text, options.max_xml_depth.max(1)) {
        Err(err) if err.code == -32701 => Some(err),
        _ => None,
    };
    answer(Err(declared.unwrap_or_else(|| {
        ErrorObject::new(
            -32702,
            format!(
                "Parse error: invalid character for encoding: the body is not UTF-8 ({}): send UTF-8",
                body.utf8_error()
            ),
        )
    })))
}

/// A `methodResponse`: the result, or the fault.
fn answer(outcome: Result<String, ErrorObject>) -> Response<String> {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse>");
    match outcome {
        Ok(result) => {
            out.push_str("<params><param>");
            out.push_str(&result);
            out.push_str("</param></params>");
        }
        Err(err) => {
            out.push_str("<fault>");
            value::to_xml(&mut out, &fault(&err), Hint::NONE);
            out.push_str("</fault>");
        }
    }
    out.push_str("</methodResponse>\n");
    let mut response = Response::new(out);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// A fault's struct. The spec's `faultCode` is an `<int>` (32 bits): a
/// code past that range is written as the nearest one, and named in the
/// `faultString`.
fn fault(err: &ErrorObject) -> Value {
    match i32::try_from(err.code) {
        Ok(code) => json!({"faultCode": code, "faultString": err.message}),
        Err(_) => {
            let code = if err.code < 0 { i32::MIN } else { i32::MAX };
            let message = format!("{} (error code {})", err.message, err.code);
            json!({"faultCode": code, "faultString": message})
        }
    }
}

/// The call a `methodCall` body makes, run: its result as a `<value>`.
async fn call<S: Send + Sync + 'static>(
    router: &Router<S>,
    body: &str,
    session: &Session,
    options: &HttpOptions,
) -> Result<String, ErrorObject> {
    let max_batch_len = options.max_batch_len;
    // NB: the tree is dropped once read: it is the largest form of the
    // call (20 to 40 times the body), and must not be held while it runs.
    let (method, params) = method_call(&tree::parse(body, options.max_xml_depth.max(1))?)?;
    if is_system(router, &method) {
        if method == "system.multicall" {
            return multicall(router, &params, session, max_batch_len).await;
        }
        return system(router, &method, &params).map(|result| xml(&result, Hint::NONE));
    }
    let mut replies = run(
        router,
        vec![(method.clone(), params)],
        session,
        max_batch_len,
    )
    .await?;
    let reply = replies
        .pop()
        .unwrap_or_else(|| Err(ErrorObject::internal_error()));
    reply.map(|result| xml(&result, result_hint(router, &method)))
}

/// `value` as a `<value>`.
fn xml(value: &Value, hint: Hint<'_>) -> String {
    let mut out = String::new();
    value::to_xml(&mut out, value, hint);
    out
}

/// The method name and params of a `<methodCall>`.
fn method_call(root: &tree::Element) -> Result<(String, Vec<Value>), ErrorObject> {
    value::expect(root, "methodCall")?;
    let (mut name, mut params) = (None, Vec::new());
    for part in root.elements()? {
        match part.name.as_str() {
            "methodName" if name.is_none() => name = Some(part.text()?.trim().to_owned()),
            "params" => {
                for param in part.elements()? {
                    let [value] = value::expect(param, "param")?.elements()?[..] else {
                        return Err(invalid("a <param> holds one <value>"));
                    };
                    params.push(value::from_xml(value::expect(value, "value")?)?);
                }
            }
            other => {
                return Err(invalid(format!(
                    "<{}> in <methodCall>, which holds <methodName> and <params>",
                    crate::excerpt::excerpt(other)
                )))
            }
        }
    }
    match name {
        Some(name) if !name.is_empty() => Ok((name, params)),
        _ => Err(invalid("a <methodCall> needs a <methodName>")),
    }
}

/// The schema hint for `method`'s result.
fn result_hint<'r, S: Send + Sync + 'static>(router: &'r Router<S>, method: &str) -> Hint<'r> {
    Hint::root(router.method_info(method).and_then(|info| info.result()))
}

/// Runs `calls` as one JSON-RPC batch through the router (authentication,
/// middleware and limits as for any call), each call's result or error in
/// order.
async fn run<S: Send + Sync + 'static>(
    router: &Router<S>,
    calls: Vec<(String, Vec<Value>)>,
    session: &Session,
    max_batch_len: usize,
) -> Result<Vec<Result<Value, ErrorObject>>, ErrorObject> {
    let count = calls.len();
    // NB: the values are dropped once written as text, before the call
    // runs: only one form of a large call is held at a time.
    let text = {
        let mut batch: Vec<Value> = calls
            .into_iter()
            .enumerate()
            .map(|(id, (method, params))| {
                json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
            })
            .collect();
        match batch.pop() {
            Some(one) if count == 1 => one.to_string(),
            last => {
                batch.extend(last);
                Value::Array(batch).to_string()
            }
        }
    };
    let reply = crate::dispatch::handle_text(router, &text, session, max_batch_len)
        .await
        .ok_or_else(ErrorObject::internal_error)?;
    let reply: Value = serde_json::from_str(&reply).map_err(|_| ErrorObject::internal_error())?;
    let replies = match reply {
        Value::Array(replies) => replies,
        // One error for the whole batch (too long, say) answers every call.
        Value::Object(_) if count > 1 && reply["id"].is_null() => {
            return Err(error_of(&reply["error"]));
        }
        one => vec![one],
    };
    let mut by_id: HashMap<u64, Value> = replies
        .into_iter()
        .filter_map(|mut reply| Some((reply["id"].as_u64()?, reply.take())))
        .collect();
    Ok((0..count as u64)
        .map(|id| match by_id.remove(&id) {
            Some(reply) if reply.get("error").is_some() => Err(error_of(&reply["error"])),
            Some(mut reply) => Ok(reply["result"].take()),
            None => Err(ErrorObject::internal_error()),
        })
        .collect())
}

/// The error object of a JSON-RPC reply.
fn error_of(error: &Value) -> ErrorObject {
    let code = error["code"]
        .as_i64()
        .unwrap_or(ErrorObject::INTERNAL_ERROR);
    let message = error["message"].as_str().unwrap_or("Internal error");
    ErrorObject::new(code, message)
}

/// Whether `method` is one of the `system.` methods answered here: the
/// router has none of that name.
fn is_system<S: Send + Sync + 'static>(router: &Router<S>, method: &str) -> bool {
    SYSTEM_METHODS.contains(&method) && router.method_info(method).is_none()
}

/// The answer to `system.listMethods`, `methodHelp` or `methodSignature`.
fn system<S: Send + Sync + 'static>(
    router: &Router<S>,
    method: &str,
    params: &[Value],
) -> Result<Value, ErrorObject> {
    match method {
        "system.listMethods" => Ok(list_methods(router)),
        "system.methodHelp" => named(method, params).and_then(|name| method_help(router, name)),
        _ => named(method, params).and_then(|name| method_signature(router, name)),
    }
}

/// The one string param of `system.methodHelp` and `methodSignature`.
fn named<'p>(method: &str, params: &'p [Value]) -> Result<&'p str, ErrorObject> {
    match params {
        [Value::String(name)] => Ok(name),
        _ => Err(ErrorObject::invalid_params(format!(
            "`{method}` takes one param, a method's name"
        ))),
    }
}

fn list_methods<S: Send + Sync + 'static>(router: &Router<S>) -> Value {
    let mut names: Vec<&str> = router.methods().iter().map(|info| info.name()).collect();
    names.extend(SYSTEM_METHODS);
    names.sort_unstable();
    names.dedup();
    json!(names)
}

fn method_help<S: Send + Sync + 'static>(
    router: &Router<S>,
    name: &str,
) -> Result<Value, ErrorObject> {
    if let Some(info) = router.method_info(name) {
        return Ok(json!(info.doc().unwrap_or_default()));
    }
    let doc = match name {
        "system.listMethods" => "The names of every method this server answers.",
        "system.methodHelp" => "The documentation of the method named by its one param.",
        "system.methodSignature" => {
            "The signatures of the method named by its one param: [[result type, param types…]], or \"undef\" when they are not known."
        }
        "system.multicall" => {
            "Runs an array of {methodName, params} calls; answers each with [result] or a {faultCode, faultString} struct."
        }
        _ => return Err(ErrorObject::method_not_found(name)),
    };
    Ok(json!(doc))
}

/// `[[result, param…]]` from the method's schemas, or `"undef"` (the
/// introspection spec's answer) when its params' schema is not known.
fn method_signature<S: Send + Sync + 'static>(
    router: &Router<S>,
    name: &str,
) -> Result<Value, ErrorObject> {
    let Some(info) = router.method_info(name) else {
        return match name {
            "system.listMethods" => Ok(json!([["array"]])),
            "system.methodHelp" => Ok(json!([["string", "string"]])),
            "system.methodSignature" => Ok(json!([["array", "string"]])),
            "system.multicall" => Ok(json!([["array", "array"]])),
            _ => Err(ErrorObject::method_not_found(name)),
        };
    };
    let result = Hint::root(info.result()).type_name();
    let Some(schema) = info.params() else {
        return Ok(if info.takes_params() {
            json!("undef")
        } else {
            json!([[result]])
        });
    };
    let params = Hint::root(Some(schema)).params(info.param_names());
    Ok(match params {
        Some(params) => {
            let mut signature = vec![result];
            signature.extend(params);
            json!([signature])
        }
        None => json!("undef"),
    })
}

/// `system.multicall`: an array of each call's `[result]`, or its fault's
/// struct, each result written with its method's schema.
async fn multicall<S: Send + Sync + 'static>(
    router: &Router<S>,
    params: &[Value],
    session: &Session,
    max_batch_len: usize,
) -> Result<String, ErrorObject> {
    let [Value::Array(calls)] = params else {
        return Err(ErrorObject::invalid_params(
            "`system.multicall` takes one param, an array of {methodName, params} structs",
        ));
    };
    if calls.len() > max_batch_len {
        return Err(ErrorObject::invalid_request(format!(
            "`system.multicall` of {} calls, more than the {max_batch_len} one batch may hold",
            calls.len()
        )));
    }
    // Each call: answered here, or sent in the batch (its place kept).
    let mut answers: Vec<Option<(Result<Value, ErrorObject>, Hint<'_>)>> = Vec::new();
    let mut batch = Vec::new();
    let mut places = Vec::new();
    for call in calls {
        let name = call.get("methodName").and_then(Value::as_str);
        let params = match call.get("params") {
            None => Some(Vec::new()),
            Some(Value::Array(params)) => Some(params.clone()),
            Some(_) => None,
        };
        let answer = match (name, params) {
            (Some("system.multicall"), _) if is_system(router, "system.multicall") => {
                Some(Err(ErrorObject::invalid_request(
                    "`system.multicall` cannot be called from within one",
                )))
            }
            (Some(name), Some(params)) if is_system(router, name) => {
                Some(system(router, name, &params))
            }
            (Some(name), Some(params)) => {
                places.push((answers.len(), result_hint(router, name)));
                batch.push((name.to_owned(), params));
                answers.push(None);
                continue;
            }
            _ => Some(Err(ErrorObject::invalid_request(
                "each call of `system.multicall` is a struct with a string `methodName` and an array `params`",
            ))),
        };
        answers.push(answer.map(|answer| (answer, Hint::NONE)));
    }
    if !batch.is_empty() {
        let replies = run(router, batch, session, max_batch_len).await?;
        for ((place, hint), reply) in places.into_iter().zip(replies) {
            answers[place] = Some((reply, hint));
        }
    }
    let mut out = String::from("<value><array><data>");
    for answer in answers {
        match answer {
            Some((Ok(result), hint)) => {
                out.push_str("<value><array><data>");
                value::to_xml(&mut out, &result, hint);
                out.push_str("</data></array></value>");
            }
            Some((Err(err), _)) => value::to_xml(&mut out, &fault(&err), Hint::NONE),
            None => value::to_xml(&mut out, &fault(&ErrorObject::internal_error()), Hint::NONE),
        }
    }
    out.push_str("</data></array></value>");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_code_past_32_bits_is_written_as_the_nearest_and_named() {
        assert_eq!(
            fault(&ErrorObject::new(-32601, "Method not found")),
            json!({"faultCode": -32601, "faultString": "Method not found"})
        );
        assert_eq!(
            fault(&ErrorObject::new(3_000_000_000, "too big")),
            json!({"faultCode": i32::MAX, "faultString": "too big (error code 3000000000)"})
        );
    }
}
