//! `rpcpeer serve`: binds the listeners, prints `listening on …`, runs one driver per connection, stops gracefully.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rpcpeer::auth::RemoteAddr;
use rpcpeer::http::HttpOptions;
use rpcpeer::rooms::{RedisConfig, Rooms};
use rpcpeer::stream::{Framing, TcpListener};
use rpcpeer::transport::Transport;
use rpcpeer::ws::{Config as WsConfig, Protocols};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Config, Driver, Router, Session};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::demo::{self, ConnId, Demo};
use crate::Failure;

/// Arguments of `serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TCP address for JSON-RPC over a byte stream (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR")]
    tcp: String,
    /// Framing of the TCP listener: newline or content-length.
    #[arg(long, default_value = "newline", value_name = "FRAMING")]
    framing: Framing,
    /// Address for WebSocket (any path) and HTTP POST on the same port.
    #[arg(long, default_value = "127.0.0.1:7071", value_name = "ADDR")]
    ws: String,
    /// What the --ws port speaks: both, websocket (plain HTTP gets 426) or
    /// http (WebSocket upgrades get 400).
    #[arg(long, default_value = "both", value_name = "MODE")]
    ws_mode: WsMode,
    /// An origin whose web pages may call the --ws port from a browser,
    /// such as http://localhost:8080 (repeatable; `*` for any): HTTP with
    /// CORS, and WebSocket. None by default: CORS is off, and WebSocket
    /// upgrades from other origins' pages get 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    allowed_origins: Vec<String>,
    /// A host name the --ws port answers to, as clients write it in the
    /// URL (repeatable): a name of this machine, or the public name a
    /// reverse proxy passes on. On a loopback address only `localhost` and
    /// IP addresses are answered by default, which stops DNS rebinding (a
    /// web page that points its own name at 127.0.0.1); elsewhere, every
    /// name unless some are given.
    #[arg(long = "allow-host", value_name = "NAME", value_parser = parse_host)]
    allowed_hosts: Vec<String>,
    /// A demo account for `login` (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    users: Vec<(String, String)>,
    /// Connections each port holds open at once; past it, new ones are
    /// refused (TCP: closed at once; WebSocket and HTTP: 503) and the
    /// refusal is logged.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Close a TCP or WebSocket connection after this many seconds with no
    /// message either way and no call in flight (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_seconds, default_value = "300")]
    idle_timeout: Duration,
    #[command(flatten)]
    redis: RedisArgs,
}

/// The names the --ws port answers to: those given, and `localhost` on a
/// loopback address, where a name must be listed (see `HttpOptions`).
fn allowed_hosts(mut given: Vec<String>, ws: SocketAddr) -> Vec<String> {
    if ws.ip().is_loopback() {
        given.push("localhost".to_owned());
    }
    given
}

/// `--allow-host`: a host name, without a port or a scheme.
fn parse_host(text: &str) -> Result<String, String> {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if plain {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is no host name: expected a name such as my-laptop.local or api.example.com, without a port or scheme"
        ))
    }
}

/// `--allow-origin`: `*`, or an origin as a browser sends it in its
/// `Origin` header (`scheme://host[:port]`, no path), which is compared as
/// text: anything else would never match.
fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("`{text}` is no origin: expected scheme://host[:port], such as http://localhost:8080, or *"))?;
    let plain = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '+')
            })
    };
    if !plain(scheme) || !plain(rest) {
        return Err(format!(
            "`{text}` is no origin: expected scheme://host[:port] with no path, such as http://localhost:8080, or *"
        ));
    }
    Ok(text.to_owned())
}

/// `serve`'s chat across servers: every `serve` naming the same Redis (and
/// prefix) shares its rooms.
#[derive(Args)]
struct RedisArgs {
    /// Share the chat rooms through this Redis, such as
    /// redis://127.0.0.1:6379 (needs --node).
    #[arg(long, value_name = "URL", requires = "node")]
    redis: Option<String>,
    /// This server's name among those sharing the Redis (each its own;
    /// needs --redis).
    #[arg(long, value_name = "NAME", requires = "redis")]
    node: Option<String>,
    /// What the Redis keys and channels start with (needs --redis).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "rpcpeer",
        requires = "redis"
    )]
    redis_prefix: String,
    /// How long a member stays listed without its server refreshing it: the
    /// members of a server that died leave everywhere within it (at least
    /// 0.03; needs --redis).
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_period, default_value = "15", requires = "redis")]
    presence_ttl: Duration,
}

