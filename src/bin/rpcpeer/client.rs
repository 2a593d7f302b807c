//! The client subcommands (call, notify, listen) and what they share: reaching a peer by URL or child process, and reading params from the command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rpcpeer::stream::{connect_tcp, spawn_child};
use rpcpeer::{
    Batch, Config, Context, Driver, Error, ErrorObject, Params, Peer, Router, Unreadable, Version,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::http_client;
use crate::output::{error_line, render, Style};
use crate::process_group::{own_group, Program};
use crate::wire::Wire;
use crate::{CallArgs, ConnectArgs, Failure, ListenArgs};

/// Where a peer is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `tcp://host:port`
    Tcp(String),
    /// `unix:/path`
    Unix(PathBuf),
    /// `ws://…` or `wss://…`, as given.
    Ws(String),
    /// `--exec`: the program and its arguments.
    Exec(Vec<String>),
}

impl Target {
    /// Reads `--exec` or a URL; exactly one of them must be given.
    pub(crate) fn new(url: Option<&str>, exec: Option<&str>) -> Result<Self, Failure> {
        match (url, exec) {
            (Some(url), Some(_)) => Err(Failure::Usage(format!(
                "give a URL or --exec, not both: --exec runs the peer, so `{url}` has nothing to name"
            ))),
            (None, Some(command)) => split_command(command).map(Target::Exec),
            (Some(url), None) => parse_url(url),
            (None, None) => Err(Failure::Usage(
                "no peer given: pass a URL (tcp://host:port, unix:/path, ws://host:port/) or --exec COMMAND".into(),
            )),
        }
    }
}

/// Whether `word` is written as one of the URLs a peer is given by.
fn looks_like_url(word: &str) -> bool {
    ["tcp://", "unix:", "ws://", "wss://", "http://", "https://"]
        .iter()
        .any(|scheme| word.starts_with(scheme))
}

/// Reads a URL into a [`Target`]; anything else is a usage error that lists the forms.
fn parse_url(url: &str) -> Result<Target, Failure> {
    let bad = |why: &str| Failure::Usage(format!("bad URL `{url}`: {why}"));
    if let Some(rest) = url.strip_prefix("tcp://") {
        let addr = rest.trim_end_matches('/');
        return match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Target::Tcp(addr.to_owned()))
            }
            _ => Err(bad("expected tcp://host:port")),
        };
    }
    if let Some(rest) = url.strip_prefix("unix:") {
        // unix:/path, unix:relative, and the URL form unix:///path.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(bad("expected unix:/path/to/socket"));
        }
        return Ok(Target::Unix(PathBuf::from(path)));
    }
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Ok(Target::Ws(url.to_owned()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(bad(
            "an HTTP URL carries one call at a time: `call` and `notify` take it; \
             for a connection use ws://host:port/path",
        ));
    }
    Err(bad(
        "use tcp://host:port, unix:/path, ws://host:port/path or wss://host:port/path \
         (`call` and `notify` also take http://host:port/path and https://…)",
    ))
}

/// Splits `--exec`'s command line into a program and its arguments (see [`split_words`]).
fn split_command(command: &str) -> Result<Vec<String>, Failure> {
    let words = split_words(command)?;
    if words.is_empty() {
        return Err(Failure::Usage("--exec needs a program to run".into()));
    }
    Ok(words)
}

/// Splits a line into words the way a shell would, without running one:
/// whitespace separates words, quotes group them, a backslash escapes the
/// next character (inside double quotes only `"`, `\`, `$` and `` ` ``).
pub(crate) fn split_words(command: &str) -> Result<Vec<String>, Failure> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(unterminated(command)),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(unterminated(command)),
                        },
                        Some(c) => w.push(c),
                        None => return Err(unterminated(command)),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(unterminated(command)),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The error for a line whose quote or backslash is not closed.
fn unterminated(command: &str) -> Failure {
    Failure::Usage(format!("`{command}`: a quote or backslash is not closed"))
}

/// A live connection to a peer: the handle to call it, and what to clean up.
pub(crate) struct Connection {
    /// Calls and notifies the peer.
    pub(crate) peer: Peer,
    /// What the user gave, to name the peer in messages.
    pub(crate) label: String,
    driver: JoinHandle<Result<(), Error>>,
    /// The `--exec` program, killed (with what it started) when dropped.
    program: Option<Program>,
    /// For a connection that sends one message: the peer's last word that
    /// the message will get no answer (see [`Connection::only_message`]).
    refusals: Option<watch::Receiver<Option<Refusal>>>,
}

/// What fails a connection's one message before any answer to it.
#[derive(Clone)]
enum Refusal {
    /// An error the peer sent with a null id: it could not read our message.
    NullId(ErrorObject),
    /// A message of the peer's too large to read (the error we answered it
    /// with): since the one message awaits an answer, taken for it, lost.
    TooLarge(ErrorObject),
}

