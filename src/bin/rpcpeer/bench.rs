//! `rpcpeer bench`: a load generator for any JSON-RPC peer: pipelined requests, batches or notifications over N connections, every reply checked.

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::{poll_fn, Future};
use std::io::{IsTerminal, Write as _};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use foldhash::HashMap;
use futures::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rpcpeer::stream::Framing;
use rpcpeer::transport::Transport;
use rpcpeer::Params;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Target};
use crate::{ConnectArgs, Failure};

/// Arguments of `bench`.
#[derive(Args)]
pub(crate) struct BenchArgs {
    /// The peer: tcp://host:port, unix:/path, ws://host:port/path or wss://….
    #[arg(value_name = "URL")]
    url: String,
    /// Framing on byte streams (tcp://, unix:): newline (the default) or
    /// content-length. A WebSocket URL takes none.
    #[arg(long, value_name = "FRAMING")]
    framing: Option<Framing>,
    /// The method to call (or notify).
    #[arg(long, default_value = "echo")]
    method: String,
    /// Its params: one JSON array or object, sent with every request.
    #[arg(long, default_value = r#"["hello"]"#, value_name = "JSON")]
    params: String,
    /// Connections, all opened before the clock starts.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    conns: u32,
    /// Messages in flight on each connection: the next one goes out as soon
    /// as a reply comes back. With --notify: probe requests in flight, one
    /// after every 64 notifications, which keep the peer's backlog short.
    #[arg(long, default_value_t = 64, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    inflight: u32,
    /// Seconds to measure (fractions allowed).
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = parse_span)]
    duration: Duration,
    /// Seconds of load before measuring; nothing from them is counted but errors.
    #[arg(long, default_value = "1", value_name = "SECONDS", value_parser = parse_span)]
    warmup: Duration,
    /// Send each message as a batch: a JSON array of B requests (not with --notify).
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Send notifications as fast as the connection takes them; one request
    /// per connection at the end proves the peer read all of them.
    #[arg(long)]
    notify: bool,
    /// With --notify: the method its probe requests call, without params
    /// (default: --method with --params), for a peer that takes --method
    /// only as a notification.
    #[arg(long, value_name = "METHOD", requires = "notify")]
    probe: Option<String>,
    /// Every result must equal this JSON (compared as values, not as text;
    /// with --probe, the probes' results are not compared).
    #[arg(long, value_name = "JSON")]
    expect: Option<String>,
    /// Print one JSON line on stdout instead of the report, with: url,
    /// method, conns, inflight, batch (null without --batch), notify,
    /// seconds (measured), requests (messages answered and checked, or
    /// notifications sent, in the measured time), items (requests in those
    /// messages), rps, items_per_s, p50_us/p90_us/p99_us/max_us (latency of
    /// the counted requests; of the probes with --notify; null when none),
    /// bytes_sent, bytes_received, errors, broken (connections that failed),
    /// interrupted, error_samples.
    #[arg(long)]
    json: bool,
    /// Only open N connections, send nothing, and hold them until SIGINT,
    /// SIGTERM or the end of stdin (so give it a stdin that stays open when
    /// it runs in the background). Takes no load options (clap refuses them).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with_all = [
            "method", "params", "conns", "inflight", "duration", "warmup", "batch", "notify",
            "probe", "expect", "json",
        ],
    )]
    idle: Option<u32>,
}

/// After the measured time, how long the replies still owed (and in
/// `--notify` mode the fence's) may take before they count as lost.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// How long the replies still owed are waited for after an interrupt.
const DRAIN_INTERRUPTED: Duration = Duration::from_millis(200);
/// How long closing a connection gracefully may take before it is dropped.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);
/// How long opening all the connections may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Connections being opened at once: enough to be quick, few enough that a
/// big `--idle` does not overflow the peer's accept backlog.
const OPENING_AT_ONCE: usize = 64;
/// Messages written in one go before the task yields, so a transport that
/// takes everything (`--notify`) cannot starve the progress line or the
/// other connections on the same thread.
const SEND_BUDGET: usize = 256;
/// `--notify`: a probe request goes out after this many notification
/// messages.
///
/// NB: without probes, "as fast as the transport accepts" means megabytes
/// of socket buffers: a slow peer would need many seconds after the end to
/// read its way to the fence, and the run could not end in time. With at
/// most `--inflight` probes unanswered, the peer is never more than
/// `--inflight` × 64 messages behind, yet always has plenty to read.
const PROBE_EVERY: usize = 64;
/// Distinct error descriptions kept for the report.
const MAX_SAMPLES: usize = 5;
/// Latencies above this (one hour, in µs) are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The runtime `bench` runs on: one thread.
///
/// NB: measured against `serve` on 2 cores, 4 connections × 64 in flight,
/// over TCP and WebSocket: a current-thread runtime spent 10-25% less CPU
/// than a 2-worker one at the same or a higher request rate, and its p99
/// was lower (no work stealing, no cross-thread wake-ups). The generator
/// shares the machine with the peer it measures, so its CPU is the peer's loss.
pub(crate) fn runtime() -> tokio::runtime::Builder {
    tokio::runtime::Builder::new_current_thread()
}

