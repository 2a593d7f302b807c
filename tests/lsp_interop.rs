//! An LSP client written with `#[rpcpeer::api]` talks to a language server
//! nobody here wrote: `vscode-json-languageserver` from npm (installed by
//! `.ci/test` from `tests/bridge`'s lock file), started over stdio with
//! Content-Length framing. It initializes, answers the server's requests,
//! gets the diagnostics of a broken document, and shuts the server down.

use std::path::Path;
use std::time::Duration;

use rpcpeer::{Driver, ErrorObject};
use rpcpeer_stream::Framing;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Turns a hang into a failure; nothing here should take a fraction of it.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 10 s (a hang)"))
}

/// `initialize`'s params: the parts this client fills in.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// Ours, so that the server can tell when its client is gone.
    pub process_id: Option<u32>,
    /// No workspace folder: the document is all there is.
    pub root_uri: Option<String>,
    /// What this client can do, as LSP's `ClientCapabilities`.
    pub capabilities: Value,
    /// The server's own options.
    pub initialization_options: Value,
}

/// `initialize`'s result.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitializeResult {
    /// What the server can do, as LSP's `ServerCapabilities`.
    pub capabilities: Value,
}

/// `initialized`'s params: none, as an object.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitializedParams {}

/// `workspace/didChangeConfiguration`'s params.
#[derive(Debug, Serialize, Deserialize)]
pub struct DidChangeConfigurationParams {
    /// The settings, in the server's own shape.
    pub settings: Value,
}

/// A document as opened.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextDocumentItem {
    /// Where it is.
    pub uri: String,
    /// `json` here.
    pub language_id: String,
    /// Goes up with each change.
    pub version: i32,
    /// Its whole text.
    pub text: String,
}

/// `textDocument/didOpen`'s params.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidOpenTextDocumentParams {
    /// The document opened.
    pub text_document: TextDocumentItem,
}

/// `workspace/configuration`'s params: the sections the server wants.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigurationParams {
    /// One per answer expected.
    pub items: Vec<ConfigurationItem>,
}

/// One section asked for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationItem {
    /// The document it applies to, if any.
    pub scope_uri: Option<String>,
    /// The section's name, such as `json`.
    pub section: Option<String>,
}

/// `client/registerCapability`'s params.
#[derive(Debug, Serialize, Deserialize)]
pub struct RegistrationParams {
    /// What the server registers.
    pub registrations: Vec<Registration>,
}

/// One capability registered.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The server's id for it, to unregister it by.
    pub id: String,
    /// The method it provides, such as `textDocument/rangeFormatting`.
    pub method: String,
    /// Its options, in the method's own shape.
    pub register_options: Option<Value>,
}

/// `textDocument/publishDiagnostics`'s params.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishDiagnosticsParams {
    /// The document they are about.
    pub uri: String,
    /// All of them: an empty list clears the document's.
    pub diagnostics: Vec<Diagnostic>,
}

/// One problem in a document.
#[derive(Debug, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Where it is.
    pub range: Range,
    /// 1 error, 2 warning, 3 information, 4 hint.
    pub severity: Option<u8>,
    /// What is wrong.
    pub message: String,
}

/// A span of a document.
#[derive(Debug, Serialize, Deserialize)]
pub struct Range {
    /// Its first character.
    pub start: Position,
    /// Just past its last character.
    pub end: Position,
}

/// A place in a document, zero-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The line.
    pub line: u32,
    /// The UTF-16 code unit in the line.
    pub character: u32,
}

/// `window/logMessage`'s params.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogMessageParams {
    /// 1 error, 2 warning, 3 info, 4 log.
    #[serde(rename = "type")]
    pub kind: u8,
    /// The text.
    pub message: String,
}

/// What the client serves: the server calls these.
#[rpcpeer::api(params = "transparent")]
pub trait LanguageClient {
    /// The settings of each section asked for, in order.
    #[rpc(name = "workspace/configuration")]
    async fn configuration(&self, params: ConfigurationParams) -> Result<Vec<Value>, ErrorObject>;

    /// The server provides more methods from now on.
    #[rpc(name = "client/registerCapability")]
    async fn register_capability(&self, params: RegistrationParams) -> Result<(), ErrorObject>;

    /// A document's diagnostics, all of them.
    #[rpc(name = "textDocument/publishDiagnostics")]
    async fn publish_diagnostics(&self, params: PublishDiagnosticsParams);

    /// A line for the client's log.
    #[rpc(name = "window/logMessage")]
    async fn log_message(&self, params: LogMessageParams);
}

