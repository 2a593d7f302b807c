//! `rpcpeer shell`: an interactive console to a peer, with history, completion from its introspection, pushed notifications and answers to its requests.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rpcpeer::{Context as CallContext, Error, ErrorObject, Outcome, Params, Peer, Router};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Editor, ExternalPrinter, Helper};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::client::{connect, parse_params, unreadable};
use crate::output::{error_line, render, Style};
use crate::{Failure, ShellArgs};

/// What `:help` prints.
const HELP: &str = "\
  METHOD [PARAMS]          call METHOD; PARAMS as in `rpcpeer call`: a JSON array or
                           object, JSON values, or name=value pairs
  :notify METHOD [PARAMS]  send a notification
  :reply N JSON            answer the peer's request #N with a result
  :error N CODE MESSAGE    answer the peer's request #N with an error
  :pending                 list the peer's requests waiting for an answer
  :methods                 list the peer's methods (from rpc.discover or system.describe)
  :help                    this text
  :quit                    leave (or Ctrl-D)
Tab completes method names and their param names. Lines starting with <- come from the peer.";

/// The peer's requests that wait for the user: `#N` to the way to answer it.
#[derive(Default)]
struct Waiting {
    next: AtomicU64,
    requests: Mutex<BTreeMap<u64, (String, oneshot::Sender<Outcome>)>>,
}