/// Runs `rpcpeer bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    let target = Target::new(Some(&args.url), None)?;
    args.connect_args().check_framing_for(&args.url)?;
    // Clap has refused every load option beside it.
    if let Some(n) = args.idle {
        return hold_idle(&args, &target, n as usize).await;
    }
    if args.notify && args.batch.is_some() {
        return Err(Failure::Usage(
            "--notify sends single notifications: --batch does not go with it".into(),
        ));
    }
    let messages = Messages::new(&args)?;
    let expect = args.expect.as_deref().map(Expected::new).transpose()?;
    if args.duration.is_zero() {
        return Err(Failure::Usage(
            "--duration must be more than 0 seconds".into(),
        ));
    }
    let mut signals = crate::StopSignals::watch();
    let transports = open_all(&args, &target, args.conns as usize).await?;

    let start = Instant::now() + args.warmup;
    let end = start + args.duration;
    let per_message = args.batch.unwrap_or(1) as usize;
    let plan = Arc::new(Plan {
        messages,
        batch: args.batch.map(|b| b as usize),
        per_message,
        notify: args.notify,
        window: if args.notify {
            args.inflight as usize
        } else {
            args.inflight as usize * per_message
        },
        // NB: a probe to another method answers something else.
        expect: expect.filter(|_| args.probe.is_none()),
        start,
        end,
        stop: CancellationToken::new(),
        live: Live::default(),
    });
    let tasks = transports
        .into_iter()
        .enumerate()
        .map(|(index, io)| tokio::spawn(Conn::new(index, io, Arc::clone(&plan)).run()));
    let mut all = pin!(futures::future::join_all(tasks));
    let progress = Progress::new(args.json, &plan);
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let mut interrupted_at = None;
    let joined = loop {
        tokio::select! {
            joined = &mut all => break joined,
            stop = signals.recv(), if interrupted_at.is_none() => {
                // Stop early but still report what was measured so far.
                interrupted_at = Some((Instant::now(), stop));
                plan.stop.cancel();
            }
            _ = ticks.tick() => progress.update(&plan),
        }
    };
    let finished = Instant::now();
    progress.finish();

    let mut total = Tally::new();
    for outcome in joined {
        match outcome {
            Ok(tally) => total.merge(tally),
            Err(err) => total.error(|| format!("a connection's task failed: {err}")),
        }
    }
    // Ends early at a signal, or when every connection broke before the end.
    let measured_end = interrupted_at
        .map_or(end, |(at, _): (Instant, _)| at.min(end))
        .min(finished);
    let seconds = match (args.notify, total.last_fence) {
        (true, Some(fence)) => fence.saturating_duration_since(start),
        _ => measured_end.saturating_duration_since(start),
    };
    let report = Report {
        args: &args,
        seconds: seconds.as_secs_f64(),
        warmup: measured_end
            .min(start)
            .saturating_duration_since(start - args.warmup)
            .as_secs_f64(),
        interrupted: interrupted_at.is_some(),
        tally: &total,
    };
    if args.json {
        print_line(&report.json().to_string())?;
    } else {
        print_line(report.text().trim_end())?;
    }
    // NB: the worst first, so a script can trust a 0: a connection that
    // broke (3), a reply that failed a check (1), nothing measured (1), an
    // interrupted run (130 or 143, after the report of what was measured).
    if total.broken > 0 {
        Err(Failure::Connection(format!(
            "{} of {} connections failed during the run (see the report)",
            total.broken, args.conns
        )))
    } else if total.errors > 0 {
        Err(Failure::Check(format!(
            "{} replies failed a check (see the report)",
            total.errors
        )))
    } else if let Some((_, stop)) = interrupted_at {
        Err(Failure::Interrupted(stop))
    } else if total.requests == 0 {
        Err(Failure::Check(
            "no reply was counted in the measured time: lengthen --duration".into(),
        ))
    } else {
        Ok(())
    }
}