/// What the language server serves: the parts of LSP this test calls.
#[rpcpeer::api(params = "transparent")]
pub trait LanguageServer {
    /// The first request: capabilities both ways.
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, ErrorObject>;

    /// The client has the result of `initialize`.
    async fn initialized(&self, params: InitializedParams);

    /// The client's settings changed (or are told the first time).
    #[rpc(name = "workspace/didChangeConfiguration")]
    async fn did_change_configuration(&self, params: DidChangeConfigurationParams);

    /// The client opened a document: the server owns its text from now on.
    #[rpc(name = "textDocument/didOpen")]
    async fn did_open(&self, params: DidOpenTextDocumentParams);

    /// Stop serving; answers `null`.
    async fn shutdown(&self) -> Result<(), ErrorObject>;

    /// Exit the process: status 0 after `shutdown`, 1 without.
    async fn exit(&self);
}

/// What the server asked or told the client, in the order it came.
enum Heard {
    Configuration(Vec<ConfigurationItem>),
    Registered(Vec<Registration>),
    Diagnostics(PublishDiagnosticsParams),
    Log(LogMessageParams),
}

impl Heard {
    /// The method and what it carried, for a failure's message.
    fn describe(&self) -> String {
        match self {
            Heard::Configuration(items) => {
                let sections: Vec<_> = items.iter().map(|i| &i.section).collect();
                format!("workspace/configuration {sections:?}")
            }
            Heard::Registered(registrations) => {
                let methods: Vec<_> = registrations.iter().map(|r| &r.method).collect();
                format!("client/registerCapability {methods:?}")
            }
            Heard::Diagnostics(d) => {
                let messages: Vec<_> = d.diagnostics.iter().map(|d| &d.message).collect();
                format!("textDocument/publishDiagnostics {} {messages:?}", d.uri)
            }
            Heard::Log(line) => format!("window/logMessage {}: {}", line.kind, line.message),
        }
    }
}

/// The client's side: answers what the server asks and passes each on.
struct Client {
    heard: mpsc::UnboundedSender<Heard>,
    /// The user's settings, by section.
    settings: Value,
}

/// The settings the client has: the formatter on, which makes this server
/// register it with the client.
fn settings() -> Value {
    json!({"json": {"format": {"enable": true}}})
}

