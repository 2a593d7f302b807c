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
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|accept| String::from_utf8_lossy(accept.as_bytes()).contains("text/html"));
    if !html {
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