impl BenchArgs {
    /// How each connection is opened.
    fn connect_args(&self) -> ConnectArgs {
        ConnectArgs {
            exec: None,
            framing: self.framing,
            timeout: CONNECT_LIMIT,
        }
    }
}

/// Opens `n` connections to `target`, at most [`OPENING_AT_ONCE`] at a time.
async fn open_all(
    args: &BenchArgs,
    target: &Target,
    n: usize,
) -> Result<Vec<Box<dyn Transport>>, Failure> {
    let connect = args.connect_args();
    let url = &args.url;
    let opening = futures::stream::iter(0..n)
        .map(|_| client::open(target, &connect))
        .buffer_unordered(OPENING_AT_ONCE)
        .map_ok(|(wire, _no_child)| wire.into_transport())
        .map_err(|err| {
            let failure = format!("cannot connect to {url}: {err}");
            if err.kind() == std::io::ErrorKind::InvalidInput {
                Failure::Usage(failure)
            } else {
                Failure::Connection(failure)
            }
        })
        .try_collect();
    tokio::time::timeout(CONNECT_LIMIT, opening)
        .await
        .map_err(|_| {
            Failure::Connection(format!(
                "cannot connect to {url}: {n} connections not open within {CONNECT_LIMIT:?}"
            ))
        })?
}

/// `--idle N`: holds N silent connections until a signal or the end of stdin.
async fn hold_idle(args: &BenchArgs, target: &Target, n: usize) -> Result<(), Failure> {
    let mut signals = crate::StopSignals::watch();
    let transports = open_all(args, target, n).await?;
    print_line(&format!("holding {n} idle connections"))?;
    let closed = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for mut io in transports {
        let closed = Arc::clone(&closed);
        // NB: each connection is still read (and what arrives dropped), or a
        // WebSocket would never answer the peer's pings and be cut off.
        readers.spawn(async move {
            while let Some(Ok(_)) = io.next().await {}
            closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    let stdin_ends = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf).await, Ok(1..)) {}
    };
    // NB: a peer that closed them all leaves nothing to hold: said now, not
    // at the next signal.
    let all_closed = async { while readers.join_next().await.is_some() {} };
    tokio::select! {
        _ = signals.recv() => {}
        () = stdin_ends => {}
        () = all_closed => {}
    }
    readers.abort_all();
    match closed.load(Ordering::Relaxed) {
        0 => Ok(()),
        lost => Err(Failure::Connection(format!(
            "the peer closed {lost} of the {n} idle connections"
        ))),
    }
}

/// Writes one line to stdout; a reader that went away is not an error.
fn print_line(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(Failure::Output(format!("cannot write to stdout: {err}"))),
    }
}

/// The texts every message is made from, built once.
struct Messages {
    /// A request up to its id: `{"jsonrpc":"2.0","method":…,"params":…,"id":`.
    request_head: String,
    /// `--notify`'s probe request up to its id: the request's, or with
    /// `--probe` one to that method without params.
    probe_head: String,
    /// A whole notification message (a batch of them with `--batch`).
    notification: String,
}

impl Messages {
    /// Checks `--params` and builds the texts.
    fn new(args: &BenchArgs) -> Result<Self, Failure> {
        let params = Params::from_json(&args.params)
            .ok()
            .flatten()
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--params `{}` is not one JSON array or object",
                    args.params
                ))
            })?;
        let method = Value::String(args.method.clone()).to_string();
        let body = format!(r#"{{"jsonrpc":"2.0","method":{method},"params":{params}"#);
        let one = format!("{body}}}");
        let notification = match args.batch {
            Some(b) => format!("[{}]", vec![one; b as usize].join(",")),
            None => one,
        };
        let request_head = format!(r#"{body},"id":"#);
        let probe_head = match &args.probe {
            Some(probe) => {
                let probe = Value::String(probe.clone());
                format!(r#"{{"jsonrpc":"2.0","method":{probe},"id":"#)
            }
            None => request_head.clone(),
        };
        Ok(Self {
            request_head,
            probe_head,
            notification,
        })
    }
}

/// `--expect`: the value, and its compact text for a quick first comparison.
struct Expected {
    value: Value,
    text: String,
}

impl Expected {
    fn new(text: &str) -> Result<Self, Failure> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Failure::Usage(format!("--expect `{text}` is not JSON: {err}")))?;
        Ok(Self {
            text: value.to_string(),
            value,
        })
    }

    /// Whether `result` is the expected value. Compares text first: most
    /// peers write a value back the way it was sent, and parsing every
    /// result would cost the generator more than the peer.
    fn matches(&self, result: &RawValue) -> bool {
        result.get() == self.text
            || serde_json::from_str::<Value>(result.get()).is_ok_and(|v| same(&v, &self.value))
    }
}

