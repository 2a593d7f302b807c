//! JSON-RPC over plain HTTP: `POST` a request or batch, or `GET /method?params` for safe methods (feature `ws`).

use std::borrow::Cow;

use rpcpeer_ws::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::auth::{AuthError, Credentials, LoginError};
use crate::error::ErrorObject;
use crate::message::{encode_response, Frame, Id, Message, Version};
use crate::router::Router;
use crate::session::Session;

/// What the HTTP side allows beyond plain same-origin `POST`s, and its
/// batch limit.
///
/// ```
/// use rpcpeer::http::HttpOptions;
///
/// // Pages served from this origin may call the server from the browser.
/// let options = HttpOptions {
///     allowed_origins: vec!["https://app.example.com".into()],
///     ..HttpOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Answer `GET /method?…&callback=name` with `name(<reply>);` as
    /// `application/javascript` (JSONP, for pages that cannot make
    /// cross-origin requests). Off by default: it lets any web page read
    /// the answers of safe methods.
    pub jsonp: bool,
    /// Origins whose web pages may call this server from a browser (CORS),
    /// written as browsers send them in `Origin`: `https://app.example.com`,
    /// `http://localhost:8080` (compared without regard to case). `"*"`
    /// allows every origin. Default: none, so CORS is off: no
    /// `Access-Control-Allow-Origin` header is ever sent, and a preflight
    /// (`OPTIONS` with `Access-Control-Request-Method`) is answered `403`.
    /// For an allowed origin, a preflight for `POST` or `GET` is answered
    /// `204` (allowing the `Content-Type` header, cached 10 minutes), and
    /// every answer carries `Access-Control-Allow-Origin` with that origin.
    ///
    /// On a [`WsServer`](crate::ws_server::WsServer) the same list says
    /// which other origins' pages may open a WebSocket: an upgrade whose
    /// `Origin` is neither this server's own (the `Host` it was reached at)
    /// nor listed gets `403`, since browsers ask no permission before
    /// opening one. Clients that are not browsers send no `Origin`.
    pub allowed_origins: Vec<String>,
    /// The host names this server answers to, as in `Host` without the port
    /// (`localhost`, `api.example.com`; compared without regard to case). A
    /// request or WebSocket upgrade whose `Host` names another gets `403`
    /// (or whose target is a full URL naming another: RFC 9112 §3.2.2 has
    /// the server take that host over `Host`). A host that is an IP address
    /// is always taken, and so is an HTTP/1.0 request without `Host`, which
    /// no browser sends. Default: none, so every `Host` is taken.
    ///
    /// This stops DNS rebinding: a web page whose own name the attacker
    /// points at 127.0.0.1 then calls a server on the loopback address as
    /// its own origin, so the `Origin` and CORS checks see nothing wrong,
    /// but the browser still sends the attacker's name in `Host`. A server
    /// on a loopback address should list the names it is reached by
    /// (`rpcpeer serve` does: `localhost`, and those of `--allow-host`);
    /// behind a reverse proxy that passes the public name on, list that.
    pub allowed_hosts: Vec<String>,
    /// Entries one batch may have (default 1024, as
    /// [`Config::max_batch_len`](crate::Config::max_batch_len)); a longer
    /// batch is answered with one -32600 error (200, as any JSON-RPC error),
    /// exactly as on a connection, and none of it runs.
    pub max_batch_len: usize,
    /// How deep the elements of an XML-RPC call may nest (feature
    /// `xmlrpc`; default 128, as [`Config::max_depth`](crate::Config::max_depth)
    /// for JSON): a deeper one is answered with a -32600 fault before any of
    /// it runs. Each level of an XML-RPC array or struct takes three
    /// elements (`value`, `array`, `data`).
    pub max_xml_depth: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            jsonp: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_batch_len: crate::config::DEFAULT_MAX_BATCH_LEN,
            max_xml_depth: crate::message::DEFAULT_MAX_DEPTH,
        }
    }
}