/// Connects to the peer `args` and `url` name; our side serves `router`
/// (the peer may call us, and pushes notifications to it). `unreadable`
/// shows the user each message of the peer's that cannot be read, given
/// the connection's label and the error it was answered (the log only has
/// it at debug).
pub(crate) async fn connect<S: Send + Sync + 'static>(
    args: &ConnectArgs,
    url: Option<&str>,
    router: Router<S>,
    unreadable: impl Fn(&str, &ErrorObject) + Send + Sync + 'static,
) -> Result<Connection, Failure> {
    open_connection(args, url, router, Some(Box::new(unreadable))).await
}

/// Connects to send a single message, a request or a batch: see
/// [`Connection::only_message`].
async fn connect_for_one(args: &ConnectArgs, url: Option<&str>) -> Result<Connection, Failure> {
    open_connection(args, url, Router::new(), None).await
}

/// How a connection shows the user a message of the peer's that could
/// not be read: given the connection's label and the error it was answered.
type ShowUnreadable = dyn Fn(&str, &ErrorObject) + Send + Sync;

/// What the user is told of a message of the peer's that could not be read.
pub(crate) fn unreadable(err: &ErrorObject) -> String {
    format!(
        "a message that cannot be read, answered {}: {}",
        err.code, err.message
    )
}

/// Says on stderr that a message of the peer's could not be read.
fn say_unreadable(label: &str, err: &ErrorObject) {
    tell!("rpcpeer: {label}: the peer sent {}", unreadable(err));
}

async fn open_connection<S: Send + Sync + 'static>(
    args: &ConnectArgs,
    url: Option<&str>,
    router: Router<S>,
    // `None`: the connection sends one message (see `only_message`).
    show_unreadable: Option<Box<ShowUnreadable>>,
) -> Result<Connection, Failure> {
    let target = Target::new(url, args.exec.as_deref())?;
    if let Some(url) = url {
        args.check_framing_for(url)?;
    }
    let label = match (&target, url) {
        (Target::Exec(words), _) => format!("`{}`", words.join(" ")),
        (_, Some(url)) => url.to_owned(),
        (_, None) => "the peer".to_owned(),
    };
    let opening = open(&target, args);
    let (transport, program) = match args.timeout() {
        Some(limit) => tokio::time::timeout(limit, opening).await.map_err(|_| {
            Failure::Connection(format!(
                "cannot connect to {label}: no answer within {limit:?}"
            ))
        })?,
        None => opening.await,
    }
    .map_err(|err| {
        let failure = format!("cannot connect to {label}: {err}");
        if err.kind() == std::io::ErrorKind::InvalidInput {
            Failure::Usage(failure)
        } else {
            Failure::Connection(failure)
        }
    })?;
    let config = Config::default().request_timeout(args.timeout());
    let mut builder = Driver::builder(transport, router)
        .config(config)
        .close_frames();
    let mut refusals = None;
    if let Some(show) = show_unreadable {
        let label = label.clone();
        builder = builder.on_unreadable(move |_, err| show(&label, err));
    } else {
        // NB: a watch, not a queue: it keeps the last only, so a peer that
        // sends nothing but these cannot grow it.
        let (refused, seen) = watch::channel(None);
        let lost = refused.clone();
        builder = builder.on_null_id_error(move |err| {
            refused.send_replace(Some(Refusal::NullId(err.clone())));
        });
        let (label, warned) = (label.clone(), AtomicBool::new(false));
        builder = builder.on_unreadable(move |why, err| match why {
            // Too large to look at, while the one message waits for its
            // answer: taken for it, lost (the likeliest reading; waiting
            // on would mean waiting out the timeout).
            Unreadable::TooLarge => {
                lost.send_replace(Some(Refusal::TooLarge(err.clone())));
            }
            // The connection closes, and the call fails saying why.
            Unreadable::Fatal => {}
            // NB: only said, once, and the answer still awaited: text that
            // is not JSON may be a program's stray output (a log line on its
            // stdout), and an invalid message a malformed call of the
            // peer's own, with the answer still to come.
            _ => {
                if !warned.swap(true, Ordering::Relaxed) {
                    say_unreadable(&label, err);
                }
            }
        });
        refusals = Some(seen);
    }
    let (peer, driver) = builder.build();
    Ok(Connection {
        peer,
        label,
        driver: tokio::spawn(driver),
        program,
        refusals,
    })
}

