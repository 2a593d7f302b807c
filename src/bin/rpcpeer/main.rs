//! The `rpcpeer` command: serve the demo peer, or call, notify, listen to and explore any JSON-RPC peer.

// No unwrap on anything a peer or a user sends: it is answered or reported, not panicked on.
#![warn(clippy::unwrap_used)]

/// `eprintln!` that does not panic when stderr cannot be written (closed,
/// or a full disk): the exit status still says how the command went.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod bridge;
mod client;
mod demo;
mod http_client;
mod output;
mod process_group;
mod serve;
mod shell;
mod wire;

/// jemalloc, whose background thread gives the memory a load freed back
/// to the OS once it has stayed unused for a while; glibc's malloc keeps
/// most of it, and a server that once held many connections stays near
/// its peak RSS.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rpcpeer::stream::Framing;

/// Command-line arguments.
#[derive(Parser)]
#[command(
    name = "rpcpeer",
    version,
    about = "Symmetric JSON-RPC 1.0/2.0 peers: serve the demo, or talk to any peer from a shell",
    after_help = "Exit status: 0 success, 1 the peer answered with an error \
                  (or a check failed: bench's, or a command of a piped shell), \
                  2 bad usage (arguments, URL, params), 3 the connection failed, \
                  74 the output could not be written, 130 stopped by SIGINT, 143 by SIGTERM."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Serve the demo service over TCP and over WebSocket + HTTP on another port.
    ///
    /// SIGINT (Ctrl-C) or SIGTERM stops it: no new connections, running calls
    /// get 3 s to finish, and it exits 0 within 5 s. A second signal exits at
    /// once, cutting the calls still running (130 for SIGINT, 143 for SIGTERM).
    Serve(serve::ServeArgs),
    /// Call METHOD and print its result (pretty and colored on a terminal).
    #[command(
        override_usage = "rpcpeer call [OPTIONS] <URL> <METHOD> [PARAMS]...\n       \
                          rpcpeer call [OPTIONS] --exec <COMMAND> <METHOD> [PARAMS]...\n       \
                          rpcpeer call [OPTIONS] --batch <FILE> <URL>"
    )]
    Call(CallArgs),
    /// Send METHOD as a notification (no reply is expected).
    #[command(
        override_usage = "rpcpeer notify [OPTIONS] <URL> <METHOD> [PARAMS]...\n       \
                          rpcpeer notify [OPTIONS] --exec <COMMAND> <METHOD> [PARAMS]..."
    )]
    Notify(NotifyArgs),
    /// Print every notification the peer sends, one JSON line each, until interrupted.
    #[command(override_usage = "rpcpeer listen [OPTIONS] <URL>\n       \
                          rpcpeer listen [OPTIONS] --exec <COMMAND>")]
    Listen(ListenArgs),
    /// An interactive console: history, completion from the peer's introspection,
    /// pushed notifications, answers to the peer's requests. With piped input,
    /// each call's answer is printed before the next line runs; while a call
    /// waits and the peer asks something, the input is read on for the
    /// `:reply`.
    ///
    /// With piped input it exits 1 when any command failed (an error answer,
    /// a line it could not run), 3 when the peer hung up, 143 at SIGTERM.
    #[command(override_usage = "rpcpeer shell [OPTIONS] <URL>\n       \
                          rpcpeer shell [OPTIONS] --exec <COMMAND>")]
    Shell(ShellArgs),
    /// Load any JSON-RPC peer: pipelined requests, batches or notifications
    /// over N connections, every reply checked; prints throughput and latency.
    Bench(bench::BenchArgs),
    /// Put a stdio program on the network: for each WebSocket or TCP
    /// connection, start the program and pass messages both ways
    /// (WebSocket text frames or lines to Content-Length and back).
    Bridge(bridge::BridgeArgs),
}

/// How to reach the peer; shared by every client subcommand.
#[derive(Args, Clone)]
struct ConnectArgs {
    /// Talk to this program over its stdin/stdout instead of a URL
    /// (split like a shell would: quotes and backslashes, no expansion).
    #[arg(long, value_name = "COMMAND")]
    exec: Option<String>,
    /// Framing on byte streams (tcp://, unix:, --exec): newline (the
    /// default) or content-length. A WebSocket or HTTP URL takes none.
    #[arg(long, value_name = "FRAMING")]
    framing: Option<Framing>,
    /// Give up on connecting, and on each call, after this many seconds
    /// (0: never), so a peer that froze cannot hang the command.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "30")]
    timeout: Duration,
}

impl ConnectArgs {
    /// The framing of a byte-stream peer.
    fn framing(&self) -> Framing {
        self.framing.unwrap_or(Framing::Newline)
    }

    /// Refuses `--framing` for a peer at `url` whose messages frame
    /// themselves (WebSocket, HTTP), where it would be ignored.
    fn check_framing_for(&self, url: &str) -> Result<(), Failure> {
        let framed_itself = ["ws://", "wss://", "http://", "https://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        match self.framing {
            Some(framing) if framed_itself => Err(Failure::Usage(format!(
                "--framing {framing} is for byte streams (tcp://, unix:, --exec): {url} frames each message itself"
            ))),
            _ => Ok(()),
        }
    }

