//! The console page: one HTML file embedded in the binary, served on `GET` to a browser when the application switches it on (feature `ws`).

use rpcpeer_ws::http::{header, HeaderValue, Method, Request, Response};

/// The page: plain HTML, CSS and JavaScript, nothing fetched from
/// elsewhere. It connects back to the URL it was loaded from over
/// WebSocket.
const PAGE: &str = include_str!("console/console.html");

/// What the page's answer says a browser may do with it: run its own
/// inline script and style, talk to its own origin (`'self'` covers
/// `ws:`/`wss:` to the same host), load nothing else, never be framed.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                      connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                      frame-ancestors 'none'";

/// The page, when `req` is a browser's `GET` (or `HEAD`) of `path` that
/// accepts HTML; `None` for any other request, which goes on to JSON-RPC.
pub(crate) fn page(path: &str, req: &Request<String>) -> Option<Response<String>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || req.uri().path() != path {
        return None;
    }
    if !accepts_html(req) {
        return None;
    }
    let body = if req.method() == Method::HEAD {
        String::new()
    } else {
        PAGE.to_owned()
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    Some(response)
}

/// Whether `Accept` names `text/html` with a weight above 0 (RFC 9110
/// §12.5.1; `q=0` is "not acceptable"). Wildcards do not count: `*/*` is
/// what clients that want the JSON answer send too.
fn accepts_html(req: &Request<String>) -> bool {
    let ranges = req.headers().get_all(header::ACCEPT).iter();
    ranges
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|range| {
            let text = String::from_utf8_lossy(range);
            let mut parts = text.split(';').map(str::trim);
            let html = parts
                .next()
                .is_some_and(|media| media.eq_ignore_ascii_case("text/html"));
            let refused = parts.any(|param| {
                param.split_once('=').is_some_and(|(name, weight)| {
                    name.trim().eq_ignore_ascii_case("q")
                        && weight.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            html && !refused
        })
}

/// Adds to `response`, an answer to a request of the page's path that was
/// not the page, what says the path serves the page too: `Vary: Accept`,
/// and `GET` and `HEAD` among the methods a 405 lists (RFC 9110 §15.5.6).
pub(crate) fn not_the_page(response: &mut Response<String>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    if headers.contains_key(header::ALLOW) {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept: Option<&str>) -> Request<String> {
        let mut req = Request::get(path);
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        req.body(String::new()).expect("a request")
    }

    #[test]
    fn only_a_browsers_get_of_the_path_gets_the_page() {
        let browser = "text/html,application/xhtml+xml,*/*;q=0.8";
        let served = page("/", &get("/", Some(browser))).expect("the page");
        assert!(served.body().contains("<title>rpcpeer console</title>"));
        assert_eq!(
            served.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(page("/", &get("/", Some("application/json"))).is_none());
        assert!(page("/", &get("/", Some("*/*"))).is_none());
        assert!(page("/", &get("/", Some("application/json, text/html;q=0"))).is_none());
        assert!(page("/", &get("/", Some("application/json, TEXT/HTML; q=0.5"))).is_some());
        assert!(page("/", &get("/", None)).is_none());
        assert!(page("/", &get("/sum", Some(browser))).is_none());
        assert!(page("/console", &get("/console", Some(browser))).is_some());
        let post = Request::post("/")
            .header(header::ACCEPT, browser)
            .body(String::new())
            .expect("a request");
        assert!(page("/", &post).is_none());
    }
}
