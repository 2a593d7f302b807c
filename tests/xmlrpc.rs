//! XML-RPC on the HTTP port: Python's standard `xmlrpc.client` against `rpcpeer serve` (every type, faults, multicall, dates, base64, None), and what a hostile body gets (malformed XML, a DOCTYPE, entities, deep nesting, an oversized body). Real sockets on 127.0.0.1.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use rpcpeer::ws::Config as WsConfig;
use rpcpeer::ws_server::WsServer;
use rpcpeer::{ErrorObject, Router};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Turns a hang into a failure; nothing here should take a fraction of it.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 20 s (a hang)"))
}

#[tokio::test]
async fn pythons_xmlrpc_client_calls_serve_with_every_type() {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_rpcpeer"))
        .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rpcpeer serve");
    let mut lines = BufReader::new(serve.stdout.take().expect("piped stdout")).lines();
    let mut url = None;
    while url.is_none() {
        let line = within("serve's `listening on` lines", lines.next_line())
            .await
            .expect("serve's stdout")
            .expect("serve to say where it listens");
        url = line
            .strip_prefix("listening on ws://")
            .map(|rest| format!("http://{rest}"));
    }
    let url = url.expect("the WebSocket/HTTP URL");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xmlrpc/client.py");
    let output = within(
        "python3's xmlrpc.client checks",
        Command::new("python3").arg(script).arg(&url).output(),
    )
    .await
    .expect("run python3 (.ci/test installs it)");
    assert!(
        output.status.success(),
        "xmlrpc.client against {url}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));
}

/// A router with one method, served with HTTP bodies of at most `max_body` bytes.
async fn serve(max_body: usize) -> SocketAddr {
    let mut router = Router::new();
    router.method("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = WsServer::new(router).ws_config(WsConfig {
        max_message_len: max_body,
        ..WsConfig::default()
    });
    tokio::spawn(server.serve(listener));
    addr
}

/// One keep-alive HTTP/1.1 connection, raw.
struct Http {
    io: BufReader<TcpStream>,
}

