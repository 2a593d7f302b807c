//! `rpcpeer call` and `notify` to `http://` URLs: against `serve`'s HTTP side, and against raw HTTP servers that answer what JSON-RPC servers should not (error pages, HTML, nothing, too much).

#[path = "common/binary.rs"]
mod binary;

use binary::{rpcpeer, stderr, stdout, within, Serve};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn call_notify_and_batch_over_http_to_serve() {
    let serve = Serve::start(&[]).await;
    let url = format!("http://{}/", serve.ws);
    let out = rpcpeer(&["call", &url, "subtract", "42", "23"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "19\n");
    let out = rpcpeer(&["call", &url, "subtract", "minuend=42", "subtrahend=23"]).await;
    assert_eq!(stdout(&out), "19\n", "{}", stderr(&out));
    // A path of the URL is sent as it is; serve answers POST on any path.
    let out = rpcpeer(&["call", &format!("{url}rpc?x=1"), "sum", "1", "2", "3"]).await;
    assert_eq!(stdout(&out), "6\n", "{}", stderr(&out));
    // A result of null is a result.
    let out = rpcpeer(&["call", &url, "echo", r#"{"value":null}"#]).await;
    assert_eq!(stdout(&out), "null\n", "{}", stderr(&out));

    // The peer's error: printed, exit 1.
    let out = rpcpeer(&["call", &url, "fail", "code=-32050", "message=broken"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("-32050: broken"), "{}", stderr(&out));
    // What needs a connection says so over HTTP.
    let out = rpcpeer(&["call", &url, "join", "ada"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("-32004"), "{}", stderr(&out));

    // A notification: 204, success, nothing printed.
    let out = rpcpeer(&["notify", &url, "update", "[1,2]"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    let dir = std::env::temp_dir().join(format!("rpcpeer-cli-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("batch.json");
    // The same id twice: the answers are matched by ids of the CLI's own.
    std::fs::write(
        &file,
        r#"[{"method":"subtract","params":[42,23],"id":1},
            {"method":"notify_hello","params":[7]},
            {"method":"fail","params":{"code":9,"message":"nine"},"id":"f"},
            {"method":"sum","params":[1,2],"id":1}]"#,
    )
    .expect("write batch");
    let path = file.to_string_lossy().into_owned();
    let out = rpcpeer(&["call", "--batch", &path, &url]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "an entry failed: {}",
        stderr(&out)
    );
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"id": 1, "result": 19}),
            json!({"id": "f", "error": {"code": 9, "message": "nine"}}),
            json!({"id": 1, "result": 3}),
        ]
    );
    // Notifications only: 204, success.
    std::fs::write(&file, r#"[{"method":"a"},{"method":"b","params":[1]}]"#).expect("write");
    let out = rpcpeer(&["call", "--batch", &path, &url]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let _ = std::fs::remove_dir_all(dir);

    // A connection's commands refuse an HTTP URL, saying why.
    let out = rpcpeer(&["listen", &url]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("one call at a time"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_http_error_status_or_a_body_that_is_not_json_rpc_is_a_clear_failure() {
    // serve --ws-mode websocket: plain HTTP gets 426 with a text body.
    let serve = Serve::start(&["--ws-mode", "websocket"]).await;
    let url = format!("http://{}/", serve.ws);
    let out = rpcpeer(&["call", &url, "subtract", "42", "23"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("HTTP 426 Upgrade Required"), "{err}");
    assert!(err.contains("WebSocket only"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = rpcpeer(&["notify", &url, "update"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 426"), "{}", stderr(&out));

    let cases: [(String, &[&str], i32, &[&str]); 8] = [
        (
            http_answer(
                "404 Not Found",
                Some("text/html"),
                "<h1>no such page</h1>\n",
            ),
            &["call"],
            3,
            &["HTTP 404 Not Found", "text/html", "<h1>no such page</h1>"],
        ),
        (
            http_answer("200 OK", Some("text/plain"), "hello"),
            &["call"],
            3,
            &["HTTP 200 OK", "not a JSON-RPC response", "hello"],
        ),
        (
            http_answer("200 OK", None, ""),
            &["call"],
            3,
            &["HTTP 200 OK with an empty body"],
        ),
        (
            http_answer(
                "200 OK",
                Some("application/json"),
                r#"{"jsonrpc":"2.0","result":1,"id":7}"#,
            ),
            &["call"],
            3,
            &["with the id 7"],
        ),
        (
            http_answer(
                "503 Service Unavailable",
                Some("application/json"),
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"busy"},"id":null}"#,
            ),
            &["call"],
            1,
            &["-32000: busy", "HTTP 503 Service Unavailable"],
        ),
        (
            http_answer("500 Internal Server Error", None, ""),
            &["notify"],
            3,
            &["HTTP 500 Internal Server Error with an empty body"],
        ),
        (http_answer("200 OK", None, ""), &["notify"], 0, &[]),
        (
            "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
            &["notify"],
            0,
            &[],
        ),
    ];
    for (answer, command, code, says) in cases {
        let (url, seen) = answer_once(answer.as_bytes().to_vec()).await;
        let out = rpcpeer(&[command[0], &url, "subtract", "42", "23"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{answer:?}: {err}");
        for said in says {
            assert!(err.contains(said), "{answer:?}: `{said}` not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        let request = within("the request", seen).await.expect("the request");
        assert!(
            request.starts_with("POST /path?q=1 HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{request}"
        );
        let body = request.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["method"], "subtract");
        assert_eq!(body["params"], json!([42, 23]));
        assert_eq!(body.get("id").is_some(), command[0] == "call", "{body}");
    }

    // An answer longer than the 16 MiB read at most.
    let mut huge =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17000000\r\n\r\n"
            .to_vec();
    huge.resize(huge.len() + 17_000_000, b' ');
    let (url, _seen) = answer_once(huge).await;
    let out = rpcpeer(&["call", &url, "subtract", "42", "23"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("longer than"), "{}", stderr(&out));

    // https:// to a server that speaks plain HTTP: the handshake fails, said so.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let _ = socket.read(&mut [0; 1024]).await;
    });
    let out = rpcpeer(&["call", &url, "subtract", "42", "23"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("TLS handshake failed"),
        "{}",
        stderr(&out)
    );

    // Nothing listening: said as for the other schemes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    drop(listener);
    let out = rpcpeer(&["call", &url, "subtract", "42", "23"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("rpcpeer: cannot connect to {url}: ")),
        "{}",
        stderr(&out)
    );
}

/// An HTTP/1.1 answer with this status line, `Content-Type` and body.
fn http_answer(status: &str, content_type: Option<&str>, body: &str) -> String {
    let kind = content_type.map_or(String::new(), |kind| format!("Content-Type: {kind}\r\n"));
    format!(
        "HTTP/1.1 {status}\r\n{kind}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A raw HTTP server on 127.0.0.1 port 0 that reads one request and writes
/// `answer` as it is; its URL (with a path and query) and the request text.
async fn answer_once(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/path?q=1", listener.local_addr().expect("addr"));
    let seen = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut chunk = [0; 4096];
        // The head, then as much body as Content-Length says.
        loop {
            let n = socket.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|n| n.trim().parse::<usize>().expect("a length"))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
        // The client may hang up before reading it all (too long): fine.
        let _ = socket.write_all(&answer).await;
        let _ = socket.shutdown().await;
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, seen)
}