/// Opens the transport to `target`, as one type for every kind of peer;
/// with `--exec`, the program too.
pub(crate) async fn open(
    target: &Target,
    args: &ConnectArgs,
) -> std::io::Result<(Wire, Option<Program>)> {
    Ok(match target {
        Target::Tcp(addr) => (
            Wire::Framed(Box::new(connect_tcp(addr.as_str(), args.framing()).await?)),
            None,
        ),
        #[cfg(unix)]
        Target::Unix(path) => (
            Wire::Framed(Box::new(
                rpcpeer::stream::connect_unix(path, args.framing()).await?,
            )),
            None,
        ),
        #[cfg(not(unix))]
        Target::Unix(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "Unix sockets are not available on this system",
            ))
        }
        Target::Ws(url) => (
            Wire::WebSocket(Box::new(
                rpcpeer::ws::connect(url, &rpcpeer::ws::Config::default()).await?,
            )),
            None,
        ),
        Target::Exec(words) => {
            let (program, rest) = words.split_first().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no program to run")
            })?;
            let mut command = tokio::process::Command::new(program);
            let own = own_group(command.args(rest));
            let (transport, child) = spawn_child(&mut command, args.framing()).map_err(|err| {
                std::io::Error::new(err.kind(), format!("cannot run `{program}`: {err}"))
            })?;
            (
                Wire::Framed(Box::new(transport)),
                Some(Program::watch(child, own)),
            )
        }
    })
}

impl Connection {
    /// Closes the connection gracefully (what we sent is flushed first),
    /// then lets a child process exit, or kills it.
    pub(crate) async fn close(mut self) {
        // Bounded: a peer that stops reading could hold the flush forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.peer.close()).await;
        self.driver.abort();
        if let Some(mut program) = self.program.take() {
            if tokio::time::timeout(Duration::from_secs(2), program.ended())
                .await
                .is_err()
            {
                program.kill();
                // Bounded: a program we may not signal (setuid) would
                // otherwise hold the exit until it ends by itself.
                let _ = tokio::time::timeout(Duration::from_secs(2), program.ended()).await;
            }
        }
    }

    /// `call`'s outcome, where `call` is the only message this connection
    /// sent (a request, or one batch): then an error the peer sends with a
    /// null id is about it, and a message of the peer's too large to read
    /// is taken for its answer. Either fails it at once rather than at the
    /// timeout.
    pub(crate) async fn only_message<T>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.refusals.clone() {
            Some(refused) => answer_or_refusal(refused, method, call).await,
            None => call.await,
        }
    }

    /// Why the connection ended, when the driver says: the transport error, if any.
    async fn end_reason(&mut self) -> Option<Error> {
        let ended = tokio::time::timeout(Duration::from_secs(1), &mut self.driver).await;
        match ended {
            Ok(Ok(Err(err))) => Some(err),
            _ => None,
        }
    }

    /// How the `--exec` program ended, if it has (or does within a moment
    /// of its pipe closing).
    async fn child_status(&mut self) -> Option<std::process::ExitStatus> {
        let program = self.program.as_mut()?;
        tokio::time::timeout(Duration::from_millis(500), program.ended())
            .await
            .ok()?
    }

    /// Turns a failed call into what to tell the user, and closes.
    pub(crate) async fn fail(mut self, err: Error) -> Failure {
        let failure = match err {
            Error::Remote { source, .. } => {
                tell!("{}", error_line(&source, Style::stderr()));
                Failure::Remote
            }
            Error::Closed { method, reason, .. } => {
                // The driver's own error too, when the reason lacks it.
                let end = match self.end_reason().await {
                    Some(Error::Transport(err)) if reason.contains(&err.to_string()) => {
                        String::new()
                    }
                    Some(end) if !reason.contains(&end.to_string()) => format!("; {end}"),
                    _ => String::new(),
                };
                // NB: a program that crashed or quit says most by how it
                // ended (a signal, a status), which the pipe cannot tell.
                let end = match self.child_status().await {
                    Some(status) => format!("{end}; the program ended with {status}"),
                    None => end,
                };
                Failure::Connection(format!(
                    // Neutral words: it may be us who closed (a message
                    // over our limit, say); the reason says who.
                    "the connection to {} ended before `{method}` was answered ({reason}{end})",
                    self.label
                ))
            }
            other => Failure::Connection(format!("{}: {other}", self.label)),
        };
        self.close().await;
        failure
    }
}

/// `call`'s outcome, or the refusal that `refused` sees first, as the
/// peer's answer to it (see [`Connection::only_message`]).
async fn answer_or_refusal<T>(
    mut refused: watch::Receiver<Option<Refusal>>,
    method: &str,
    call: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let refusal = |refusal: Refusal| match refusal {
        Refusal::NullId(source) => Error::Remote {
            method: method.to_owned(),
            source,
        },
        Refusal::TooLarge(err) => Error::InvalidReply {
            method: method.to_owned(),
            // Our own answer's "Invalid Request: " would read as a fault of
            // our request.
            what: format!(
                "too large to read ({})",
                err.message
                    .strip_prefix("Invalid Request: ")
                    .unwrap_or(&err.message)
            ),
        },
    };
    tokio::select! {
        // NB: the answer first: a batch's array may hold a null-id error
        // beside answers that did come.
        biased;
        outcome = call => {
            let seen = refused.borrow().clone();
            match (outcome, seen) {
                // A peer that refuses the message and hangs up at once (as
                // over a broken Content-Length frame) can fail the call with
                // the close before this task looks: its refusal says more.
                (Err(Error::Closed { .. }), Some(source)) => Err(refusal(source)),
                (outcome, _) => outcome,
            }
        }
        // `wait_for` fails once the sender (the driver's hook) is dropped
        // with nothing seen: then only the answer is left to wait for.
        Ok(Some(source)) = async {
            refused.wait_for(Option::is_some).await.map(|seen| seen.clone())
        } => Err(refusal(source)),
    }
}

