//! The client side of plain HTTP: one JSON text POSTed to an `http://` or `https://` URL, and the whole answer.

use std::io;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::Config;

/// What an HTTP server answered to [`post`].
#[derive(Debug)]
pub struct PostAnswer {
    /// The status, whatever it is: [`post`] fails only when no answer came.
    pub status: StatusCode,
    /// The answer's headers (`Content-Type`, `Retry-After`, …).
    pub headers: HeaderMap,
    /// The whole body, at most [`Config::max_message_len`] bytes.
    pub body: Bytes,
}

/// POSTs `body` as `Content-Type: application/json` to an `http://` URL
/// (or, with the `tls` feature, `https://`, the server's certificate
/// checked against the webpki roots as for `wss://`), on a connection of
/// its own, and reads the whole answer. Redirects are not followed.
///
/// ```
/// use rpcpeer_ws::{post, Config};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let refused = post("ftp://example.com/", "{}".into(), &Config::default()).await;
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # }
/// ```
///
/// # Errors
/// `InvalidInput` for a URL that is not `http://host[:port]/…` (or
/// `https://`), or that carries credentials (`user:password@`), which
/// belong in an `Authorization` header; `InvalidData` for an answer longer
/// than [`Config::max_message_len`]; the connection's error when it could
/// not be made, the TLS handshake failed, or the server hung up before
/// answering.
pub async fn post(url: &str, body: String, config: &Config) -> io::Result<PostAnswer> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad HTTP URL `{url}`: {why}"),
        )
    };
    let uri: Uri = url
        .parse()
        .map_err(|err: http::uri::InvalidUri| invalid(&err.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") if cfg!(feature = "tls") => true,
        Some("https") => {
            return Err(invalid(
                "https:// needs rpcpeer-ws built with its `tls` feature",
            ))
        }
        _ => return Err(invalid("the scheme must be http:// or https://")),
    };
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(invalid("no host name"));
    };
    if authority.as_str().contains('@') {
        return Err(invalid(
            "credentials in the URL are not sent; give them in an Authorization header",
        ));
    }
    // `[::1]` is how a URL writes the address ::1.
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port)).await?;
    // One small request and its answer: Nagle's delay would only slow it.
    tcp.set_nodelay(true)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("rpcpeer/", env!("CARGO_PKG_VERSION"))),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| invalid(&err.to_string()))?;
    #[cfg(feature = "tls")]
    if tls {
        return exchange(tls::connect(host, tcp).await?, request, config).await;
    }
    exchange(tcp, request, config).await
}

/// Sends `request` over `io` as HTTP/1.1 and reads the whole answer.
async fn exchange<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    config: &Config,
) -> io::Result<PostAnswer>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    // Drives the connection while the answer is awaited; it is dropped
    // with the connection once the body is read.
    let driving = tokio::spawn(connection);
    let answer = async {
        let response = sender.send_request(request).await.map_err(|err| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("no answer to the request: {err}"),
            )
        })?;
        let (head, body) = response.into_parts();
        let limit = config.max_message_len;
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<http_body_util::LengthLimitError>() {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the answer is longer than {limit} bytes, the most that is read"),
                    )
                } else {
                    io::Error::other(format!("the answer broke off: {err}"))
                }
            })?
            .to_bytes();
        Ok(PostAnswer {
            status: head.status,
            headers: head.headers,
            body,
        })
    }
    .await;
    driving.abort();
    answer
}

#[cfg(feature = "tls")]
mod tls {
    use std::io;
    use std::sync::Arc;

    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::{self, pki_types::ServerName};

    /// The TLS handshake as `host`, the certificate checked against the
    /// webpki roots.
    pub(super) async fn connect(host: &str, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_owned())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|err| io::Error::new(err.kind(), format!("TLS handshake failed: {err}")))
    }
}