impl HttpOptions {
    /// The `Origin` of a request with `headers` when it is allowed, for
    /// `Access-Control-Allow-Origin`.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.is_allowed(text).then(|| origin.clone())
    }

    /// Puts the CORS headers into `answer`, the answer to a request with
    /// headers `request`: `Access-Control-Allow-Origin` for an allowed
    /// origin, and `Vary: Origin` whenever the answer depends on it.
    pub(crate) fn cors(&self, request: &HeaderMap, answer: &mut HeaderMap) {
        if !self.allowed_origins.is_empty() {
            // The answer depends on `Origin`: caches must keep them apart.
            answer.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = self.allowed_origin(request) {
            answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }

    fn is_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .map(|allowed| allowed.trim_end_matches('/'))
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }

    /// The refusal of a request (or WebSocket upgrade) whose host names
    /// none of [`allowed_hosts`](Self::allowed_hosts): the one of its target
    /// when that is a full URL (RFC 9112 §3.2.2: `Host` is then ignored),
    /// else its `Host`. An HTTP/1.0 request with neither is let through:
    /// browsers, which DNS rebinding works through, always send `Host`
    /// (HTTP/1.1 requires it).
    pub(crate) fn host_refusal(
        &self,
        version: rpcpeer_ws::http::Version,
        target: &rpcpeer_ws::http::Uri,
        headers: &HeaderMap,
    ) -> Option<Response<String>> {
        if self.allowed_hosts.is_empty() {
            return None;
        }
        let host = match (target.authority(), headers.get(header::HOST)) {
            // NB: without the userinfo a full URL may carry (`user@host`).
            (Some(authority), _) => std::borrow::Cow::Borrowed(authority.host()),
            (None, Some(host)) => String::from_utf8_lossy(host.as_bytes()),
            (None, None) if version <= rpcpeer_ws::http::Version::HTTP_10 => return None,
            (None, None) => std::borrow::Cow::Borrowed(""),
        };
        let name = host_name(&host);
        let taken = name.parse::<std::net::IpAddr>().is_ok()
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name));
        if taken {
            return None;
        }
        Some(error_response(
            StatusCode::FORBIDDEN,
            ErrorObject::invalid_request(format!(
                "this server does not answer to the host name {:?} (it answers to {}, and to IP addresses); \
                 the server can allow that name",
                crate::excerpt::excerpt(name),
                self.allowed_hosts.join(", "),
            )),
        ))
    }

    /// The refusal of a WebSocket upgrade that may not go on, judging by
    /// its `Origin`.
    ///
    /// Browsers let any web page open a WebSocket to any server, cookies
    /// and all, and say only which page asked in `Origin`; unlike a JSON
    /// `POST` there is no preflight. So an upgrade with an `Origin` is taken
    /// only from a page of this very server (its host and port are the
    /// request's `Host`) or from one of [`allowed_origins`](Self::allowed_origins);
    /// others get `403` before the `101`. Clients that are not browsers send
    /// no `Origin` and are not concerned.
    pub(crate) fn upgrade_origin_refusal(
        &self,
        head: &rpcpeer_ws::http::request::Parts,
    ) -> Option<Response<String>> {
        let origin = head.headers.get(header::ORIGIN)?;
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let host = head.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if self.is_allowed(&origin) || host.is_some_and(|host| same_origin(&origin, host)) {
            return None;
        }
        Some(error_response(
            StatusCode::FORBIDDEN,
            ErrorObject::invalid_request(format!(
                "WebSocket connections from web pages of {} are not allowed by this server \
                 (its pages are served as {}); the server can allow that origin",
                crate::excerpt::excerpt(&origin),
                crate::excerpt::excerpt(host.unwrap_or("(no Host)")),
            )),
        ))
    }
}

/// The name in a `Host` value: without the port, and an IPv6 address
/// without its brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, _port)| name)
}