/// JSON equality where numbers compare by value: `6` and `6.0` are one
/// number to JSON (RFC 8259 §6 does not tell them apart).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i128(), y.as_i128()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `--duration` and `--warmup`: seconds, fractions allowed.
fn parse_span(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("`{text}` is not a number of seconds (0 or more)")),
    }
}

/// What every connection's task shares.
struct Plan {
    messages: Messages,
    batch: Option<usize>,
    /// Requests per message: the batch size, else 1.
    per_message: usize,
    notify: bool,
    /// Requests in flight on one connection: `--inflight` × `per_message`
    /// (`--notify`: probes in flight, `--inflight`).
    window: usize,
    expect: Option<Expected>,
    /// Replies before this are warm-up.
    start: Instant,
    /// No request goes out after this, and at most `PROBE_EVERY`
    /// notifications per connection (see `Conn::poll_send`).
    end: Instant,
    /// Cancelled at SIGINT/SIGTERM: end now, report what was measured.
    stop: CancellationToken,
    live: Live,
}

impl Plan {
    /// Whether something that happened at `now` counts.
    fn counts(&self, now: Instant) -> bool {
        now >= self.start && now < self.end
    }
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
struct Live {
    messages: AtomicU64,
    errors: AtomicU64,
}

/// What one connection measured; summed into one for the report.
struct Tally {
    latency_us: Histogram<u64>,
    /// Messages: replies that passed every check, or notifications sent, in the measured time.
    requests: u64,
    /// Requests (or notifications) in those messages.
    items: u64,
    bytes_sent: u64,
    bytes_received: u64,
    errors: u64,
    /// The first few distinct error descriptions.
    samples: Vec<String>,
    /// `--notify`: when the last fence reply came.
    last_fence: Option<Instant>,
    /// Connections that failed (dropped, unreadable) during the run.
    broken: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1 µs to an hour at 3 significant digits is a valid range"),
            requests: 0,
            items: 0,
            bytes_sent: 0,
            bytes_received: 0,
            errors: 0,
            samples: Vec::new(),
            last_fence: None,
            broken: 0,
        }
    }

    /// Counts one failed check; `why` is only formatted while samples are still wanted.
    fn error(&mut self, why: impl FnOnce() -> String) {
        self.errors += 1;
        if self.samples.len() < MAX_SAMPLES {
            let why = why();
            if !self.samples.contains(&why) {
                self.samples.push(why);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        // Same bounds on both sides, so adding cannot fail; were it to,
        // the percentiles would be missing that connection, nothing worse.
        let _ = self.latency_us.add(&other.latency_us);
        self.requests += other.requests;
        self.items += other.items;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.errors += other.errors;
        for sample in other.samples {
            if self.samples.len() < MAX_SAMPLES && !self.samples.contains(&sample) {
                self.samples.push(sample);
            }
        }
        self.last_fence = self.last_fence.max(other.last_fence);
        self.broken += other.broken;
    }
}

/// One reply (or one item of a batch reply), read without copying.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    /// `null` reads as `None`: JSON-RPC 1.0 replies carry `"error": null`.
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    /// Set when the peer sent its own request or notification, not a reply.
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
}