/// Params from the command line, as the JSON text to send (`None`: no params).
///
/// - nothing: no params;
/// - one JSON array or object: sent as it is;
/// - `name=value` words: an object (values are JSON when they parse, else strings);
/// - other values: an array of them (`sleep 100` sends `[100]`), each JSON
///   when it parses, else a string (`postMessage hi` sends `["hi"]`).
pub(crate) fn parse_params(args: &[String]) -> Result<Option<Params>, Failure> {
    match args {
        [] => return Ok(None),
        [one] if one.trim_start().starts_with(['[', '{']) => {
            return Params::from_json(one).map_err(|err| {
                Failure::Usage(format!(
                    "params `{one}`: {err}; give one JSON array or object, JSON values, or name=value pairs"
                ))
            })
        }
        _ => {}
    }
    let pair = name_value;
    let mut text = String::new();
    if args.iter().all(|arg| pair(arg).is_some()) {
        let mut names = std::collections::HashSet::new();
        for arg in args {
            let Some((name, value)) = pair(arg) else {
                continue;
            };
            // NB: caught here: the peer would refuse the object, or keep one
            // of the two values without a word.
            if !names.insert(name) {
                return Err(Failure::Usage(format!(
                    "params name `{name}` twice: give each name once"
                )));
            }
            let value = match serde_json::from_str::<Box<RawValue>>(value) {
                Ok(json) => json.get().to_owned(),
                Err(_) => serde_json::Value::String(value.to_owned()).to_string(),
            };
            text.push(if text.is_empty() { '{' } else { ',' });
            text.push_str(&serde_json::Value::String(name.to_owned()).to_string());
            text.push(':');
            text.push_str(&value);
        }
        text.push('}');
    } else {
        if let Some(arg) = args.iter().find(|arg| pair(arg).is_some()) {
            return Err(Failure::Usage(format!(
                "params mix JSON values and name=value pairs (`{arg}`): use one or the other"
            )));
        }
        for arg in args {
            text.push(if text.is_empty() { '[' } else { ',' });
            // Like a name=value value: JSON when it parses, else a string,
            // so `postMessage hi` works without shell-quoting JSON.
            match serde_json::from_str::<Box<RawValue>>(arg) {
                Ok(json) => text.push_str(json.get()),
                Err(_) => text.push_str(&serde_json::Value::String(arg.clone()).to_string()),
            }
        }
        text.push(']');
    }
    Params::from_json(&text).map_err(|err| Failure::Usage(format!("params: {err}")))
}

/// `name=value` as its two halves; `None` for a word that is not one (a
/// JSON value, which may hold `=` inside a string or object).
fn name_value(arg: &str) -> Option<(&str, &str)> {
    let (name, value) = arg.split_once('=')?;
    let plain_name = !name.is_empty()
        && !name.starts_with(['[', '{', '"'])
        && !name.chars().any(char::is_whitespace);
    plain_name.then_some((name, value))
}

/// The URL, the method and the params words of `call` and `notify`.
fn split_call_args(args: &CallArgs) -> Result<(Option<&str>, &str, &[String]), Failure> {
    let words = args.args.as_slice();
    let (url, rest) = match args.connect.exec {
        // NB: with --exec the first word is the method: a URL there was
        // meant as the peer, which --exec already names.
        Some(_) if words.first().is_some_and(|word| looks_like_url(word)) => {
            return Err(Failure::Usage(format!(
                "give a URL or --exec, not both: with --exec, `{}` would be the method",
                words[0]
            )))
        }
        Some(_) => (None, words),
        None => match words.split_first() {
            Some((url, rest)) => (Some(url.as_str()), rest),
            None => return Err(Failure::Usage("missing the URL of the peer".into())),
        },
    };
    match rest.split_first() {
        Some((method, params)) => Ok((url, method.as_str(), params)),
        None => Err(Failure::Usage("missing the METHOD to call".into())),
    }
}

/// `rpcpeer call`: one request (or a batch), its result on stdout.
pub(crate) async fn call(args: CallArgs) -> Result<(), Failure> {
    if let Some(file) = &args.batch {
        return call_batch(&args, file).await;
    }
    let (url, method, words) = split_call_args(&args)?;
    let params = parse_params(words)?;
    if let Some(url) = url.filter(|url| http_client::is_http(url)) {
        args.connect.check_framing_for(url)?;
        return http_call(url, &args.connect, method, params).await;
    }
    let conn = connect_for_one(&args.connect, url).await?;
    let request = conn.peer.request::<Box<RawValue>>(method, params);
    match conn.only_message(method, request).await {
        Ok(result) => {
            conn.close().await;
            print_stdout(&render(result.get(), Style::stdout()))
        }
        Err(err) => Err(conn.fail(err).await),
    }
}