/// Whether the serialized origin `origin` (`scheme://host[:port]`) names the
/// server reached at `host` (a `Host` header: `host[:port]`), default ports
/// of `http`/`ws` and `https`/`wss` included. The scheme itself is not
/// compared: behind a proxy that ends TLS the server's own `https` pages
/// reach it as plain HTTP, and one port cannot serve both.
fn same_origin(origin: &str, host: &str) -> bool {
    let Ok(origin) = origin.parse::<rpcpeer_ws::http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let Ok(host) = host.parse::<rpcpeer_ws::http::uri::Authority>() else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    authority.host().eq_ignore_ascii_case(host.host())
        && authority.port_u16().or(default_port) == host.port_u16().or(default_port)
}

/// Media types a `POST` body may be sent as (parameters such as `charset`
/// allowed). Nothing else, not even a missing `Content-Type`: a web page can
/// make a browser send a form (`application/x-www-form-urlencoded`,
/// `text/plain`) to any server without asking it first, but not JSON.
const JSON_TYPES: [&str; 3] = [
    "application/json",
    "application/json-rpc",
    "application/jsonrequest",
];

/// Answers one HTTP request with `router`.
///
/// - `POST` (any path) with a JSON body (`Content-Type: application/json`,
///   `application/json-rpc` or `application/jsonrequest`), single or batch:
///   the JSON-RPC reply with 200 and `Content-Type: application/json`, or
///   204 when nothing is to be returned (notifications only). JSON-RPC errors
///   are 200 too: HTTP worked, the call did not. A batch longer than
///   [`HttpOptions::max_batch_len`] gets one -32600 error.
/// - `GET /method?a=1&b=x`: calls a method registered with
///   [`MethodConfig::safe`](crate::MethodConfig::safe), params by name
///   (`0=…&1=…` by position), each value as JSON when it parses, else as a
///   string (JSON-RPC 1.1's idempotent procedures).
/// - `OPTIONS` preflight: see [`HttpOptions::allowed_origins`].
/// - With an [`Authenticator`](crate::auth::Authenticator) on the router,
///   `Authorization: Bearer <token>` or `Basic …` logs `session` in for
///   this request (through the throttle on failed logins): failed
///   credentials get 401 (with `WWW-Authenticate`), too many failures 429
///   (with `Retry-After`), each with a JSON-RPC error body, and nothing
///   runs. Without the header the request runs unauthenticated, and
///   methods that need a caller answer -32001.
/// - Anything else: 405 (wrong HTTP method, or a method that is not safe
///   for `GET`), 404 (unknown method), 415 (a body not sent as JSON, or
///   sent without `Content-Type`), 403 (a preflight from an origin not
///   allowed), each with a JSON-RPC error body that says what to do instead.
/// - With the `xmlrpc` feature, `POST` sent as `text/xml` (or
///   `application/xml`): an XML-RPC call of the same methods (see
///   [`xmlrpc`](crate::xmlrpc)).
///
/// Handlers run without a connection ([`Peer::is_detached`](crate::Peer::is_detached)):
/// they cannot call the client back, push to it, or join it to a
/// [`Group`](crate::group::Group) (-32004).
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
///
/// // A form post from some web page: refused.
/// let form = Request::post("/")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .body(r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":1}"#.to_owned())
///     .unwrap();
/// let reply = respond(&router, form, &Session::new(), &HttpOptions::default()).await;
/// assert_eq!(reply.status(), 415);
/// # });
/// ```
pub async fn respond<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: Request<String>,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    respond_to(router, &req, session, options).await
}