/// `Some` whenever the key is present, even as `null`: `"id": null` is a
/// reply to nothing we sent, not a reply without an id.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// At most 120 characters of a peer's text, for an error description.
fn clip(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// One connection: writes and reads in the same task, so nothing is shared
/// or locked per message.
struct Conn {
    index: usize,
    io: Box<dyn Transport>,
    plan: Arc<Plan>,
    /// When each request still owed a reply was sent, by id. NB: foldhash,
    /// not the default SipHash: every request is inserted and removed
    /// once, and the ids are ours, so nothing needs the default's defence
    /// against chosen keys.
    pending: HashMap<u64, Instant>,
    /// This connection's ids are `first_id..next_id`; never reused in a run,
    /// and apart from every other connection's.
    first_id: u64,
    next_id: u64,
    /// Something was written and not flushed yet.
    unflushed: bool,
    /// Still sending load (before the end, or the stop).
    loading: bool,
    /// `--notify`: the fence request's id, once made.
    fence: Option<u64>,
    /// `--notify`: the fence is made but not yet written.
    fence_unsent: Option<String>,
    /// `--notify`: notification messages sent since the last probe.
    since_probe: usize,
    tally: Tally,
}

impl Conn {
    fn new(index: usize, io: Box<dyn Transport>, plan: Arc<Plan>) -> Self {
        // 2^32 ids per connection and up to 2^21 connections stay below
        // 2^53, so a peer that reads ids as doubles still gets them exactly.
        let first_id = ((index as u64) << 32) + 1;
        Self {
            index,
            io,
            pending: HashMap::with_capacity_and_hasher(plan.window, Default::default()),
            plan,
            first_id,
            next_id: first_id,
            unflushed: false,
            loading: true,
            fence: None,
            fence_unsent: None,
            since_probe: 0,
            tally: Tally::new(),
        }
    }

    /// Loads the connection until the end (or the stop), collects the
    /// replies still owed, closes, and returns what it measured.
    async fn run(mut self) -> Tally {
        let plan = Arc::clone(&self.plan);
        let mut end = pin!(tokio::time::sleep_until(plan.end));
        let mut stop = pin!(plan.stop.cancelled());
        let loaded = poll_fn(|cx| {
            // NB: the end is checked before any more load goes out, so a
            // transport that always takes more cannot run past it.
            if end.as_mut().poll(cx).is_ready() || stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            self.poll_load(cx)
        })
        .await;
        self.loading = false;
        if let Err(why) = loaded {
            self.broken(why);
            return self.tally;
        }
        if plan.notify {
            let fence = self.probe(Instant::now());
            self.fence = Some(self.next_id - 1);
            self.fence_unsent = Some(fence);
        }
        // NB: interrupted, the user asked to stop now: the replies still owed
        // are given a moment, not the full limit, and are no failed check.
        let interrupted = plan.stop.is_cancelled();
        let limit = if interrupted {
            DRAIN_INTERRUPTED
        } else {
            DRAIN_LIMIT
        };
        match tokio::time::timeout(limit, poll_fn(|cx| self.poll_drain(cx))).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                self.broken(why);
                return self.tally;
            }
            Err(_) if interrupted => {}
            Err(_) => {
                let owed = self.pending.len();
                for _ in 0..owed {
                    self.error(|| {
                        format!("no reply within {DRAIN_LIMIT:?} after the end of the run")
                    });
                }
            }
        }
        let _ = tokio::time::timeout(CLOSE_LIMIT, self.io.close()).await;
        self.tally
    }

    /// Counts a dropped or failed connection as one error.
    fn broken(&mut self, why: String) {
        self.tally.broken += 1;
        let owed = self.pending.len();
        let index = self.index;
        self.error(|| format!("connection {index}: {why} ({owed} requests unanswered)"));
    }

    fn error(&mut self, why: impl FnOnce() -> String) {
        self.plan.live.errors.fetch_add(1, Ordering::Relaxed);
        self.tally.error(why);
    }

    /// One pass of the load phase: read every reply that is ready, then
    /// refill the window. `Ready` only when the connection failed.
    fn poll_load(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if let Err(why) = self.poll_replies(cx) {
            return Poll::Ready(Err(why));
        }
        if let Err(why) = self.poll_send(cx) {
            return Poll::Ready(Err(why));
        }
        Poll::Pending
    }

    /// After the end: writes the fence (`--notify`), flushes, and waits for
    /// every reply still owed. `Ready(Ok)` when none is.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if let Some(fence) = self.fence_unsent.take() {
            match self.io.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    self.io
                        .start_send_unpin(fence)
                        .map_err(|err| format!("sending failed: {err}"))?;
                    self.unflushed = true;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(format!("sending failed: {err}"))),
                Poll::Pending => {
                    self.fence_unsent = Some(fence);
                    return Poll::Pending;
                }
            }
        }
        self.poll_flush(cx)?;
        self.poll_replies(cx)?;
        if self.pending.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Reads frames until none is ready.
    fn poll_replies(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        loop {
            match self.io.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => self.on_frame(&frame),
                Poll::Ready(Some(Err(err))) => return Err(format!("reading failed: {err}")),
                Poll::Ready(None) => return Err("the peer closed the connection".into()),
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// Writes messages while the window has room (`--notify`: while the
    /// transport takes them and the probes allow), then flushes.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        let plan = Arc::clone(&self.plan);
        // NB: a notification needs no clock of its own: it goes by this
        // round's, read here and again at each request or probe (every
        // `PROBE_EVERY` notifications), which read it anyway for their
        // latency. A read per notification took an eighth of the
        // generator's CPU on a virtual machine, CPU that a server on the
        // same machine then lacked. So at most `PROBE_EVERY` notifications
        // per connection go out past the end, each counted.
        let mut now = Instant::now();
        let mut counts = plan.counts(now);
        let mut sent = 0;
        let mut counted = 0u64;
        let result = loop {
            let notification = plan.notify && self.since_probe < PROBE_EVERY;
            let room = if plan.notify {
                notification || self.pending.len() < plan.window
            } else {
                self.pending.len() + plan.per_message <= plan.window
            };
            if !room {
                break Ok(());
            }
            match self.io.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => break Err(format!("sending failed: {err}")),
                Poll::Pending => break Ok(()),
            }
            if !notification {
                now = Instant::now();
                counts = plan.counts(now);
            }
            // NB: checked here, not left to the end's timer, which may fire
            // a little late.
            if now >= plan.end {
                break Ok(());
            }
            let text = if notification {
                self.since_probe += 1;
                plan.messages.notification.clone()
            } else if plan.notify {
                self.since_probe = 0;
                self.probe(now)
            } else {
                self.request(now)
            };
            let len = text.len() as u64;
            if let Err(err) = self.io.start_send_unpin(text) {
                break Err(format!("sending failed: {err}"));
            }
            if counts {
                self.tally.bytes_sent += len;
                counted += u64::from(notification);
            }
            self.unflushed = true;
            sent += 1;
            if sent == SEND_BUDGET {
                cx.waker().wake_by_ref();
                break Ok(());
            }
        };
        self.count_notifications(counted);
        result?;
        self.poll_flush(cx)
    }

    /// `--notify`: counts `sent` notifications that the transport took in
    /// the measured time. NB: once per round, so that the tally and the
    /// progress line's shared counter are not written per message.
    fn count_notifications(&mut self, sent: u64) {
        if sent > 0 {
            // NB: each is one item: `--notify` refuses `--batch`.
            self.tally.requests += sent;
            self.tally.items += sent;
            self.plan.live.messages.fetch_add(sent, Ordering::Relaxed);
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        if self.unflushed {
            match self.io.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(err)) => return Err(format!("sending failed: {err}")),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// `--notify`: one plain request, whose reply proves the peer read
    /// everything sent before it.
    fn probe(&mut self, now: Instant) -> String {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, now);
        format!("{}{id}}}", self.plan.messages.probe_head)
    }

    /// The next request message (a batch of them with `--batch`).
    fn request(&mut self, now: Instant) -> String {
        let head = &self.plan.messages.request_head;
        let count = self.plan.per_message;
        // Room for each request's head, its id and `}`, the commas and brackets.
        let mut text = String::with_capacity((head.len() + 22) * count + 2);
        if self.plan.batch.is_some() {
            text.push('[');
        }
        for i in 0..count {
            if i > 0 {
                text.push(',');
            }
            let id = self.next_id;
            self.next_id += 1;
            self.pending.insert(id, now);
            let _ = write!(text, "{head}{id}}}");
        }
        if self.plan.batch.is_some() {
            text.push(']');
        }
        text
    }

    /// Checks one frame from the peer and counts it.
    fn on_frame(&mut self, frame: &str) {
        let now = Instant::now();
        let counted = self.loading && self.plan.counts(now);
        if counted {
            self.tally.bytes_received += frame.len() as u64;
        }
        let good = if frame.trim_start().starts_with('[') {
            let replies: Vec<Reply<'_>> = match serde_json::from_str(frame) {
                Ok(replies) => replies,
                Err(err) => {
                    return self.error(|| format!("a frame that is not a batch of replies: {err}"))
                }
            };
            let mut good = replies.len() == self.plan.per_message && self.plan.batch.is_some();
            if !good {
                let (got, batch) = (replies.len(), self.plan.batch);
                self.error(|| match batch {
                    Some(b) => format!("a batch reply of {got} items to a batch of {b}"),
                    None => format!("a batch reply of {got} items, and no batch was sent"),
                });
            }
            for reply in &replies {
                good &= self.check(reply, now, counted);
            }
            good
        } else {
            let reply: Reply<'_> = match serde_json::from_str(frame) {
                Ok(reply) => reply,
                Err(err) => return self.error(|| format!("a frame that is not a reply: {err}")),
            };
            if reply.method.is_some() && reply.id.is_none() {
                // The peer's own notification (a push): not ours to check.
                return;
            }
            if let Some(batch) = self.plan.batch {
                // Spec §6: a batch is answered with one array. Replies sent
                // one by one would otherwise each count a whole batch. The
                // reply is still checked (its id is no longer waited for),
                // but not counted, its latency included.
                self.check(&reply, now, false);
                self.error(|| {
                    format!("a single reply where a batch reply of {batch} items was due")
                });
                return;
            }
            self.check(&reply, now, counted)
        };
        // `--notify` counts what it sent; the replies are only its probes.
        if good && counted && !self.plan.notify {
            self.tally.requests += 1;
            self.tally.items += self.plan.per_message as u64;
            self.plan.live.messages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Checks one reply: an id we sent and still wait for, no error, the
    /// expected result. Records its latency when it counts.
    fn check(&mut self, reply: &Reply<'_>, now: Instant, counted: bool) -> bool {
        if let Some(method) = reply.method {
            self.error(|| {
                format!(
                    "the peer sent its own request {} where a reply was due",
                    clip(method.get())
                )
            });
            return false;
        }
        let Some(id) = reply.id else {
            self.error(|| "a reply without an id".into());
            return false;
        };
        let number = id.get().parse::<u64>().ok();
        let Some(sent) = number.and_then(|n| self.pending.remove(&n)) else {
            let ours = number.is_some_and(|n| (self.first_id..self.next_id).contains(&n));
            let error = reply.error;
            self.error(|| {
                let what = if ours {
                    format!("a second reply to id {}", id.get())
                } else {
                    format!("a reply to id {}, which was never sent", clip(id.get()))
                };
                match error {
                    Some(error) => format!("{what} (an error: {})", clip(error.get())),
                    None => what,
                }
            });
            return false;
        };
        let fence = number.is_some() && number == self.fence;
        if fence {
            self.tally.last_fence = Some(now);
        }
        if let Some(error) = reply.error {
            self.error(|| format!("an error reply: {}", clip(error.get())));
            return false;
        }
        let Some(result) = reply.result else {
            self.error(|| "a reply with neither result nor error".into());
            return false;
        };
        if let Some(expected) = &self.plan.expect {
            if !expected.matches(result) {
                let want = clip(&expected.text);
                self.error(|| format!("result {} is not the expected {want}", clip(result.get())));
                return false;
            }
        }
        // `--notify`: every probe's latency, which says how far behind the peer ran.
        if counted || fence {
            let micros =
                u64::try_from(now.saturating_duration_since(sent).as_micros()).unwrap_or(u64::MAX);
            self.tally
                .latency_us
                .saturating_record(micros.clamp(1, MAX_LATENCY_US));
        }
        true
    }
}