impl RedisArgs {
    /// The chat's rooms: through Redis when --redis names one.
    fn rooms(&self) -> Result<Rooms, Failure> {
        let (Some(url), Some(node)) = (&self.redis, &self.node) else {
            return Ok(demo::local_rooms());
        };
        let config = RedisConfig::new(url, node)
            .prefix(&self.redis_prefix)
            .presence_ttl(self.presence_ttl);
        demo::redis_rooms(config).map_err(|err| Failure::Usage(format!("--redis: {err}")))
    }
}

/// `--ws-mode`: which protocols the WebSocket/HTTP port speaks.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WsMode {
    /// WebSocket and plain HTTP.
    Both,
    /// WebSocket only.
    Websocket,
    /// Plain HTTP only.
    Http,
}

impl From<WsMode> for Protocols {
    fn from(mode: WsMode) -> Self {
        match mode {
            WsMode::Both => Protocols::Both,
            WsMode::Websocket => Protocols::WebSocketOnly,
            WsMode::Http => Protocols::HttpOnly,
        }
    }
}

/// `--user NAME:PASSWORD`; the password may itself hold colons.
fn parse_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err(format!("`{text}` is not NAME:PASSWORD")),
    }
}

/// From the signal to the exit, at most this long (the promise is 5 s).
const STOP_DEADLINE: Duration = Duration::from_millis(4500);

/// How long a connection's running handlers may go on after the signal
/// before they are cancelled; leaves the rest of [`STOP_DEADLINE`] for
/// their replies to be written.
const DRAIN: Duration = Duration::from_secs(3);

/// What every connection task shares.
struct Shared {
    router: Router<Demo>,
    config: Config,
    /// Cancelled at SIGINT/SIGTERM.
    stop: CancellationToken,
    /// Every listener and connection task, so the exit waits for them.
    tracker: TaskTracker,
    next_conn: AtomicU64,
}

/// Runs the demo server until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let mut signals = crate::StopSignals::watch();
    let idle_timeout = Some(args.idle_timeout).filter(|limit| !limit.is_zero());
    // NB: a port that is taken, or an address not of this machine, is
    // the network's answer (exit 3), as for `bridge`; only an address that
    // does not parse is the user's mistake (exit 2).
    let cannot_listen = |url: String, err: std::io::Error| {
        let why = format!("cannot listen on {url}: {err}");
        if err.kind() == std::io::ErrorKind::InvalidInput {
            Failure::Usage(why)
        } else {
            Failure::Connection(why)
        }
    };
    let tcp = TcpListener::bind(&args.tcp, args.framing)
        .await
        .map_err(|err| cannot_listen(format!("tcp://{}", args.tcp), err))?
        .with_max_connections(args.max_connections as usize);
    let ws = tokio::net::TcpListener::bind(&args.ws)
        .await
        .map_err(|err| cannot_listen(format!("ws://{}/", args.ws), err))?;
    let local = |addr: std::io::Result<SocketAddr>| {
        addr.map_err(|err| Failure::Usage(format!("cannot read a listener's address: {err}")))
    };
    let (tcp_addr, ws_addr) = (local(tcp.local_addr())?, local(ws.local_addr())?);

    let users: HashMap<String, String> = args.users.into_iter().collect();
    let rooms = args.redis.rooms()?;
    let shared = Arc::new(Shared {
        router: demo::router(users, rooms.clone()),
        config: Config::default()
            .drain_timeout(DRAIN)
            .idle_timeout(idle_timeout),
        stop: CancellationToken::new(),
        tracker: TaskTracker::new(),
        next_conn: AtomicU64::new(1),
    });

    let ws_scheme = if args.ws_mode == WsMode::Http {
        "http"
    } else {
        "ws"
    };
    // NB: printed only once both are bound, and flushed: whoever reads
    // stdout may connect as soon as it sees its line.
    {
        let mut stdout = std::io::stdout().lock();
        let printed = writeln!(stdout, "listening on tcp://{tcp_addr}")
            .and_then(|()| writeln!(stdout, "listening on {ws_scheme}://{ws_addr}/"))
            .and_then(|()| stdout.flush());
        if let Err(err) = printed {
            tracing::warn!("could not print the listening addresses: {err}");
        }
    }
    tracing::info!(framing = %args.framing, "serving tcp://{tcp_addr} and {ws_scheme}://{ws_addr}/");
    // The console needs both: the page over HTTP, its calls over WebSocket.
    let console = args.ws_mode == WsMode::Both;
    if console {
        tracing::info!("console in the browser: open http://{ws_addr}/");
    }

    shared.tracker.spawn(accept_tcp(tcp, shared.clone()));
    // The WebSocket and HTTP port: the library's server, with each
    // WebSocket connection named like a TCP one (HTTP requests have no
    // ConnId, which is how chat and callback refuse them).
    let ws_server = WsServer::new(shared.router.clone())
        .config(shared.config.clone())
        .ws_config(WsConfig {
            protocols: args.ws_mode.into(),
            ..WsConfig::default()
        })
        .http_options(HttpOptions {
            allowed_origins: args.allowed_origins,
            allowed_hosts: allowed_hosts(args.allowed_hosts, ws_addr),
            ..HttpOptions::default()
        })
        .max_connections(args.max_connections as usize)
        .idle_timeout(idle_timeout);
    let ws_server = if console {
        ws_server.console("/")
    } else {
        ws_server
    };
    let ws_server = ws_server.on_connect({
        let shared = shared.clone();
        move |_peer, session, remote| {
            session.insert(ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed)));
            tracing::debug!("ws {remote}: connected");
        }
    });
    let stop = shared.stop.clone();
    shared.tracker.spawn(async move {
        let stopped = async move { stop.cancelled().await };
        if let Err(err) = ws_server.serve_with_shutdown(ws, stopped).await {
            tracing::warn!("the WebSocket listener stopped: {err}");
        }
    });

    let _ = signals.recv().await;
    let deadline = Instant::now() + STOP_DEADLINE;
    tracing::info!(
        "stopping: no new connections; waiting for running calls (a second signal exits at once)"
    );
    shared.stop.cancel();
    shared.tracker.close();
    // NB: a second signal is the user saying the drain is not worth the
    // wait, as in most servers; the calls still running are cut, and the
    // status says the process was stopped rather than done.
    // NB: the members' departures are registered once their connections
    // have closed; with Redis, exiting first would leave the other nodes to
    // learn of them only when the presence expires.
    let finished = async {
        shared.tracker.wait().await;
        rooms.settled().await;
    };
    tokio::select! {
        finished = tokio::time::timeout_at(deadline, finished) => {
            match (finished, shared.tracker.len()) {
                (Ok(()), _) => {}
                (Err(_), 0) => tracing::warn!(
                    "the chat's departures were still being registered in Redis (slow or unreachable); exiting anyway: other servers see them when the presence expires"
                ),
                (Err(_), tasks) => tracing::warn!(
                    tasks,
                    "some connections did not finish in time; exiting anyway"
                ),
            }
            Ok(())
        }
        again = signals.recv() => {
            tracing::warn!(
                tasks = shared.tracker.len(),
                "{again} again: exiting now, without waiting for running calls"
            );
            Err(Failure::Stopped(again))
        }
    }
}