/// [`respond`], with the request borrowed: the caller may still answer it
/// otherwise (a graceful stop's timeout, say).
pub(crate) async fn respond_to<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    if let Some(refused) = options.host_refusal(req.version(), req.uri(), req.headers()) {
        return refused;
    }
    let origin = options.allowed_origin(req.headers());
    let authenticated = match *req.method() {
        Method::POST | Method::GET | Method::HEAD => {
            authenticate(router, req.headers(), None, session).await
        }
        _ => Ok(()),
    };
    let mut response = match authenticated {
        Err(refused) => refused,
        Ok(()) => match *req.method() {
            Method::POST => post(router, req, session, options).await,
            // NB: HEAD is GET without the content (RFC 9110 §9.3.2), which
            // hyper leaves out of the answer to a HEAD request.
            Method::GET | Method::HEAD => get(router, req, session, options).await,
            Method::OPTIONS if req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) => {
                preflight(router, req, origin.is_some())
            }
            _ => with_allow(
                router,
                req,
                error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorObject::invalid_request(format!(
                        "HTTP {} is not supported: POST a JSON-RPC request, or GET /<method>?<params> for a safe method",
                        req.method()
                    )),
                ),
            ),
        },
    };
    options.cors(req.headers(), response.headers_mut());
    response
}

/// The answer to a request still running when a graceful stop's drain
/// timeout passed: what a call on a connection gets then, -32003, under
/// `503` (an XML-RPC fault to an XML-RPC call), for each call of the body.
/// A body of notifications only gets `503` and nothing more.
pub(crate) fn shutting_down(
    req: &Request<String>,
    drain: std::time::Duration,
    options: &HttpOptions,
) -> Response<String> {
    let err = ErrorObject::new(
        ErrorObject::SHUTTING_DOWN,
        format!("Shutting down: the call did not finish within the drain timeout ({drain:?})"),
    );
    #[cfg(feature = "xmlrpc")]
    let mut response = if crate::xmlrpc::is_xml(&ContentType::of(req)) {
        crate::xmlrpc::fault_response(err)
    } else {
        shutting_down_json(req, &err)
    };
    #[cfg(not(feature = "xmlrpc"))]
    let mut response = shutting_down_json(req, &err);
    options.cors(req.headers(), response.headers_mut());
    response
}

/// [`shutting_down`]'s JSON: `err` under the id of each call the body
/// holds, read again here (only on this path, the stop's).
fn shutting_down_json(req: &Request<String>, err: &ErrorObject) -> Response<String> {
    let answer = |message: &Result<Message<'_>, _>| match message {
        Ok(Message::Request(call)) => Some(encode_response(call.version, &call.id, Err(err))),
        Ok(_) => None,
        Err(_) => Some(encode_response(Version::V2, &Id::null(), Err(err))),
    };
    let body = req.body().strip_prefix('\u{feff}').unwrap_or(req.body());
    let answers = match (*req.method() == Method::POST).then(|| crate::message::parse(body)) {
        Some(Frame::Single(message)) => answer(&message),
        Some(Frame::Batch(messages)) => {
            let answers: Vec<String> = messages.iter().filter_map(answer).collect();
            (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
        }
        // A `GET` call's id is null.
        None => Some(encode_response(Version::V2, &Id::null(), Err(err))),
    };
    match answers {
        Some(body) => json_response(StatusCode::SERVICE_UNAVAILABLE, body),
        None => {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}

/// Logs `session` in with the credentials of an `Authorization` header (or
/// `token`, the `?token=` of a WebSocket URL), when the router has an
/// authenticator and the request carries some; the answer to send instead
/// when they fail. No credentials: the request goes on unauthenticated.
pub(crate) async fn authenticate<S: Send + Sync + 'static>(
    router: &Router<S>,
    headers: &rpcpeer_ws::http::HeaderMap,
    token: Option<String>,
    session: &Session,
) -> Result<(), Response<String>> {
    let Some(auth) = router.auth() else {
        return Ok(());
    };
    let credentials = match headers.get(header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(Credentials::from_authorization)
            .ok_or_else(|| {
                refusal(
                    StatusCode::UNAUTHORIZED,
                    ErrorObject::new(
                        ErrorObject::UNAUTHORIZED,
                        "the Authorization header must be `Bearer <token>` or `Basic <base64 of user:password>`",
                    ),
                )
            })?,
        None => match token {
            Some(token) => Credentials::Token(token),
            None => return Ok(()),
        },
    };
    match auth.login(session, credentials).await {
        Ok(_) => Ok(()),
        Err(err) => {
            let status = match &err {
                LoginError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                LoginError::Failed(AuthError::Rejected) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let retry_after = match &err {
                LoginError::Throttled { retry_after, .. } => Some(retry_after.as_secs().max(1)),
                _ => None,
            };
            let mut response = refusal(status, err.into());
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Err(response)
        }
    }
}

/// An authentication failure: a JSON-RPC error body, and for 401 the
/// schemes we take (RFC 9110 §11.6.1).
fn refusal(status: StatusCode, err: ErrorObject) -> Response<String> {
    let mut response = error_response(status, err);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer, Basic realm=\"rpcpeer\""),
        );
    }
    response
}