/// `rpcpeer notify`: one notification, flushed before we hang up.
pub(crate) async fn notify(args: CallArgs) -> Result<(), Failure> {
    let (url, method, words) = split_call_args(&args)?;
    let params = parse_params(words)?;
    if let Some(url) = url.filter(|url| http_client::is_http(url)) {
        args.connect.check_framing_for(url)?;
        return http_notify(url, &args.connect, method, params).await;
    }
    let conn = connect(&args.connect, url, Router::new(), say_unreadable).await?;
    match conn.peer.notify(method, params).await {
        Ok(()) => {
            conn.close().await;
            Ok(())
        }
        Err(err) => Err(conn.fail(err).await),
    }
}

/// One entry of a `--batch` file.
#[derive(Deserialize)]
struct BatchEntry {
    method: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    /// Present (even `null`): a request, answered under this id in the
    /// output; absent: a notification (as in JSON-RPC 2.0).
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
}

/// `Some` whenever `id` is present, even as `null` (which still makes a request).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// `call --batch FILE`: one JSON-RPC batch; each answer on a line of its
/// own, under the id the file gave.
async fn call_batch(args: &CallArgs, file: &str) -> Result<(), Failure> {
    let url =
        match (&args.connect.exec, args.args.as_slice()) {
            (Some(_), []) => None,
            (None, [url]) => Some(url.as_str()),
            _ => return Err(Failure::Usage(
                "with --batch, give only the peer (URL or --exec): the calls come from the file"
                    .into(),
            )),
        };
    // NB: read without blocking the runtime's thread, so that a signal
    // still stops the command while it waits for stdin.
    let text = if file == "-" {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text)
            .await
            .map(|_| text)
    } else {
        tokio::fs::read_to_string(file).await
    }
    .map_err(|err| Failure::Usage(format!("cannot read the batch file {file}: {err}")))?;
    let entries: Vec<BatchEntry> = serde_json::from_str(&text).map_err(|err| {
        // NB: serde reads `{bad` as the start of a map, and would say it
        // expected a sequence: whether it is JSON at all is told first.
        match serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            Err(not_json) => Failure::Usage(format!("{file} is not JSON: {not_json}")),
            Ok(_) => Failure::Usage(format!(
                "{file} is not a JSON array of {{\"method\", \"params\", \"id\"}} objects: {err}"
            )),
        }
    })?;
    if entries.is_empty() {
        return Err(Failure::Usage(format!("{file}: the batch is empty")));
    }
    let mut checked = Vec::with_capacity(entries.len());
    for entry in entries {
        let params = match entry.params.map(Params::from_raw).transpose() {
            Ok(params) => params.flatten(),
            Err(err) => {
                return Err(Failure::Usage(format!(
                    "{file}: the params of `{}`: {err}",
                    entry.method
                )))
            }
        };
        // Spec §4: an id is a string, a number or null. Another would be
        // sent under a number of ours and echoed back as if it were one.
        if let Some(id) = &entry.id {
            let valid = matches!(
                serde_json::from_str::<Value>(id.get()),
                Ok(Value::String(_) | Value::Number(_) | Value::Null)
            );
            if !valid {
                return Err(Failure::Usage(format!(
                    "{file}: the id of `{}` is {}: an id is a string, a number or null",
                    entry.method,
                    id.get()
                )));
            }
        }
        checked.push((entry.method, params, entry.id));
    }
    if let Some(url) = url.filter(|url| http_client::is_http(url)) {
        args.connect.check_framing_for(url)?;
        return http_batch(url, &args.connect, checked).await;
    }
    let mut batch = Batch::new();
    let mut ids = Vec::new();
    for (method, params, id) in checked {
        match id {
            Some(id) => {
                batch.request(&method, params);
                ids.push(id);
            }
            None => {
                batch.notify(&method, params);
            }
        }
    }
    let conn = connect_for_one(&args.connect, url).await?;
    let answers = match conn.only_message("a batch", conn.peer.batch(batch)).await {
        Ok(answers) => answers,
        Err(err) => return Err(conn.fail(err).await),
    };
    let mut outcomes = Vec::with_capacity(ids.len());
    for answer in answers {
        match answer {
            Ok(result) => outcomes.push(Ok(result)),
            Err(Error::Remote { source, .. }) => outcomes.push(Err(source)),
            Err(err) => return Err(conn.fail(err).await),
        }
    }
    conn.close().await;
    print_batch(&ids, outcomes)
}