    /// The `--timeout` limit; `None` for `--timeout 0`.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        Some(self.timeout).filter(|limit| !limit.is_zero())
    }
}

/// Arguments of `call` and `notify`.
#[derive(Args)]
struct CallArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Send the calls in FILE as one batch: a JSON array of objects with
    /// `method`, optional `params`, and `id` for those that want an answer
    /// (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    batch: Option<String>,
    /// URL (tcp://host:port, unix:/path, ws://host:port/path, wss://…, or
    /// http://host:port/path and https://…, each call one POST) unless
    /// --exec is given, then METHOD, then PARAMS: one JSON array or object,
    /// JSON values (sent as an array), or name=value pairs (sent as an
    /// object; values are JSON when they parse, else strings).
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// Arguments of `notify`: `call`'s without `--batch`, since a batch may
/// mix calls and notifications and so is `call`'s (its entries without an
/// id are notifications).
#[derive(Args)]
struct NotifyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// URL (tcp://host:port, unix:/path, ws://host:port/path, wss://…, or
    /// http://host:port/path and https://…, one POST) unless --exec is
    /// given, then METHOD, then PARAMS: one JSON array or object, JSON
    /// values (sent as an array), or name=value pairs (sent as an object;
    /// values are JSON when they parse, else strings).
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

impl From<NotifyArgs> for CallArgs {
    fn from(args: NotifyArgs) -> Self {
        CallArgs {
            connect: args.connect,
            batch: None,
            args: args.args,
        }
    }
}

/// Arguments of `listen`.
#[derive(Args)]
struct ListenArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// First call METHOD with PARAMS (for example `--call join name=alice`);
    /// once at most.
    // NB: `Set`, not the default `Append`, under which a second `--call`
    // would be taken as more params of the first.
    #[arg(long, value_name = "METHOD [PARAMS]", num_args = 1.., allow_negative_numbers = true, action = clap::ArgAction::Set)]
    call: Option<Vec<String>>,
    /// URL, unless --exec is given.
    #[arg(value_name = "URL")]
    url: Option<String>,
}

/// Arguments of `shell`.
#[derive(Args)]
struct ShellArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// URL, unless --exec is given.
    #[arg(value_name = "URL")]
    url: Option<String>,
}

/// `--timeout`: seconds, fractions allowed; 0 for no limit.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "`{text}` is not a number of seconds (0 for no limit)"
        )),
    }
}

/// A number of seconds that must be more than 0 (a period, not a limit).
fn parse_period(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "`{text}` is not a number of seconds greater than 0"
        )),
    }
}

/// Why a subcommand failed; each kind has its own exit status so scripts can tell them apart.
#[derive(Debug)]
enum Failure {
    /// The peer answered with an error object (already printed). Exit 1.
    Remote,
    /// The user asked for something impossible: bad URL, bad params, unreadable file. Exit 2.
    Usage(String),
    /// The connection could not be made, broke, or timed out. Exit 3.
    Connection(String),
    /// A check failed (`bench`: a reply was wrong, or none was counted;
    /// a piped `shell`: a command failed). Exit 1.
    Check(String),
    /// Stopped by SIGINT or SIGTERM before it was done (`bench`). Exit 130
    /// or 143.
    Interrupted(Stop),
    /// The output could not be written (a full disk, say; not a reader that
    /// went away, which ends the command quietly). Exit 74, sysexits'
    /// `EX_IOERR`.
    Output(String),
    /// Stopped by SIGINT or SIGTERM before its answer came (`call`,
    /// `notify`, `listen` before it listens): its `--exec` program, if
    /// any, was killed first. Also `serve` at a second signal, which cuts
    /// the calls still running. Exit 130 or 143.
    Stopped(Stop),
}

impl Failure {
    /// The process exit status for this failure.
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Remote | Failure::Check(_) => ExitCode::from(1),
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Connection(_) => ExitCode::from(3),
            Failure::Interrupted(stop) | Failure::Stopped(stop) => stop.exit_code(),
            Failure::Output(_) => ExitCode::from(74),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Remote => f.write_str("the peer answered with an error"),
            Failure::Interrupted(stop) => {
                write!(f, "{stop}: the report covers the time until then")
            }
            Failure::Stopped(stop) => write!(f, "{stop}"),
            Failure::Usage(msg)
            | Failure::Connection(msg)
            | Failure::Check(msg)
            | Failure::Output(msg) => f.write_str(msg),
        }
    }
}