/// A CORS preflight: allowed only for configured origins, and only for the
/// HTTP methods and header a JSON-RPC call needs.
fn preflight<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    allowed: bool,
) -> Response<String> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)");
    if !allowed {
        return error_response(
            StatusCode::FORBIDDEN,
            ErrorObject::invalid_request(format!(
                "cross-origin calls from {origin} are not allowed by this server"
            )),
        );
    }
    let method = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !method.is_some_and(|m| m == "POST" || m == "GET") {
        return with_allow(
            router,
            req,
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorObject::invalid_request("only POST and GET may be called cross-origin"),
            ),
        );
    }
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// In the extensions of a request whose body was not UTF-8, and so was
/// left out: `POST` answers it with a parse error.
#[derive(Clone, Debug)]
pub(crate) struct NotText(pub(crate) std::string::FromUtf8Error);

/// The first content coding of a request's body other than `identity`:
/// none is decoded here.
fn content_coding(req: &Request<String>) -> Option<String> {
    req.headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
        .map(|coding| String::from_utf8_lossy(coding).into_owned())
}

/// A request's `Content-Type`, read once for the checks that look at it.
pub(crate) struct ContentType<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'a> ContentType<'a> {
    pub(crate) fn of(req: &'a Request<String>) -> Self {
        ContentType(
            (req.headers().get(header::CONTENT_TYPE))
                .map(|value| String::from_utf8_lossy(value.as_bytes())),
        )
    }

    /// Whether the media type, parameters aside, is one of `types`.
    pub(crate) fn is_one_of(&self, types: &[&str]) -> bool {
        let Some(text) = &self.0 else {
            return false;
        };
        let essence = text.split(';').next().unwrap_or_default().trim();
        types.iter().any(|ty| essence.eq_ignore_ascii_case(ty))
    }

    /// Why a `POST` body is not taken as JSON: the media type it was sent as.
    fn not_json(&self) -> Option<String> {
        match &self.0 {
            None => Some("no Content-Type at all".to_owned()),
            Some(_) if self.is_one_of(&JSON_TYPES) => None,
            Some(text) => Some(format!("`{text}`")),
        }
    }

    /// The `charset` parameter, without its quotes.
    fn charset(&self) -> Option<&str> {
        self.0.as_deref()?.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"'))
        })
    }
}