impl Http {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            io: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// POSTs `body` as `text/xml`: the status and body of the answer, or
    /// `None` when the server closed the connection instead.
    async fn post(&mut self, body: impl AsRef<[u8]>) -> Option<(u16, String)> {
        let body = body.as_ref();
        let head = format!(
            "POST /RPC2 HTTP/1.1\r\nHost: t\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.io.get_mut().write_all(head.as_bytes()).await.ok()?;
        // A server that refuses the body may close before reading it all.
        let _ = self.io.get_mut().write_all(body).await;
        within("an HTTP response", async {
            let mut line = String::new();
            if self.io.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let status = line.split(' ').nth(1)?.parse().ok()?;
            let mut length = 0;
            loop {
                let mut header = String::new();
                self.io.read_line(&mut header).await.ok()?;
                let header = header.trim_end().to_ascii_lowercase();
                if header.is_empty() {
                    break;
                }
                if let Some(value) = header.strip_prefix("content-length:") {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            self.io.read_exact(&mut body).await.ok()?;
            Some((status, String::from_utf8(body).ok()?))
        })
        .await
    }

    /// POSTs `body` and expects a 200 fault: its code and string.
    async fn fault(&mut self, body: impl AsRef<[u8]>) -> (i64, String) {
        let (status, reply) = self.post(body).await.expect("an answer");
        assert_eq!(status, 200, "{reply}");
        let code = between(&reply, "<name>faultCode</name><value><int>", "</int>")
            .unwrap_or_else(|| panic!("not a fault: {reply}"));
        let string = between(
            &reply,
            "<name>faultString</name><value><string>",
            "</string>",
        )
        .unwrap_or_else(|| panic!("a fault without its string: {reply}"));
        (code.parse().expect("an integer code"), string.to_owned())
    }
}

/// The text between `start` and the next `end` in `text`.
fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

const ADD: &str = "<?xml version=\"1.0\"?><methodCall><methodName>add</methodName><params>\
    <param><value><int>2</int></value></param><param><value><int>3</int></value></param>\
    </params></methodCall>";

#[tokio::test]
async fn malformed_xml_gets_a_fault_and_the_connection_goes_on() {
    let mut http = Http::connect(serve(1 << 20).await).await;
    for body in [
        "",
        "not xml at all",
        "<methodCall><methodName>add</methodName>",
        "<methodCall><methodName>add</methodCall></methodName>",
        "<methodCall/><methodCall/>",
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?><methodCall/>",
    ] {
        let (code, message) = http.fault(body).await;
        assert!(
            code == -32700 || code == -32701,
            "{body:?}: {code} {message}"
        );
    }
    for (body, code) in [
        ("<methodResponse/>", -32600),
        ("<methodCall><params/></methodCall>", -32600),
        ("<methodCall><methodName>add</methodName><params><param><value><int>two</int></value></param></params></methodCall>", -32600),
        ("<methodCall><methodName>add</methodName><params><param><value><i4>1</i4></value></param></params></methodCall>", -32602),
        ("<methodCall><methodName>nope</methodName></methodCall>", -32601),
    ] {
        assert_eq!(http.fault(body).await.0, code, "{body}");
    }
    // Latin-1 bytes: as declared, an encoding not read (-32701); declared
    // as nothing, so UTF-8, bytes that are not (-32702).
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall>\
        <methodName>caf\xe9</methodName></methodCall>";
    let (code, message) = http.fault(latin1).await;
    assert_eq!(code, -32701, "{message}");
    assert!(message.contains("iso-8859-1"), "{message}");
    let (code, message) = http
        .fault(b"<methodCall><methodName>caf\xe9</methodName></methodCall>")
        .await;
    assert_eq!(code, -32702, "{message}");
    assert!(message.contains("the body is not UTF-8"), "{message}");
    let (status, reply) = http.post(ADD).await.expect("the connection goes on");
    assert_eq!(status, 200);
    assert!(
        reply.contains("<params><param><value><int>5</int></value></param></params>"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_doctype_and_entities_get_a_fault_and_nothing_is_expanded() {
    let mut http = Http::connect(serve(1 << 20).await).await;
    // The billion laughs: ten levels of ten, a gigabyte if expanded.
    let mut bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol0 \"lol\">");
    for level in 1..10 {
        let previous = format!("&lol{};", level - 1);
        bomb.push_str(&format!("<!ENTITY lol{level} \"{}\">", previous.repeat(10)));
    }
    bomb.push_str("]><methodCall><methodName>add</methodName><params><param><value><string>&lol9;</string></value></param></params></methodCall>");
    let external = "<?xml version=\"1.0\"?><!DOCTYPE methodCall [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
        <methodCall><methodName>add</methodName><params><param><value>&xxe;</value></param></params></methodCall>";
    for body in [bomb.as_str(), external] {
        let (code, message) = http.fault(body).await;
        assert_eq!(code, -32700, "{message}");
        assert!(message.contains("DOCTYPE"), "{message}");
    }
    // An entity nobody declared: refused, not passed on as text.
    let undeclared = "<methodCall><methodName>add</methodName><params><param><value>&xxe;</value></param></params></methodCall>";
    let (code, message) = http.fault(undeclared).await;
    assert_eq!(code, -32700, "{message}");
    assert!(message.contains("&amp;xxe;"), "{message}");
}

#[tokio::test]
async fn nesting_past_the_limit_gets_a_fault_not_a_stack_overflow() {
    let mut http = Http::connect(serve(1 << 20).await).await;
    let depth = 20_000;
    let body = format!(
        "<methodCall><methodName>add</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(depth),
        "</data></array></value>".repeat(depth)
    );
    let (code, message) = http.fault(&body).await;
    assert_eq!(code, -32600, "{message}");
    assert!(message.contains("nested"), "{message}");
}

#[tokio::test]
async fn an_xml_body_over_the_http_body_limit_gets_413() {
    let addr = serve(1024).await;
    let mut http = Http::connect(addr).await;
    let big = format!(
        "<methodCall><methodName>add</methodName><params><param><value><string>{}</string></value></param></params></methodCall>",
        "x".repeat(2000)
    );
    let (status, _) = http.post(&big).await.expect("a refusal");
    assert_eq!(status, 413);
    // The server goes on serving others.
    let (status, reply) = Http::connect(addr)
        .await
        .post(ADD)
        .await
        .expect("an answer");
    assert_eq!(status, 200);
    assert!(reply.contains("<int>5</int>"), "{reply}");
}