/// Accepts TCP connections until the stop signal; dropping the listener
/// then refuses new ones at once.
async fn accept_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut accept_errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((transport, remote)) => {
                let label = format!("tcp {remote}");
                shared
                    .tracker
                    .spawn(serve_peer(transport, remote, shared.clone(), label));
            }
            Err(err) => accept_errors.failed(&err).await,
        }
    }
}

/// Accept errors, which concern one connection or a full descriptor table:
/// each is logged without flooding the log, and the loop goes on after a
/// pause, so that a lasting one cannot spin it.
#[derive(Default)]
pub(crate) struct AcceptErrors {
    /// Failed since the last line about them.
    unreported: u64,
    /// When that line was written.
    last_line: Option<Instant>,
}

impl AcceptErrors {
    /// One line per 10 s at most: out of descriptors, every accept fails
    /// (one per pause) until one is freed.
    const WARN_EVERY: Duration = Duration::from_secs(10);

    pub(crate) async fn failed(&mut self, err: &std::io::Error) {
        self.unreported += 1;
        let now = Instant::now();
        let quiet = (self.last_line).is_some_and(|at| now.duration_since(at) < Self::WARN_EVERY);
        if !quiet {
            self.last_line = Some(now);
            match std::mem::take(&mut self.unreported) {
                1 => tracing::warn!("accept failed: {err}"),
                n => tracing::warn!(
                    "accept failed {n} times in the last {:?}, the last: {err}",
                    Self::WARN_EVERY
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one TCP connection to its end (WebSocket ones run in `WsServer`).
async fn serve_peer<T: Transport>(
    transport: T,
    remote: SocketAddr,
    shared: Arc<Shared>,
    label: String,
) {
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let session = Session::new();
    session.insert(conn);
    // Failed logins are also counted per address.
    session.insert(RemoteAddr(remote));
    let (_peer, driver) = Driver::builder(transport, shared.router.clone())
        .config(shared.config.clone())
        .session(session)
        .build();
    tracing::debug!("{label}: connected");
    // Graceful: stop reading, let running handlers answer, close. (The
    // chat notices the end by itself: a group member leaves when its
    // connection closes.)
    match driver
        .run_until(shared.stop.clone().cancelled_owned())
        .await
    {
        Ok(()) => tracing::debug!("{label}: closed"),
        Err(err) => tracing::debug!("{label}: closed: {err}"),
    }
}