impl Waiting {
    /// Runs `f` on the waiting requests, under their lock.
    fn with<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<u64, (String, oneshot::Sender<Outcome>)>) -> R,
    ) -> R {
        // Each use is one map call: a panic elsewhere cannot leave it half-changed.
        f(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What the router's handlers share with the console.
struct Shared {
    /// Lines to show above the prompt.
    notes: mpsc::UnboundedSender<String>,
    waiting: Waiting,
    /// Rung when a request of the peer starts to wait for the user, so
    /// that piped input waiting on a call of its own reads on for the
    /// `:reply` (see [`wait`]).
    asked: Notify,
    /// Commands that failed, for a piped shell's exit status.
    failed: AtomicU64,
    /// Set when a call or notification failed because the connection was
    /// ending: the peer hung up (or the link broke), though its driver may
    /// still be draining, so a piped shell exits as a lost connection.
    lost: Arc<AtomicBool>,
}

/// What a command says; `Err` when it failed.
type Said = Result<String, String>;

/// One method the peer says it has, for completion and `:methods`.
#[derive(Debug, Clone, PartialEq)]
struct MethodDoc {
    name: String,
    params: Vec<String>,
    signature: String,
}

/// Runs the console until `:quit`, Ctrl-D or the end of its input.
pub(crate) async fn run(args: ShellArgs) -> Result<(), Failure> {
    let (notes, notes_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        notes,
        waiting: Waiting::default(),
        asked: Notify::new(),
        failed: AtomicU64::new(0),
        lost: Arc::default(),
    });
    let mut router = Router::with_state(shared.clone());
    router.fallback(incoming);
    // Above the prompt, with the peer's other messages.
    let show_unreadable = {
        let notes = shared.notes.clone();
        move |_: &str, err: &ErrorObject| {
            let _ = notes.send(format!("<- {}", unreadable(err)));
        }
    };
    // NB: SIGTERM ends the shell with its connection, which ends an
    // `--exec` program and what it started; a console blocked in its read
    // is left to the runtime's shutdown.
    let mut signals = crate::StopSignals::watch_terminate();
    let conn = tokio::select! {
        conn = connect(&args.connect, args.url.as_deref(), router, show_unreadable) => conn?,
        stop = signals.recv() => return Err(Failure::Stopped(stop)),
    };
    let methods = introspect(&conn.peer).await;
    let intro = match &methods {
        Some(methods) => format!(
            "connected to {}: {} methods (:methods lists them, :help for commands)",
            conn.label,
            methods.len()
        ),
        None => format!(
            "connected to {} (it answers neither rpc.discover nor system.describe; :help for commands)",
            conn.label
        ),
    };
    let peer = conn.peer.clone();
    // Say so the moment the peer goes away, not when the next line is typed.
    let watcher = tokio::spawn({
        let (peer, shared) = (peer.clone(), shared.clone());
        async move {
            peer.closed().await;
            let _ = shared
                .notes
                .send("-- the peer closed the connection (Ctrl-D to leave)".to_owned());
        }
    });
    let handle = Handle::current();
    // NB: rustyline reads the terminal with blocking calls, so the console
    // runs on a blocking thread and enters the runtime for each command.
    let console = tokio::task::spawn_blocking({
        let shared = shared.clone();
        move || {
            let mut printer = None;
            let result = console(
                handle,
                &peer,
                &shared,
                methods.unwrap_or_default(),
                notes_rx,
                &intro,
                &mut printer,
            );
            (result, printer)
        }
    });
    let (result, printer) = tokio::select! {
        ended = console => {
            ended.map_err(|err| Failure::Usage(format!("the console failed: {err}")))?
        }
        stop = signals.recv() => return Err(Failure::Stopped(stop)),
    };
    // Our own close is no news to the user.
    watcher.abort();
    conn.close().await;
    // NB: what the peer sent before we closed is shown before we exit: the
    // printer ends once every sender of its lines is gone (ours here, the
    // router's and the driver's hooks with the driver's task).
    drop(shared);
    if let Some(printer) = printer {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !printer.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    result
}

/// Handles every call from the peer: notifications are shown, requests
/// wait for the user's `:reply` or `:error`.
async fn incoming(params: Option<Box<RawValue>>, cx: CallContext<Arc<Shared>>) -> Outcome {
    let shared = cx.state();
    let params = params.map_or_else(String::new, |p| {
        format!(" {}", render(p.get(), Style::line()))
    });
    if cx.id().is_none() {
        let _ = shared.notes.send(format!("<- {}{params}", cx.method()));
        return Ok(RawValue::NULL.to_owned());
    }
    let n = shared.waiting.next.fetch_add(1, Ordering::Relaxed) + 1;
    let (answer, answered) = oneshot::channel();
    shared
        .waiting
        .with(|w| w.insert(n, (cx.method().to_owned(), answer)));
    let _ = shared.notes.send(format!(
        "<- request #{n}: {}{params}  (answer with :reply {n} JSON or :error {n} CODE MESSAGE)",
        cx.method()
    ));
    shared.asked.notify_one();
    tokio::select! {
        outcome = answered => outcome.unwrap_or_else(|_| {
            Err(ErrorObject::new(ErrorObject::INTERNAL_ERROR, "the shell closed without answering"))
        }),
        () = cx.cancelled() => {
            shared.waiting.with(|w| w.remove(&n));
            let _ = shared.notes.send(format!("<- request #{n} was cancelled by the peer"));
            Err(ErrorObject::request_cancelled())
        }
    }
}

/// The peer's methods from `rpc.discover`, else `system.describe`, else `None`.
async fn introspect(peer: &Peer) -> Option<Vec<MethodDoc>> {
    let ask = |method: &'static str| async move {
        let reply =
            tokio::time::timeout(Duration::from_secs(5), peer.request::<Value>(method, ())).await;
        reply.ok()?.ok()
    };
    // NB: both at once: a peer that answers neither would otherwise hold
    // the first prompt for both waits.
    let (discovered, described) = tokio::join!(ask("rpc.discover"), ask("system.describe"));
    if let Some(methods) = discovered.as_ref().and_then(from_openrpc) {
        return Some(methods);
    }
    from_description(&described?)
}

/// The methods of an OpenRPC document; `None` when it is not one.
fn from_openrpc(doc: &Value) -> Option<Vec<MethodDoc>> {
    let methods = doc.get("methods")?.as_array()?;
    Some(
        methods
            .iter()
            .filter_map(|m| {
                let name = m.get("name")?.as_str()?.to_owned();
                let params: Vec<String> = m
                    .get("params")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| p.get("name")?.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let signature = format!("{name}({})", params.join(", "));
                Some(MethodDoc {
                    name,
                    params,
                    signature,
                })
            })
            .collect(),
    )
}

/// The procedures of a JSON-RPC 1.1 service description; `None` when it is not one.
fn from_description(doc: &Value) -> Option<Vec<MethodDoc>> {
    let procs = doc.get("procs")?.as_array()?;
    Some(
        procs
            .iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?.to_owned();
                let params: Vec<(String, String)> = p
                    .get("params")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| {
                                let name = p.get("name")?.as_str()?.to_owned();
                                let kind = p.get("type").and_then(Value::as_str).unwrap_or("any");
                                Some((name, kind.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let returns = p
                    .pointer("/return/type")
                    .and_then(Value::as_str)
                    .unwrap_or("any");
                let list: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                let signature = format!("{name}({}) -> {returns}", list.join(", "));
                Some(MethodDoc {
                    name,
                    params: params.into_iter().map(|(n, _)| n).collect(),
                    signature,
                })
            })
            .collect(),
    )
}

/// Where lines for the user go: above the prompt on a terminal, plain
/// stdout otherwise.
fn start_printer<H: Helper>(
    editor: &mut Editor<H, rustyline::history::DefaultHistory>,
    mut notes: mpsc::UnboundedReceiver<String>,
    color: bool,
    interactive: bool,
) -> Option<std::thread::JoinHandle<()>> {
    let paint = move |line: String| {
        if color && line.starts_with("<-") {
            format!("\x1b[35m{line}\x1b[0m")
        } else {
            line
        }
    };
    let printer = if interactive {
        editor.create_external_printer().ok()
    } else {
        None
    };
    // A thread, not a task: the printer blocks, and it must go on while the
    // console thread waits in `readline`.
    let spawned = std::thread::Builder::new()
        .name("shell-printer".into())
        .spawn(move || match printer {
            Some(mut printer) => {
                while let Some(line) = notes.blocking_recv() {
                    if printer.print(paint(line)).is_err() {
                        break;
                    }
                }
            }
            None => {
                while let Some(line) = notes.blocking_recv() {
                    say(&paint(line));
                }
            }
        });
    spawned
        .inspect_err(|err| tracing::warn!("cannot show the peer's messages: {err}"))
        .ok()
}

/// The read-eval-print loop, on a blocking thread.
fn console(
    handle: Handle,
    peer: &Peer,
    shared: &Shared,
    methods: Vec<MethodDoc>,
    notes: mpsc::UnboundedReceiver<String>,
    intro: &str,
    printer: &mut Option<std::thread::JoinHandle<()>>,
) -> Result<(), Failure> {
    let style = Style::stdout();
    let mut editor = Editor::with_config(
        rustyline::Config::builder()
            .auto_add_history(true)
            // Like bash: complete the common prefix, list the choices.
            .completion_type(rustyline::CompletionType::List)
            .max_history_size(1000)
            .map_err(|err| Failure::Usage(format!("the console failed: {err}")))?
            .build(),
    )
    .map_err(|err| Failure::Usage(format!("cannot open the terminal: {err}")))?;
    editor.set_helper(Some(Completion {
        methods: methods.clone(),
    }));
    let history =
        std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".rpcpeer_history"));
    if let Some(path) = &history {
        // No history yet is the normal first run.
        let _ = editor.load_history(path);
    }
    let interactive = std::io::stdin().is_terminal();
    *printer = start_printer(&mut editor, notes, style.color, interactive);
    if interactive {
        // NB: a stdout that cannot be written is no reason to panic.
        let _ = writeln!(std::io::stdout(), "{intro}");
    }
    // Piped lines read while a call of ours waited, to run after it.
    let mut ahead = std::collections::VecDeque::new();
    let outcome = loop {
        let line = match ahead
            .pop_front()
            .map_or_else(|| editor.readline("rpcpeer> "), Ok)
        {
            Ok(line) => line,
            // Ctrl-C clears the line, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break Ok(()),
            // NB: the bad line is consumed; the lines after it still run.
            Err(ReadlineError::Io(err))
                if !interactive && err.kind() == std::io::ErrorKind::InvalidData =>
            {
                report(
                    shared,
                    Err("a line of the input is not UTF-8: skipped".to_owned()),
                );
                continue;
            }
            Err(err) if interactive => {
                break Err(Failure::Usage(format!("cannot read the terminal: {err}")))
            }
            Err(err) => break Err(Failure::Usage(format!("cannot read the input: {err}"))),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if peer.is_closed() {
            break Err(Failure::Connection("the peer closed the connection".into()));
        }
        match handle.block_on(command(line, peer, shared, &methods, style, interactive)) {
            Step::Continue => {}
            Step::Quit => break Ok(()),
            Step::Wait(call) => {
                let said = wait(&handle, call, shared, &mut ahead, || {
                    editor.readline("rpcpeer> ").ok()
                });
                report(shared, said);
            }
        }
    };
    // The peer's requests still waiting for a `:reply` are answered with an
    // error now (their handlers see the senders dropped), so that closing
    // does not wait for them until the drain timeout.
    drop(shared.waiting.with(std::mem::take));
    if let Some(path) = &history {
        if let Err(err) = editor.save_history(path) {
            tracing::debug!("cannot save the history to {}: {err}", path.display());
        }
    }
    // NB: piped input is a script, whose caller learns from the status
    // whether it all went through; at a terminal the user saw each answer.
    let failed = shared.failed.load(Ordering::Relaxed);
    match outcome {
        // The peer hung up on a command (the last one, or the next line
        // would have said so): the connection failed, as for `call`.
        Ok(())
            if failed > 0
                && !interactive
                && (peer.is_closed() || shared.lost.load(Ordering::Relaxed)) =>
        {
            Err(Failure::Connection("the peer closed the connection".into()))
        }
        Ok(()) if failed > 0 && !interactive => Err(Failure::Check(format!(
            "{failed} command{} of the input failed",
            if failed == 1 { "" } else { "s" }
        ))),
        outcome => outcome,
    }
}

/// Whether the console goes on after a command.
enum Step {
    Continue,
    Quit,
    /// A call made from piped input, whose answer is printed before the
    /// next line runs: what it will say.
    Wait(JoinHandle<Said>),
}

/// Waits for `call`'s answer. A request of the peer may come first and wait
/// for a `:reply` that only the input can give (`callback` makes one), so
/// the input is read on then: `:reply`, `:error` and `:pending` lines run at
/// once, any other line waits in `ahead`, in order, for the answer. Once
/// the input has ended (or says `:quit`), the peer's waiting requests are
/// answered with an error.
fn wait(
    handle: &Handle,
    mut call: JoinHandle<Said>,
    shared: &Shared,
    ahead: &mut std::collections::VecDeque<String>,
    mut read: impl FnMut() -> Option<String>,
) -> Said {
    let mut input_left = true;
    loop {
        let asked = handle.block_on(async {
            tokio::select! {
                said = &mut call => Some(said.unwrap_or_else(|err| Err(format!("the call failed: {err}")))),
                // NB: a permit is kept when none waits, so a request that
                // came before this select is not missed.
                () = shared.asked.notified() => None,
                // Dropping the call tells the peer with $/cancelRequest.
                () = crate::ctrl_c() => {
                    call.abort();
                    Some(Err("cancelled".to_owned()))
                }
            }
        });
        if let Some(said) = asked {
            return said;
        }
        // Read while any request of the peer still waits for its answer.
        while input_left && shared.waiting.with(|w| !w.is_empty()) {
            let Some(line) = read() else {
                input_left = false;
                break;
            };
            let (word, rest) = split_word(&line);
            let said = match word {
                ":reply" | ":error" => answer(word == ":reply", rest, shared),
                ":pending" => Ok(pending(shared)),
                // Nothing after it is read: it runs once the call is over.
                word if is_quit(word) => {
                    ahead.push_back(line);
                    input_left = false;
                    break;
                }
                _ => {
                    ahead.push_back(line);
                    continue;
                }
            };
            report(shared, said);
        }
        if !input_left {
            // No answer can come from the input any more: the peer hears so
            // now, rather than at its timeout, and our call can end.
            let left = shared.waiting.with(std::mem::take);
            for (_, (_, sender)) in left {
                let _ = sender.send(Err(ErrorObject::new(
                    ErrorObject::INTERNAL_ERROR,
                    "the shell's input ended without an answer",
                )));
            }
        }
    }
}

/// Runs one console line and prints what came of it.
///
/// With `background`, a call does not wait for its answer (see below);
/// without, it does, so piped input gives its answers in order.
async fn command(
    line: &str,
    peer: &Peer,
    shared: &Shared,
    methods: &[MethodDoc],
    style: Style,
    background: bool,
) -> Step {
    let (word, rest) = split_word(line);
    let said = match word {
        word if is_quit(word) => return Step::Quit,
        ":help" | ":h" | "?" => Ok(HELP.to_owned()),
        ":methods" => Ok(if methods.is_empty() {
            "the peer did not describe its methods".to_owned()
        } else {
            methods
                .iter()
                .map(|m| m.signature.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        }),
        ":pending" => Ok(pending(shared)),
        ":reply" | ":error" => answer(word == ":reply", rest, shared),
        ":notify" => {
            let (method, params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if method.is_empty() {
                Err(":notify needs a METHOD".to_owned())
            } else {
                match params_of(params.trim()) {
                    Err(msg) => Err(msg),
                    Ok(params) => match peer.notify(method, params).await {
                        Ok(()) => Ok("sent".to_owned()),
                        Err(err) => Err(failed_by(&err, &shared.lost)),
                    },
                }
            }
        }
        _ if word.starts_with(':') => Err(format!("unknown command {word} (:help lists them)")),
        method => match params_of(rest) {
            Err(msg) => Err(msg),
            Ok(params) if background => {
                // NB: the call runs on its own, and its answer is shown
                // above the prompt when it comes, so the user can go on
                // typing; `callback` needs that, since the peer's request
                // it triggers waits for a `:reply`.
                let (peer, notes, method) = (peer.clone(), shared.notes.clone(), method.to_owned());
                let lost = shared.lost.clone();
                tokio::spawn(async move {
                    let (Ok(said) | Err(said)) = call(&peer, &method, params, style, &lost).await;
                    let _ = notes.send(format!("{method} → {said}"));
                });
                return Step::Continue;
            }
            Ok(params) => {
                let (peer, method) = (peer.clone(), method.to_owned());
                let lost = shared.lost.clone();
                return Step::Wait(tokio::spawn(async move {
                    call(&peer, &method, params, style, &lost).await
                }));
            }
        },
    };
    report(shared, said);
    Step::Continue
}

/// A console line's command word and the rest, both trimmed.
fn split_word(line: &str) -> (&str, &str) {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    (word, rest.trim())
}

/// Whether `word` ends the console.
fn is_quit(word: &str) -> bool {
    matches!(word, ":quit" | ":q" | ":exit")
}

/// Prints what a command said, and counts it if it failed.
fn report(shared: &Shared, said: Said) {
    let (Ok(line) | Err(line)) = &said;
    if said.is_err() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    say(line);
}

/// Prints one line on stdout; a stdout that is gone costs the line, not
/// the console.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Calls `method` and says what came of it.
async fn call(
    peer: &Peer,
    method: &str,
    params: Option<Params>,
    style: Style,
    lost: &AtomicBool,
) -> Said {
    match peer.request::<Box<RawValue>>(method, params).await {
        Ok(result) => Ok(render(result.get(), style)),
        Err(Error::Remote { source, .. }) => Err(error_line(&source, style)),
        Err(err) => Err(failed_by(&err, lost)),
    }
}

/// What a call or notification that failed on our side says, noting in
/// `lost` when the connection's end failed it.
fn failed_by(err: &Error, lost: &AtomicBool) -> String {
    if matches!(err, Error::Closed { .. }) {
        lost.store(true, Ordering::Relaxed);
    }
    err.to_string()
}

/// Params typed after a method: JSON as it is when it starts like JSON,
/// else words split as a shell would and read as by `rpcpeer call`.
fn params_of(text: &str) -> Result<Option<Params>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with(['[', '{']) {
        return Params::from_json(text).map_err(|err| err.to_string());
    }
    let words = crate::client::split_words(text).map_err(|f| f.to_string())?;
    parse_params(&words).map_err(|f| f.to_string())
}

/// `:pending`: the peer's requests that wait for the user.
fn pending(shared: &Shared) -> String {
    let waiting: Vec<String> = shared.waiting.with(|w| {
        w.iter()
            .map(|(n, (method, _))| format!("#{n} {method}"))
            .collect()
    });
    if waiting.is_empty() {
        "no request of the peer waits for an answer".to_owned()
    } else {
        waiting.join("\n")
    }
}

/// `:reply N JSON` or `:error N CODE MESSAGE`.
fn answer(ok: bool, rest: &str, shared: &Shared) -> Said {
    let (n, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let Ok(n) = n.trim_start_matches('#').parse::<u64>() else {
        return Err("which request? give its number, as in :reply 1 true".to_owned());
    };
    let outcome = if ok {
        match serde_json::from_str::<Box<RawValue>>(body.trim()) {
            Ok(result) => Ok(result),
            Err(err) => return Err(format!("the result is not JSON: {err}")),
        }
    } else {
        let (code, message) = body
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((body.trim(), ""));
        match code.parse::<i64>() {
            Ok(code) => Err(ErrorObject::new(code, message.trim())),
            Err(_) => return Err("the error needs an integer CODE, then a MESSAGE".to_owned()),
        }
    };
    match shared.waiting.with(|w| w.remove(&n)) {
        Some((method, sender)) => match sender.send(outcome) {
            Ok(()) => Ok(format!("answered #{n} ({method})")),
            Err(_) => Err(format!("#{n} ({method}) is gone: the connection closed")),
        },
        None => Err(format!(
            "no request #{n} waits for an answer (:pending lists them)"
        )),
    }
}

/// Tab completion: method names (and commands) first, then `name=` for
/// the method's params not given yet.
struct Completion {
    methods: Vec<MethodDoc>,
}

/// The console's own commands, offered with the method names.
const COMMANDS: [&str; 7] = [
    ":notify", ":reply", ":error", ":pending", ":methods", ":help", ":quit",
];

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let prefix = before.get(start..).unwrap_or_default();
        let pair = |text: String| Pair {
            display: text.clone(),
            replacement: text,
        };
        // Which word is being completed, and the method whose params follow.
        let done: Vec<&str> = before
            .get(..start)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let method_names = || -> Vec<Pair> {
            self.methods
                .iter()
                .map(|m| m.name.as_str())
                .filter(|name| name.starts_with(prefix))
                .map(|name| pair(format!("{name} ")))
                .collect()
        };
        let method = match done.as_slice() {
            [] => {
                let mut all = method_names();
                all.extend(
                    COMMANDS
                        .iter()
                        .filter(|c| c.starts_with(prefix))
                        .map(|c| pair(format!("{c} "))),
                );
                return Ok((start, all));
            }
            // After `:notify`, the method is the second word.
            [":notify"] => return Ok((start, method_names())),
            [":notify", method, ..] => *method,
            [method, ..] => *method,
        };
        let Some(doc) = self.methods.iter().find(|m| m.name == method) else {
            return Ok((start, Vec::new()));
        };
        let given: Vec<&str> = before
            .split_whitespace()
            .filter_map(|w| w.split_once('=').map(|(n, _)| n))
            .collect();
        let candidates = doc
            .params
            .iter()
            .filter(|p| p.starts_with(prefix) && !given.contains(&p.as_str()))
            .map(|p| pair(format!("{p}=")))
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;

    /// After `method ` with nothing typed yet, shows the method's params.
    fn hint(&self, line: &str, pos: usize, _ctx: &rustyline::Context<'_>) -> Option<String> {
        let method = line.strip_suffix(' ')?;
        if pos != line.len() || method.contains(char::is_whitespace) {
            return None;
        }
        let doc = self.methods.iter().find(|m| m.name == method)?;
        let hint: Vec<String> = doc.params.iter().map(|p| format!("{p}=")).collect();
        (!hint.is_empty()).then(|| hint.join(" "))
    }
}

impl Highlighter for Completion {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
}

impl Validator for Completion {}

impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completion() -> Completion {
        let doc = json!({"methods": [
            {"name": "subtract", "params": [{"name": "minuend"}, {"name": "subtrahend"}]},
            {"name": "sum", "params": [{"name": "n"}]},
        ]});
        Completion {
            methods: from_openrpc(&doc).unwrap_or_default(),
        }
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        let history = rustyline::history::DefaultHistory::new();
        let ctx = rustyline::Context::new(&history);
        let (start, pairs) = completion()
            .complete(line, line.len(), &ctx)
            .unwrap_or_default();
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn completes_method_names_then_param_names() {
        assert_eq!(complete("su"), (0, vec!["subtract ".into(), "sum ".into()]));
        assert_eq!(
            complete("subtract "),
            (9, vec!["minuend=".into(), "subtrahend=".into()])
        );
        assert_eq!(
            complete("subtract minuend=1 s"),
            (19, vec!["subtrahend=".into()])
        );
        assert_eq!(complete(":no"), (0, vec![":notify ".into()]));
        assert_eq!(
            complete(":notify s"),
            (8, vec!["subtract ".into(), "sum ".into()])
        );
    }

    #[test]
    fn describes_from_either_document() {
        let description = json!({"procs": [
            {"name": "subtract", "params": [{"name": "minuend", "type": "num"}, {"name": "subtrahend", "type": "num"}], "return": {"type": "num"}}
        ]});
        let methods = from_description(&description).unwrap_or_default();
        assert_eq!(
            methods[0].signature,
            "subtract(minuend: num, subtrahend: num) -> num"
        );
        assert_eq!(methods[0].params, ["minuend", "subtrahend"]);
    }
}
