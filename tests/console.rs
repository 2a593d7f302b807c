//! The console in the browser: `rpcpeer serve` on port 0, its page loaded in headless Chromium (driven over WebDriver by chromedriver), used as a person would; and the `Origin` check that keeps other sites' pages out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash .ci/test`
//! installs them); without them the browser test fails, saying so.

#[path = "common/binary.rs"]
mod binary;

use binary::{within, Serve};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use rpcpeer::{Driver, Router};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A program on the `PATH`, or a failure naming the Debian package.
fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the console test drives headless Chromium; \
                 install Debian's `{package}` (bash .ci/test does it)"
            )
        })
}

/// Headless Chromium under a chromedriver of the test's own, with a fresh
/// profile; both end when this is dropped.
struct Browser {
    client: Client,
    _driver: Child,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        let chromium = program("chromium", "chromium");
        let chromedriver = program("chromedriver", "chromium-driver");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let mut lines = BufReader::new(driver.stdout.take().expect("stdout")).lines();
        loop {
            let line = within("chromedriver to start", lines.next_line())
                .await
                .expect("read chromedriver's output")
                .expect("chromedriver exited before it started");
            if line.contains("started successfully") {
                break;
            }
        }
        // Its later output is not read: let it drain into nothing.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = std::env::temp_dir().join(format!("rpcpeer-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a profile folder");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = within(
            "a Chromium session",
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("a Chromium session through chromedriver");
        Self {
            client,
            _driver: driver,
            profile,
        }
    }

    /// The element `xpath` finds, once it is there.
    async fn wait_for(&self, what: &str, xpath: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(xpath))
            .await;
        match found {
            Ok(element) => element,
            Err(err) => {
                let page = self.client.find(Locator::Css("main")).await.ok();
                let text = match page {
                    Some(main) => main.text().await.unwrap_or_default(),
                    None => String::new(),
                };
                panic!("{what} ({xpath}): {err}\nthe page shows:\n{text}")
            }
        }
    }

    async fn click(&self, what: &str, xpath: &str) {
        self.wait_for(what, xpath)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {what}: {err}"));
    }

    /// Replaces the text of the field `css` with `text`, typed.
    async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("the field {css}: {err}"));
        field.clear().await.expect("clear a field");
        field.send_keys(text).await.expect("type into a field");
    }

    /// Calls `method` with `params` typed into the raw editor.
    async fn call_raw(&self, method: &str, params: &str) {
        self.type_into("#method", method).await;
        self.type_into("#params", params).await;
        self.click("the Call button", "//button[@id='call']").await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A result entry of the log for `title` whose value is `value`.
fn result_xpath(title: &str, value: &str) -> String {
    format!(
        "//div[@id='log']/div[contains(@class,'result')][.//strong[text()='{title}']]//pre[@class='value' and normalize-space(.)='{value}']"
    )
}

#[tokio::test]
async fn a_person_uses_the_console_in_chromium() {
    let serve = Serve::start(&[]).await;
    let addr = serve.ws.clone();
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("load the console");
    browser
        .wait_for("connected", "//span[@id='state' and text()='connected']")
        .await;

    // subtract from the list, its params through the form built from its schema.
    browser
        .click(
            "subtract in the list",
            "//ul[@id='methods']//button[@data-method='subtract']",
        )
        .await;
    browser.type_into("#param-minuend", "42").await;
    browser.type_into("#param-subtrahend", "23").await;
    let params = browser
        .client
        .find(Locator::Css("#params"))
        .await
        .expect("the raw editor")
        .prop("value")
        .await
        .expect("its value");
    assert_eq!(params.as_deref(), Some(r#"{"minuend":42,"subtrahend":23}"#));
    browser
        .click("the Call button", "//button[@id='call']")
        .await;
    browser
        .wait_for("subtract's result", &result_xpath("subtract", "19"))
        .await;

    // An error shows its code, message and data.
    browser
        .call_raw(
            "fail",
            r#"{"code":-32050,"message":"broken","data":{"why":"asked"}}"#,
        )
        .await;
    browser
        .wait_for(
            "fail's error",
            "//div[@id='log']/div[contains(@class,'error')][.//span[@class='code' and text()='-32050'] and .//span[@class='message' and text()='broken']]//pre[@class='data' and contains(., '\"why\": \"asked\"')]",
        )
        .await;

    // A batch: a call and a notification in one message.
    browser.call_raw("sum", "[1, 2, 3]").await;
    browser.type_into("#method", "sum").await;
    browser.type_into("#params", "[4, 5]").await;
    browser
        .click("Add call to batch", "//button[@id='add-batch']")
        .await;
    browser.type_into("#method", "update").await;
    browser.type_into("#params", "[1]").await;
    browser
        .click(
            "Add notification to batch",
            "//button[@id='add-batch-notify']",
        )
        .await;
    browser
        .click("Send batch", "//button[@id='send-batch']")
        .await;
    browser
        .wait_for("the batch's result", &result_xpath("batch: sum", "9"))
        .await;

    // The chat: the browser joins, a second client (no browser) posts.
    browser.call_raw("join", r#"{"name":"browser"}"#).await;
    browser
        .wait_for("join's result", &result_xpath("join", "true"))
        .await;
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
        .await
        .expect("a second client");
    let (bob, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    let joined: bool = bob
        .request("join", json!({"name": "bob"}))
        .await
        .expect("bob joins");
    assert!(joined);
    let _: i64 = bob
        .request("postMessage", json!({"text": "hello from bob"}))
        .await
        .expect("bob posts");
    browser
        .wait_for(
            "bob's message pushed to the browser",
            "//div[@id='notifications']/div[.//strong[text()='handleMessage']]/pre[contains(., 'hello from bob')]",
        )
        .await;
    browser
        .wait_for(
            "a time stamp on it",
            "//div[@id='notifications']/div[.//strong[text()='handleMessage']]//span[@class='time']",
        )
        .await;

    // The server asks the browser; the person answers.
    browser
        .call_raw(
            "callback",
            r#"{"method":"ask","params":["six times seven?"]}"#,
        )
        .await;
    browser
        .wait_for(
            "the server's request",
            "//div[@class='incoming' and @data-method='ask']//pre[contains(., 'six times seven?')]",
        )
        .await;
    browser
        .type_into("div.incoming[data-method='ask'] textarea.answer", "42")
        .await;
    browser
        .click(
            "Answer with this result",
            "//div[@class='incoming' and @data-method='ask']//button[contains(@class,'answer-result')]",
        )
        .await;
    browser
        .wait_for("callback's result", &result_xpath("callback", "42"))
        .await;

    let shot = browser.client.screenshot().await.expect("a screenshot");
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    // To refresh the README's picture: RPCPEER_CONSOLE_SCREENSHOT=docs/console.png.
    if let Some(path) = std::env::var_os("RPCPEER_CONSOLE_SCREENSHOT") {
        std::fs::write(&path, &shot).expect("write the screenshot");
    }

    // Reconnect: a new connection, the state shown throughout.
    browser
        .click("Reconnect", "//button[@id='reconnect']")
        .await;
    browser
        .wait_for(
            "connected again",
            "//span[@id='state' and text()='connected']",
        )
        .await;
    browser.call_raw("subtract", "[50, 8]").await;
    browser
        .wait_for("a call after reconnecting", &result_xpath("subtract", "42"))
        .await;
    browser.close().await;
}

/// A raw HTTP/1.1 exchange on a fresh connection: the status and the whole answer.
async fn raw_http(addr: &str, request: &str) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    within("an answer", socket.read_to_end(&mut answer))
        .await
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"));
    (status, answer)
}

#[tokio::test]
async fn the_page_is_served_only_where_switched_on_and_other_origins_stay_out() {
    let serve = Serve::start(&[]).await;
    let addr = serve.ws.clone();
    let get = |accept: &str| {
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
    };
    let (status, page) = raw_http(&addr, &get("text/html,*/*;q=0.8")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<title>rpcpeer console</title>"), "{page}");
    let lower = page.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/html; charset=utf-8"),
        "{page}"
    );
    assert!(
        lower.contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    for fetched in ["<script src", "<link", "@import", "url("] {
        assert!(
            !page.contains(fetched),
            "the page fetches something: {fetched}"
        );
    }
    // Asking for JSON: JSON-RPC as before.
    let (status, answer) = raw_http(&addr, &get("application/json")).await;
    assert_eq!(status, 405, "{answer}");
    assert!(answer.contains("\"jsonrpc\":\"2.0\""), "{answer}");

    // The page's own origin may open the WebSocket; another site's may not.
    let upgrade = |origin: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{addr}/"),
            )
            .expect("a request");
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("a header value"));
        tokio_tungstenite::connect_async(request)
    };
    let (ws, _) = upgrade(&format!("http://{addr}"))
        .await
        .expect("same origin is let in");
    drop(ws);
    match upgrade("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("another origin was not refused: {:?}", other.map(|_| ())),
    }

    // Only where it is switched on: serve's WebSocket-only port has no page.
    let serve = Serve::start(&["--ws-mode", "websocket"]).await;
    let addr = serve.ws.clone();
    let (status, answer) = raw_http(
        &addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 426, "{answer}");
    assert!(!answer.contains("rpcpeer console"), "{answer}");
}

#[tokio::test]
async fn a_server_without_the_console_answers_a_browser_with_json_rpc() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(rpcpeer::ws_server::WsServer::new(Router::new()).serve(listener));
    let (status, answer) = raw_http(
        &addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 405, "{answer}");
    assert!(!answer.contains("rpcpeer console"), "{answer}");

    // And with it, at the path the application chose.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(
        rpcpeer::ws_server::WsServer::new(Router::new())
            .console("console")
            .serve(listener),
    );
    let get = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        )
    };
    let (status, answer) = raw_http(&addr, &get("/console")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("rpcpeer console"), "{answer}");
    let (status, answer) = raw_http(&addr, &get("/")).await;
    assert_eq!(status, 405, "{answer}");
}