async fn post<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    session: &Session,
    options: &HttpOptions,
) -> Response<String> {
    let content_type = ContentType::of(req);
    if let Some(coding) = content_coding(req) {
        let err = ErrorObject::invalid_request(format!(
            "the body is sent with Content-Encoding: {coding}, which this server does not \
             decode: send it as it is"
        ));
        #[cfg(feature = "xmlrpc")]
        let mut response = if crate::xmlrpc::is_xml(&content_type) {
            crate::xmlrpc::fault_response(err)
        } else {
            error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, err)
        };
        #[cfg(not(feature = "xmlrpc"))]
        let mut response = error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, err);
        // RFC 9110 §15.5.16: 415, with the codings that would do.
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        response.headers_mut().insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        return response;
    }
    let not_text = req.extensions().get::<NotText>();
    #[cfg(feature = "xmlrpc")]
    if crate::xmlrpc::is_xml(&content_type) {
        return match not_text {
            Some(NotText(bytes)) => crate::xmlrpc::not_utf8(bytes, options),
            None => crate::xmlrpc::respond(router, req.body(), session, options).await,
        };
    }
    if let Some(sent) = content_type.not_json() {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorObject::invalid_request(format!(
                "the body must be sent as JSON, with Content-Type: application/json \
                 (or application/json-rpc, application/jsonrequest); this request has {sent}"
            )),
        );
    }
    if let Some(NotText(bytes)) = not_text {
        // The status any other parse error gets (from `handle_text`).
        let why = bytes.utf8_error();
        let sent_as = match content_type.charset() {
            Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => format!(
                "; it was sent as charset={charset}, and JSON is read as UTF-8 only (RFC 8259 §8.1)"
            ),
            _ => String::new(),
        };
        return error_response(
            StatusCode::OK,
            ErrorObject::parse_error(format!("the body is not UTF-8 ({why}){sent_as}")),
        );
    }
    // NB: RFC 8259 §8.1 lets a parser ignore a byte order mark, which some
    // clients (.NET's, editors' saved files) put before the JSON.
    let body = req.body().strip_prefix('\u{feff}').unwrap_or(req.body());
    match crate::dispatch::handle_text(router, body, session, options.max_batch_len).await {
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
    let name = rpcpeer_ws::target::percent_decode(path);
    let Some(info) = router.method_info(&name) else {
        return with_allow(
            router,
            req,
            if name.is_empty() {
                error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorObject::invalid_request(
                    "POST a JSON-RPC request to this URL, or GET /<method>?<params> for a safe method",
                ),
            )
            } else {
                error_response(StatusCode::NOT_FOUND, ErrorObject::method_not_found(&name))
            },
        );
    };
    if !info.is_safe() {
        return with_allow(
            router,
            req,
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorObject::invalid_request(format!(
                    "`{name}` is not marked safe for GET: call it with POST"
                )),
            ),
        );
    }
    let query = req.uri().query().unwrap_or_default();
    let (params, callback) = match query_params(rpcpeer_ws::target::query_pairs(query)) {
        Ok(found) => found,
        Err(twice) => {
            let err = ErrorObject::invalid_params(format!(
                "`{twice}` is given twice in the query string: give each param once"
            ));
            return json_response(
                StatusCode::OK,
                encode_response(Version::V2, &Id::null(), Err(&err)),
            );
        }
    };
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