impl LanguageClient for Client {
    async fn configuration(&self, params: ConfigurationParams) -> Result<Vec<Value>, ErrorObject> {
        // One answer per item, in order: the section's settings (a dotted
        // name reaches into them), or `null` for the server's defaults.
        let answers = params
            .items
            .iter()
            .map(|item| {
                let section = item.section.as_deref().unwrap_or_default();
                section
                    .split('.')
                    .filter(|key| !key.is_empty())
                    .try_fold(&self.settings, |value, key| value.get(key))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        let _ = self.heard.send(Heard::Configuration(params.items));
        Ok(answers)
    }

    async fn register_capability(&self, params: RegistrationParams) -> Result<(), ErrorObject> {
        let _ = self.heard.send(Heard::Registered(params.registrations));
        Ok(())
    }

    async fn publish_diagnostics(&self, params: PublishDiagnosticsParams) {
        let _ = self.heard.send(Heard::Diagnostics(params));
    }

    async fn log_message(&self, params: LogMessageParams) {
        let _ = self.heard.send(Heard::Log(params));
    }
}

/// The next thing heard that `pick` takes, keeping everything heard in
/// `log` (the failure message shows it).
async fn wait_for<T>(
    what: &str,
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    log: &mut Vec<String>,
    mut pick: impl FnMut(&Heard) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(next) = heard.recv().await {
            log.push(next.describe());
            if let Some(found) = pick(&next) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("{what}: the connection ended first; heard {log:#?}"),
        Err(_) => panic!("{what}: nothing within 10 s; heard {log:#?}"),
    }
}

const URI: &str = "file:///project/broken.json";

#[tokio::test]
async fn a_json_language_server_from_npm_validates_a_document_for_a_typed_client() {
    let program = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/bridge/node_modules/.bin/vscode-json-languageserver"
    );
    assert!(
        Path::new(program).exists(),
        "install the language server first: `npm ci` in tests/bridge (.ci/test does it)"
    );
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--stdio");
    let (transport, mut child) =
        rpcpeer_stream::spawn_child(&mut cmd, Framing::ContentLength).expect("start the server");
    let (tx, mut heard) = mpsc::unbounded_channel();
    let (peer, driver) = Driver::new(
        transport,
        Client {
            heard: tx,
            settings: settings(),
        }
        .into_router(),
    );
    let driver = tokio::spawn(driver);
    let server = LanguageServerClient::new(peer);
    let mut log = Vec::new();

    let init = within(
        "initialize",
        server.initialize(InitializeParams {
            process_id: Some(std::process::id()),
            root_uri: None,
            capabilities: json!({
                "workspace": {
                    "configuration": true,
                    "didChangeConfiguration": {"dynamicRegistration": true},
                },
                "textDocument": {
                    "publishDiagnostics": {"relatedInformation": true},
                    // The server registers its formatter itself, when the
                    // settings turn it on, only for a client that can take
                    // a registration.
                    "rangeFormatting": {"dynamicRegistration": true},
                },
            }),
            // No `provideFormatter`: it would make the formatter static.
            initialization_options: json!({}),
        }),
    )
    .await
    .expect("initialize");
    assert!(
        init.capabilities.is_object(),
        "capabilities: {:?}",
        init.capabilities
    );
    assert_eq!(init.capabilities["hoverProvider"], true);

    within("initialized", server.initialized(InitializedParams {}))
        .await
        .expect("initialized");
    within(
        "didChangeConfiguration",
        server.did_change_configuration(DidChangeConfigurationParams {
            settings: settings(),
        }),
    )
    .await
    .expect("didChangeConfiguration");
    // The server asks us to take its formatter: our typed handler answers
    // `null`, and it carries on.
    let registered = wait_for(
        "client/registerCapability",
        &mut heard,
        &mut log,
        |h| match h {
            Heard::Registered(r) => Some(r.iter().map(|r| r.method.clone()).collect::<Vec<_>>()),
            _ => None,
        },
    )
    .await;
    assert_eq!(registered, ["textDocument/rangeFormatting"]);

    // A second comma where a property should be.
    within(
        "didOpen",
        server.did_open(DidOpenTextDocumentParams {
            text_document: TextDocumentItem {
                uri: URI.into(),
                language_id: "json".into(),
                version: 1,
                text: r#"{"a": 1,, }"#.into(),
            },
        }),
    )
    .await
    .expect("didOpen");
    let diagnostics = wait_for(
        "diagnostics of the broken document",
        &mut heard,
        &mut log,
        |h| match h {
            Heard::Diagnostics(d) if d.uri == URI && !d.diagnostics.is_empty() => Some(
                d.diagnostics
                    .iter()
                    .map(|d| (d.range.start, d.range.end, d.severity, d.message.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        },
    )
    .await;
    // Line 0, from the second comma to just past it.
    let at_second_comma = diagnostics.iter().find(|(start, end, ..)| {
        (start.line, start.character, end.line, end.character) == (0, 8, 0, 9)
    });
    let (.., severity, message) = at_second_comma
        .unwrap_or_else(|| panic!("no diagnostic at the second comma (0:8-0:9): {diagnostics:?}"));
    assert_eq!(*severity, Some(1), "an error: {message}");

    within("shutdown", server.shutdown())
        .await
        .expect("shutdown answers null");
    within("exit", server.exit()).await.expect("exit");
    let status = within("the server to exit", child.wait())
        .await
        .expect("the server's status");
    assert!(status.success(), "the server exited with {status}");
    // Its stdout closed with it: the connection ends, cleanly.
    within("the connection to end", driver)
        .await
        .expect("the driver's task")
        .expect("the connection ends without an error");
}

/// This server never asks `workspace/configuration` (it takes settings from
/// `workspace/didChangeConfiguration`), so our answer is checked here, over
/// a connection in memory, through the generated client.
#[tokio::test]
async fn the_client_answers_workspace_configuration_once_per_item() {
    let (tx, mut heard) = mpsc::unbounded_channel();
    let (_client, server_side) = rpcpeer::testing::connected_pair(
        Client {
            heard: tx,
            settings: settings(),
        }
        .into_router(),
        rpcpeer::Router::new(),
    );
    let client = LanguageClientClient::new(server_side);
    let items = ["json", "json.format", "http"].map(|section| ConfigurationItem {
        scope_uri: Some(URI.into()),
        section: Some(section.into()),
    });
    let answers = within(
        "workspace/configuration",
        client.configuration(ConfigurationParams {
            items: items.into(),
        }),
    )
    .await
    .expect("workspace/configuration");
    assert_eq!(
        answers,
        [
            settings()["json"].clone(),
            json!({"enable": true}),
            Value::Null
        ]
    );
    let asked = wait_for("the question", &mut heard, &mut Vec::new(), |h| match h {
        Heard::Configuration(items) => Some(items.len()),
        _ => None,
    })
    .await;
    assert_eq!(asked, 3);
}