/// Prints each answer of a batch on a line of its own, under the id the
/// file gave; fails (exit 1) when one of them is an error.
fn print_batch(
    ids: &[Box<RawValue>],
    outcomes: Vec<Result<Box<RawValue>, ErrorObject>>,
) -> Result<(), Failure> {
    let style = Style::stdout();
    let mut failed = false;
    let mut out = String::new();
    for (id, outcome) in ids.iter().zip(outcomes) {
        let body = match outcome {
            Ok(result) => format!(r#"{{"id":{},"result":{}}}"#, id.get(), result.get()),
            Err(source) => {
                failed = true;
                let error = serde_json::to_string(&source).unwrap_or_default();
                format!(r#"{{"id":{},"error":{error}}}"#, id.get())
            }
        };
        out.push_str(&render(&body, style));
        out.push('\n');
    }
    // A batch of notifications only has no answer to print, as over HTTP.
    if !out.is_empty() {
        print_stdout(out.trim_end())?;
    }
    if failed {
        Err(Failure::Remote)
    } else {
        Ok(())
    }
}

/// The JSON-RPC 2.0 text of one call; `id` `None` makes it a notification.
fn request_text(method: &str, params: Option<&Params>, id: Option<u64>) -> String {
    #[derive(serde::Serialize)]
    struct Request<'a> {
        jsonrpc: &'static str,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a Params>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    }
    serde_json::to_string(&Request {
        jsonrpc: "2.0",
        method,
        params,
        id,
    })
    .unwrap_or_default()
}

/// Prints the error object of a JSON-RPC error answer, naming the HTTP
/// status when it was not a success.
fn remote_error(error: &ErrorObject, status: rpcpeer::ws::http::StatusCode) -> Failure {
    let line = error_line(error, Style::stderr());
    if status.is_success() {
        tell!("{line}");
    } else {
        tell!("{line} [HTTP {status}]");
    }
    Failure::Remote
}

/// `call` to an HTTP URL: one POST, its result on stdout.
async fn http_call(
    url: &str,
    args: &ConnectArgs,
    method: &str,
    params: Option<Params>,
) -> Result<(), Failure> {
    let answer = http_client::post(
        url,
        request_text(method, params.as_ref(), Some(1)),
        args.timeout(),
    )
    .await?;
    let Some(response) = http_client::Response::parse(&answer.body) else {
        return Err(answer.unexpected(url, "a JSON-RPC response"));
    };
    if let Some(error) = &response.error {
        return Err(remote_error(error, answer.status));
    }
    if !answer.ok() {
        return Err(answer.unexpected(url, "a JSON-RPC error"));
    }
    if response.id.as_ref().map(|id| id.get()) != Some("1") {
        return Err(Failure::Connection(format!(
            "{url} answered request 1 with the id {}",
            response.id.as_ref().map_or("null", |id| id.get())
        )));
    }
    let result = response.result.unwrap_or_else(|| RawValue::NULL.to_owned());
    print_stdout(&render(result.get(), Style::stdout()))
}

/// `notify` to an HTTP URL: one POST; `204 No Content` or any 2xx without
/// a JSON-RPC error is success.
async fn http_notify(
    url: &str,
    args: &ConnectArgs,
    method: &str,
    params: Option<Params>,
) -> Result<(), Failure> {
    let answer = http_client::post(
        url,
        request_text(method, params.as_ref(), None),
        args.timeout(),
    )
    .await?;
    if answer.body.trim().is_empty() {
        return if answer.ok() {
            Ok(())
        } else {
            Err(answer.unexpected(url, "JSON"))
        };
    }
    match http_client::Response::parse(&answer.body) {
        Some(http_client::Response {
            error: Some(error), ..
        }) => Err(remote_error(&error, answer.status)),
        // Some servers answer a notification with a null result.
        Some(_) if answer.ok() => Ok(()),
        _ => Err(answer.unexpected(url, "a JSON-RPC response")),
    }
}

/// `call --batch` to an HTTP URL: the batch in one POST, with ids of our
/// own (1, 2, …) so that the answers can be matched whatever ids the file
/// gave, even the same one twice.
async fn http_batch(
    url: &str,
    args: &ConnectArgs,
    entries: Vec<(String, Option<Params>, Option<Box<RawValue>>)>,
) -> Result<(), Failure> {
    let mut text = String::from("[");
    let mut ids = Vec::new();
    for (method, params, id) in &entries {
        if text.len() > 1 {
            text.push(',');
        }
        let ours = id.as_ref().map(|_| ids.len() as u64 + 1);
        text.push_str(&request_text(method, params.as_ref(), ours));
        if let Some(id) = id {
            ids.push((id.clone(), method.as_str()));
        }
    }
    text.push(']');
    let answer = http_client::post(url, text, args.timeout()).await?;
    if ids.is_empty() && answer.ok() && answer.body.trim().is_empty() {
        return Ok(());
    }
    let responses: Vec<http_client::Response> =
        match serde_json::from_str::<Vec<Box<RawValue>>>(&answer.body) {
            Ok(items) => items
                .iter()
                .filter_map(|item| http_client::Response::parse(item.get()))
                .collect(),
            // One error for the whole batch (too long, say): nothing ran.
            Err(_) => match http_client::Response::parse(&answer.body) {
                Some(http_client::Response {
                    error: Some(error), ..
                }) => return Err(remote_error(&error, answer.status)),
                _ => return Err(answer.unexpected(url, "a JSON-RPC batch response")),
            },
        };
    if !answer.ok() {
        return Err(answer.unexpected(url, "a JSON-RPC error"));
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    for (n, (_, method)) in ids.iter().enumerate() {
        let ours = (n + 1).to_string();
        let Some(response) = responses
            .iter()
            .find(|r| r.id.as_ref().is_some_and(|id| id.get() == ours))
        else {
            return Err(Failure::Connection(format!(
                "{url} sent no answer to the call of `{method}` (request {ours} of the batch)"
            )));
        };
        outcomes.push(match (&response.error, &response.result) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(result)) => Ok(result.clone()),
            (None, None) => Ok(RawValue::NULL.to_owned()),
        });
    }
    let ids: Vec<Box<RawValue>> = ids.into_iter().map(|(id, _)| id).collect();
    print_batch(&ids, outcomes)
}

/// Writes `text` and a newline to stdout. A reader that went away (`| head`)
/// is not an error worth a message.
fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(Failure::Output(format!("cannot write to stdout: {err}"))),
    }
}