/// The decoded pairs of a query string as params: `a=1&b=x` as
/// `{"a": 1, "b": "x"}`; `0=1&1=2` as `[1, 2]` (positional). Values are
/// JSON when they parse, else strings. `callback` is taken out for JSONP.
/// `Err` names a param given twice, which would otherwise be one value
/// silently dropped (a JSON body with a name twice is refused too).
fn query_params<'q>(
    query: impl Iterator<Item = (Cow<'q, str>, Cow<'q, str>)>,
) -> Result<(Value, Option<String>), String> {
    let mut callback = None;
    let mut pairs: Vec<(Cow<'q, str>, Value)> = Vec::new();
    for (name, value) in query {
        if name == "callback" {
            if callback.replace(value.into_owned()).is_some() {
                return Err(name.into_owned());
            }
            continue;
        }
        // NB: a linear search: a query string holds a few params.
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(name.into_owned());
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
    Ok((params, callback))
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

/// `response` with the methods the request's path answers to, which a 405
/// must list (RFC 9110 §15.5.6): POST at every path; GET, and HEAD with it,
/// only at the path of a method marked safe.
fn with_allow<S: Send + Sync + 'static>(
    router: &Router<S>,
    req: &Request<String>,
    mut response: Response<String>,
) -> Response<String> {
    let path = req.uri().path().trim_start_matches('/');
    let name = rpcpeer_ws::target::percent_decode(path);
    let safe = router.method_info(&name).is_some_and(|info| info.is_safe());
    let allow = if safe { "GET, HEAD, POST" } else { "POST" };
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_allowed_host_names_and_ip_addresses_are_answered() {
        const HTTP_11: rpcpeer_ws::http::Version = rpcpeer_ws::http::Version::HTTP_11;
        let options = HttpOptions {
            allowed_hosts: vec!["localhost".into(), "API.example.com".into()],
            ..HttpOptions::default()
        };
        let refused = |host: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(host) = host {
                headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            }
            options
                .host_refusal(HTTP_11, &"/".parse().unwrap(), &headers)
                .map(|r| r.status())
        };
        let refused_target = |target: &str, host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            options
                .host_refusal(HTTP_11, &target.parse().unwrap(), &headers)
                .map(|r| r.status())
        };
        for host in [
            "localhost:7071",
            "LOCALHOST",
            "api.example.com",
            "127.0.0.1:7071",
            "[::1]:80",
            "10.0.0.2",
        ] {
            assert_eq!(refused(Some(host)), None, "{host}");
        }
        for host in [
            "attacker.example:7071",
            "localhost.attacker.example",
            "evil",
        ] {
            assert_eq!(refused(Some(host)), Some(StatusCode::FORBIDDEN), "{host}");
        }
        // A `Host` is one host name, not a URL's authority.
        assert_eq!(
            refused(Some("evil.example@localhost")),
            Some(StatusCode::FORBIDDEN)
        );
        // No `Host`: refused in HTTP/1.1, which requires it; let through in
        // HTTP/1.0, which browsers do not send: nothing to rebind.
        assert_eq!(refused(None), Some(StatusCode::FORBIDDEN));
        let no_host = |version| {
            options
                .host_refusal(version, &"/".parse().unwrap(), &HeaderMap::new())
                .map(|r| r.status())
        };
        assert_eq!(no_host(rpcpeer_ws::http::Version::HTTP_10), None);
        // A full URL as the target names the host; `Host` is then ignored.
        assert_eq!(
            refused_target("http://evil.example/", "127.0.0.1"),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused_target("http://user@evil.example:80/x", "localhost"),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused_target("http://localhost:7071/", "evil.example"),
            None
        );
        assert!(HttpOptions::default()
            .host_refusal(HTTP_11, &"/".parse().unwrap(), &HeaderMap::new())
            .is_none());
    }

    #[test]
    fn same_origin_compares_host_and_port_with_the_schemes_default_ports() {
        assert!(same_origin("http://example.com", "example.com"));
        assert!(same_origin("http://example.com", "EXAMPLE.com:80"));
        assert!(same_origin("https://example.com:443", "example.com"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin("https://example.com", "example.com:80"));
        assert!(!same_origin("http://example.com", "example.com:8080"));
        assert!(!same_origin("http://example.com.evil", "example.com"));
        assert!(!same_origin("null", "example.com"));
        assert!(!same_origin("example.com", "example.com"));
        assert!(!same_origin("http://example.com", "not a host"));
    }

    fn query_params(query: &str) -> (Value, Option<String>) {
        super::query_params(rpcpeer_ws::target::query_pairs(query)).expect("no name twice")
    }

    #[test]
    fn a_param_given_twice_in_a_query_string_is_named() {
        let twice = |query| super::query_params(rpcpeer_ws::target::query_pairs(query)).err();
        assert_eq!(twice("a=1&b=2&a=3"), Some("a".to_owned()));
        assert_eq!(twice("0=1&0=2"), Some("0".to_owned()));
        assert_eq!(twice("callback=f&callback=g"), Some("callback".to_owned()));
        assert_eq!(twice("a=1&b=2&callback=f"), None);
    }

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