/// The live line on stderr; hidden with `--json` or when stderr is not a terminal.
struct Progress {
    bar: ProgressBar,
    /// When the rate was last computed, and the message count then.
    last: Cell<(Instant, u64)>,
}

impl Progress {
    fn new(json: bool, plan: &Plan) -> Self {
        let bar = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar
        };
        Self {
            bar,
            last: Cell::new((plan.start, 0)),
        }
    }

    fn update(&self, plan: &Plan) {
        if self.bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        let messages = plan.live.messages.load(Ordering::Relaxed);
        let errors = plan.live.errors.load(Ordering::Relaxed);
        let line = if now < plan.start {
            format!(
                "warming up, {:.1} s to go  errors {errors}",
                (plan.start - now).as_secs_f64()
            )
        } else if now < plan.end && !plan.stop.is_cancelled() {
            let last = self.last.get();
            let elapsed = now.saturating_duration_since(last.0).as_secs_f64();
            let rate = if elapsed > 0.0 {
                messages.saturating_sub(last.1) as f64 / elapsed
            } else {
                0.0
            };
            self.last.set((now, messages));
            format!(
                "{:.1} s of {:.1} s  {rate:.0} msg/s  {messages} messages  errors {errors}",
                (now - plan.start).as_secs_f64(),
                (plan.end - plan.start).as_secs_f64(),
            )
        } else {
            format!("collecting the last replies  {messages} messages  errors {errors}")
        };
        self.bar.set_message(line);
        self.bar.tick();
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The numbers at the end, as text or as one JSON line.
struct Report<'a> {
    args: &'a BenchArgs,
    seconds: f64,
    /// The warm-up that ran: shorter than asked when the run ended early.
    warmup: f64,
    interrupted: bool,
    tally: &'a Tally,
}