/// A notification in the form it came in: 2.0 with its `"jsonrpc"`
/// member, 1.0 with `"id": null` (and `[]` for absent params, as 1.0 has it).
fn notification_text(version: Version, method: &str, params: Option<&RawValue>) -> String {
    #[derive(serde::Serialize)]
    struct Notification<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        jsonrpc: Option<&'static str>,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<()>,
    }
    let empty = serde_json::value::to_raw_value(&[(); 0]).ok();
    let notification = match version {
        Version::V2 => Notification {
            jsonrpc: Some("2.0"),
            method,
            params,
            id: None,
        },
        Version::V1 => Notification {
            jsonrpc: None,
            method,
            params: params.or(empty.as_deref()),
            id: Some(()),
        },
    };
    serde_json::to_string(&notification).unwrap_or_default()
}

/// `rpcpeer listen`: every notification as one JSON line, until Ctrl-C.
pub(crate) async fn listen(args: ListenArgs) -> Result<(), Failure> {
    let call = match args.call.as_deref() {
        Some([method, words @ ..]) => Some((method.as_str(), parse_params(words)?)),
        _ => None,
    };
    let (lines, mut incoming) = mpsc::unbounded_channel::<String>();
    let mut router = Router::with_state(lines);
    // Notifications of unknown methods run in arrival order, so the lines
    // come out in the order the peer sent them.
    router.fallback(
        |params: Option<Box<RawValue>>, cx: Context<mpsc::UnboundedSender<String>>| async move {
            if cx.id().is_some() {
                // Only listening: a request gets the standard answer.
                return Err(ErrorObject::method_not_found(cx.method()));
            }
            let wire = notification_text(cx.version(), cx.method(), params.as_deref());
            let _ = cx.state().send(render(&wire, Style::line()));
            Ok(RawValue::NULL.to_owned())
        },
    );
    let mut signals = crate::StopSignals::watch();
    let setup = async {
        let conn = connect(&args.connect, args.url.as_deref(), router, say_unreadable).await?;
        // NB: stderr, so stdout holds only notifications; the line also
        // tells whoever drives us (a person, a test) that the call is done.
        match call {
            Some((method, params)) => {
                match conn.peer.request::<Box<RawValue>>(method, params).await {
                    Ok(result) => tell!(
                        "rpcpeer: `{method}` answered {}; listening to {} (Ctrl-C to stop)",
                        render(result.get(), Style::line()),
                        conn.label
                    ),
                    Err(err) => return Err(conn.fail(err).await),
                }
            }
            None => tell!("rpcpeer: listening to {} (Ctrl-C to stop)", conn.label),
        }
        Ok(conn)
    };
    // The signals are caught from the start (see `StopSignals`), so a
    // Ctrl-C while connecting or calling must end this too.
    let mut conn = tokio::select! {
        conn = setup => conn?,
        stop = signals.recv() => return Err(Failure::Stopped(stop)),
    };
    let interrupted = signals.recv();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            // NB: lines first, so the ones that arrived before a hang-up or
            // a Ctrl-C are all printed.
            biased;
            line = incoming.recv() => match line {
                Some(line) => {
                    let mut stdout = std::io::stdout().lock();
                    if let Err(err) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                        conn.close().await;
                        // Whoever read our output is gone: nothing left to
                        // do. Any other error is a failure to say so.
                        return match err.kind() {
                            std::io::ErrorKind::BrokenPipe => Ok(()),
                            _ => Err(Failure::Output(format!("cannot write to stdout: {err}"))),
                        };
                    }
                }
                None => break,
            },
            () = conn.peer.closed() => break,
            _ = &mut interrupted => {
                conn.close().await;
                return Ok(());
            }
        }
    }
    // The peer hung up; print what it sent before it did.
    while let Ok(line) = incoming.try_recv() {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
    let label = conn.label.clone();
    let why = match (conn.peer.peer_close_frame(), conn.child_status().await) {
        (Some(frame), _) => format!(" ({frame})"),
        (None, Some(status)) => format!(" and ended with {status}"),
        (None, None) => String::new(),
    };
    conn.close().await;
    Err(Failure::Connection(format!(
        "{label} closed the connection{why}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(words: &[&str]) -> Result<Option<String>, Failure> {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        parse_params(&words).map(|p| p.map(|params| params.get().to_owned()))
    }

    #[test]
    fn params_from_the_command_line() {
        assert_eq!(params(&[]).ok(), Some(None));
        assert_eq!(
            params(&["[42, 23]"]).ok().flatten().as_deref(),
            Some("[42, 23]")
        );
        assert_eq!(
            params(&["minuend=42", "subtrahend=x"])
                .ok()
                .flatten()
                .as_deref(),
            Some(r#"{"minuend":42,"subtrahend":"x"}"#)
        );
        assert_eq!(params(&["100"]).ok().flatten().as_deref(), Some("[100]"));
        assert_eq!(
            params(&["1", "\"a=b\"", "-2.5"]).ok().flatten().as_deref(),
            Some(r#"[1,"a=b",-2.5]"#)
        );
        assert!(matches!(params(&["[1,"]), Err(Failure::Usage(_))));
        assert_eq!(
            params(&["hello", "2"]).ok().flatten().as_deref(),
            Some(r#"["hello",2]"#)
        );
        assert!(matches!(params(&["1", "a=2"]), Err(Failure::Usage(_))));
        match params(&["a=1", "b=2", "a=3"]) {
            Err(Failure::Usage(said)) => assert!(said.contains("`a` twice"), "{said}"),
            other => panic!("a name given twice: {:?}", other.ok()),
        }
    }

    #[tokio::test]
    async fn a_refusal_outranks_the_close_it_came_with() {
        let (tx, refused) = watch::channel(None);
        tx.send_replace(Some(Refusal::NullId(ErrorObject::new(
            -32700,
            "Parse error",
        ))));
        let closed = Error::Closed {
            method: "echo".into(),
            reason: "the peer closed the connection".into(),
            peer_close: None,
        };
        let outcome = answer_or_refusal(refused.clone(), "echo", async { Err::<(), _>(closed) });
        match outcome.await {
            Err(Error::Remote { method, source }) => {
                assert_eq!((method.as_str(), source.code), ("echo", -32700));
            }
            other => panic!("the refusal, not {other:?}"),
        }
        // An answer that came stands, refusal or not.
        let answered = answer_or_refusal(refused, "echo", async { Ok::<_, Error>(7) });
        assert_eq!(answered.await.ok(), Some(7));
        // Nothing refused and the driver gone: the answer is awaited.
        let (tx, refused) = watch::channel::<Option<Refusal>>(None);
        drop(tx);
        let late = async {
            tokio::task::yield_now().await;
            Ok::<_, Error>(8)
        };
        assert_eq!(answer_or_refusal(refused, "echo", late).await.ok(), Some(8));
    }

    #[tokio::test]
    async fn a_message_too_large_to_read_is_the_lost_answer() {
        let err = ErrorObject::invalid_request("message exceeds the limit of 1024 bytes");
        let (_tx, refused) = watch::channel(Some(Refusal::TooLarge(err)));
        let never = std::future::pending::<Result<(), Error>>();
        match answer_or_refusal(refused, "echo", never).await {
            Err(Error::InvalidReply { method, what }) => {
                assert_eq!(method, "echo");
                assert_eq!(
                    what,
                    "too large to read (message exceeds the limit of 1024 bytes)"
                );
            }
            other => panic!("the lost answer, not {other:?}"),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("tcp://127.0.0.1:7070").ok(),
            Some(Target::Tcp("127.0.0.1:7070".into()))
        );
        assert_eq!(
            parse_url("unix:/run/app.sock").ok(),
            Some(Target::Unix("/run/app.sock".into()))
        );
        assert_eq!(
            parse_url("unix:///run/app.sock").ok(),
            Some(Target::Unix("/run/app.sock".into()))
        );
        assert!(parse_url("tcp://nowhere").is_err());
        assert!(parse_url("http://x/").is_err());
        assert!(parse_url("ws://127.0.0.1:1/").is_ok());
    }

    #[test]
    fn exec_commands_split_like_a_shell() {
        let split = |c: &str| split_command(c).ok();
        assert_eq!(
            split(r#"prog -x 'a b' "c \"d\"" e\ f"#),
            Some(vec![
                "prog".into(),
                "-x".into(),
                "a b".into(),
                "c \"d\"".into(),
                "e f".into()
            ])
        );
        assert_eq!(split("   "), None);
        assert_eq!(split("prog 'open"), None);
    }
}