/// Parses the arguments, runs the subcommand on a tokio runtime, and turns
/// its failure into a message and an exit status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end: dropping it flushes what is buffered (for a bounded time).
    let _log = init_logging(matches!(
        cli.command,
        Command::Serve(_) | Command::Bridge(_)
    ));
    log_panics();
    let mut builder = match cli.command {
        Command::Bench(_) => bench::runtime(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tell!("rpcpeer: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Call(args) => until_stopped(client::call(args)).await,
            Command::Notify(args) => until_stopped(client::notify(args.into())).await,
            Command::Listen(args) => client::listen(args).await,
            Command::Shell(args) => shell::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Bridge(args) => bridge::run(args).await,
        }
    });
    // NB: a short timeout, not a plain drop: a task blocked on stdin (the
    // shell, --exec) would otherwise keep the process alive after its work
    // is done, and serve promises to exit within 5 s of a signal.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !matches!(failure, Failure::Remote) {
                tell!("rpcpeer: {failure}");
            }
            failure.exit_code()
        }
    }
}

/// `command`, unless SIGINT or SIGTERM comes first: then it is dropped,
/// which kills the program it runs with `--exec` (the default action of
/// the signal would leave that program running).
async fn until_stopped(command: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let mut signals = StopSignals::watch();
    tokio::select! {
        outcome = command => outcome,
        stop = signals.recv() => Err(Failure::Stopped(stop)),
    }
}

/// Logs go to stderr, so stdout carries only results (and serve's
/// `listening on` lines). `RUST_LOG` overrides the default level: info for
/// the server, warnings only for the one-shot client commands.
fn init_logging(server: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // NB: log lines go through a bounded queue to a thread of their own,
    // and are dropped when it is full: a stderr that nobody reads (a pipe
    // left alone) must cost lines, never stop a worker thread mid-request.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .lossy(true)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    guard
}

/// Log lines that may wait for a slow stderr before new ones are dropped.
const LOG_LINES_BUFFERED: usize = 4096;

/// Panics become one log line with their location instead of a backtrace
/// on stderr: the demo's `panic` method panics on every call, and the core
/// already answers -32603 and logs which method it was. As a peer can make
/// them at will, one line per 10 s at most is written at warn, the others
/// at debug.
fn log_panics() {
    /// When the last line at warn was written, and the panics logged at
    /// debug since.
    static LAST: std::sync::Mutex<(Option<std::time::Instant>, u64)> =
        std::sync::Mutex::new((None, 0));
    std::panic::set_hook(Box::new(|info| {
        let now = std::time::Instant::now();
        let loud = {
            // NB: a panic while this was held leaves the state still usable.
            let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
            let (at, held) = &mut *last;
            if at.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10)) {
                *at = Some(now);
                Some(std::mem::take(held))
            } else {
                *held += 1;
                None
            }
        };
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        let at = info
            .location()
            .map(|at| format!(" at {}:{}", at.file(), at.line()))
            .unwrap_or_default();
        match loud {
            Some(0) => tracing::warn!("panic{at}: {msg}"),
            Some(held) => tracing::warn!(
                "panic{at}: {msg} ({held} more panics since the last such line, logged at debug)"
            ),
            None => tracing::debug!("panic{at}: {msg}"),
        }
    }));
}

/// Which signal stopped a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Stop {
    /// The shell's convention for a process ended by a signal: 128 plus
    /// its number, so a script sees the same status as if the signal's
    /// default action had ended it.
    fn exit_code(self) -> ExitCode {
        match self {
            Stop::Interrupt => ExitCode::from(130),
            Stop::Terminate => ExitCode::from(143),
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        })
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made.
///
/// NB: made before anything is announced (`listening on`, the listen
/// status line): a signal sent as soon as the announcement is seen must be
/// caught, not kill the process with the default action.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    /// Whether Ctrl-C is caught, where it is the only stop signal.
    #[cfg(not(unix))]
    interrupt: bool,
}

impl StopSignals {
    /// Starts catching the signals. Needs the tokio runtime.
    pub(crate) fn watch() -> Self {
        Self::catching(true)
    }

    /// Starts catching SIGTERM only, for a command that leaves Ctrl-C to
    /// its own use (`shell`: it cancels the call that waits).
    pub(crate) fn watch_terminate() -> Self {
        Self::catching(false)
    }

    fn catching(interrupt: bool) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let watch = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(err) => {
                    tracing::warn!("cannot catch {name} ({err}); it will not stop this gracefully");
                    None
                }
            };
            Self {
                interrupt: interrupt
                    .then(|| watch(SignalKind::interrupt(), "SIGINT"))
                    .flatten(),
                terminate: watch(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self { interrupt }
    }

    /// Completes at the next SIGINT or SIGTERM (Ctrl-C only, where there
    /// is no SIGTERM), saying which.
    pub(crate) async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    // Never, rather than at once, which would look like a signal.
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => Stop::Interrupt,
                () = next(&mut self.terminate) => Stop::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            match self.interrupt {
                true => ctrl_c().await,
                false => std::future::pending::<()>().await,
            }
            Stop::Interrupt
        }
    }
}

/// Completes at Ctrl-C; never, when Ctrl-C cannot be watched (rather than
/// at once, which would look like one).
async fn ctrl_c() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!("cannot watch Ctrl-C: {err}");
        std::future::pending::<()>().await;
    }
}