impl Report<'_> {
    fn per_second(&self, count: u64) -> f64 {
        if self.seconds > 0.0 {
            (count as f64 / self.seconds * 10.0).round() / 10.0
        } else {
            0.0
        }
    }

    fn percentile(&self, quantile: f64) -> u64 {
        if self.tally.latency_us.is_empty() {
            0
        } else {
            self.tally.latency_us.value_at_quantile(quantile)
        }
    }

    fn json(&self) -> Value {
        let (args, tally) = (self.args, self.tally);
        json!({
            "url": args.url,
            "method": args.method,
            "conns": args.conns,
            "inflight": args.inflight,
            "batch": args.batch,
            "notify": args.notify,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "requests": tally.requests,
            "items": tally.items,
            "rps": self.per_second(tally.requests),
            "items_per_s": self.per_second(tally.items),
            "p50_us": self.latency(|_| self.percentile(0.5)),
            "p90_us": self.latency(|_| self.percentile(0.9)),
            "p99_us": self.latency(|_| self.percentile(0.99)),
            "max_us": self.latency(|t| t.latency_us.max()),
            "bytes_sent": tally.bytes_sent,
            "bytes_received": tally.bytes_received,
            "errors": tally.errors,
            "broken": tally.broken,
            "interrupted": self.interrupted,
            "error_samples": tally.samples,
        })
    }

    /// A latency figure, or `None` when no latency was recorded.
    fn latency(&self, figure: impl Fn(&Tally) -> u64) -> Option<u64> {
        (!self.tally.latency_us.is_empty()).then(|| figure(self.tally))
    }

    fn text(&self) -> String {
        let (args, tally) = (self.args, self.tally);
        let mut out = String::new();
        let what = if args.notify { "notify" } else { "call" };
        let _ = writeln!(
            out,
            "{} {what} `{}`: {} connection{} × {} in flight{}, {:.2} s measured after {:.2} s of warm-up{}",
            args.url,
            args.method,
            args.conns,
            if args.conns == 1 { "" } else { "s" },
            args.inflight,
            args.batch.map(|b| format!(", batches of {b}")).unwrap_or_default(),
            self.seconds,
            self.warmup,
            if self.interrupted { " (interrupted)" } else { "" },
        );
        let name = if args.notify {
            "notifications"
        } else {
            "requests"
        };
        let unit = if args.batch.is_some() {
            "messages"
        } else {
            name
        };
        let _ = writeln!(
            out,
            "  {name:<14}{:.0}/s  ({} {unit}{})",
            self.per_second(tally.requests),
            tally.requests,
            if args.notify {
                ", timed up to each connection's fence reply"
            } else {
                ""
            },
        );
        if args.batch.is_some() {
            let _ = writeln!(
                out,
                "  {:<14}{:.0}/s  ({} items)",
                "items",
                self.per_second(tally.items),
                tally.items
            );
        }
        let latency = if args.notify {
            "probe latency"
        } else {
            "latency"
        };
        if tally.latency_us.is_empty() {
            let _ = writeln!(out, "  {latency:<14}none recorded");
        } else {
            let _ = writeln!(
                out,
                "  {latency:<14}p50 {}  p90 {}  p99 {}  max {}",
                micros(self.percentile(0.5)),
                micros(self.percentile(0.9)),
                micros(self.percentile(0.99)),
                micros(tally.latency_us.max()),
            );
        }
        let _ = writeln!(
            out,
            "  {:<14}{} sent, {} received (JSON text, in the measured time)",
            "bytes",
            bytes(tally.bytes_sent),
            bytes(tally.bytes_received)
        );
        let _ = writeln!(out, "  {:<14}{}", "errors", tally.errors);
        for sample in &tally.samples {
            let _ = writeln!(out, "    {sample}");
        }
        let shown = tally.samples.len() as u64;
        if tally.errors > shown && shown > 0 {
            let _ = writeln!(
                out,
                "    (the first {shown} kinds shown; {} errors in all)",
                tally.errors
            );
        }
        out
    }
}

/// A latency for people: µs below a millisecond, then ms, then s.
fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// A byte count for people, in decimal units.
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_results_compare_as_values() {
        let expected = Expected::new(r#"{"a": [1, 2.0], "b": null}"#).ok();
        let expected = expected.as_ref().expect("valid JSON");
        let raw = |text: &str| RawValue::from_string(text.to_owned()).expect("valid JSON");
        assert!(expected.matches(&raw(r#"{"b":null,"a":[1,2.0]}"#)));
        assert!(!expected.matches(&raw(r#"{"a":[1,2.0]}"#)));
        assert!(!expected.matches(&raw(r#""hello""#)));
    }

    #[test]
    fn replies_read_absent_apart_from_null() {
        let reply: Reply<'_> =
            serde_json::from_str(r#"{"id":null,"result":null,"error":null}"#).expect("a reply");
        assert_eq!(reply.id.map(RawValue::get), Some("null"));
        assert_eq!(reply.result.map(RawValue::get), Some("null"));
        assert!(reply.error.is_none());
        let push: Reply<'_> = serde_json::from_str(r#"{"method":"tick"}"#).expect("a push");
        assert!(push.id.is_none() && push.method.is_some());
    }
}
