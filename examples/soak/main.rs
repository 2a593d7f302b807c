//! A load-and-fault soak of `rpcpeer serve`: many connections over TCP and WebSocket making mixed calls, batches and notifications, dropped abruptly or closed, while the server's memory and descriptors are watched.
//!
//! `benches/soak.sh` builds and starts the server and runs this against it;
//! by hand:
//!
//! ```sh
//! rpcpeer serve --tcp 127.0.0.1:0 --ws 127.0.0.1:0 &   # prints its two `listening on` lines
//! cargo run --release --example soak -- --tcp 127.0.0.1:PORT --ws ws://127.0.0.1:PORT/ --server-pid PID
//! ```
//!
//! Each of `--conns` tasks keeps one connection open at a time, half of
//! them over TCP and half over WebSocket, and on each connection, either
//! through the library (`Driver`, `Peer`) or on a raw socket with
//! hand-written frames, makes a random series of the demo's calls
//! (`echo`, `sum`, `subtract`, `get_data`, `sleep`, `fail`, `whoami`, an
//! unknown method), pipelined requests, batches, notifications, JSON-RPC
//! 1.0 requests, `callback`s, and the chat (`join`, `postMessage`, and the
//! pushes that come back), with a pause between operations. Each
//! connection then ends in one of four ways: a graceful close, a drop
//! with calls running, a drop halfway through a frame, or a drop while
//! idle; and the task connects again, until `--duration` is over.
//!
//! Every reply is checked: its id, its version, and the result or the
//! error code the call must get. An error is a wrong or missing reply, a
//! connection the server refused or closed, a message we did not expect;
//! a call cut off by our own drop is counted as interrupted, not as an
//! error.
//!
//! Every `--sample` seconds it prints a row: our open connections, the
//! counts so far, the server's RSS (VmRSS) and open descriptors (read from
//! /proc, so the server must run on this machine). Once every connection
//! is gone it waits `--settle` seconds and prints the last row, then a
//! summary. Exit status 0 only when there was no error, the server's
//! descriptors came back to where they started and its RSS came back to
//! within twice its starting RSS or 20 MiB above it; 1 otherwise, 2 for
//! bad usage.

mod library;
mod probe;
mod raw;
mod stats;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use stats::Stats;
use workload::{Ending, Rng, Script};

/// Which listener a task connects to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Over {
    Tcp,
    Ws,
}

/// What every connection task shares.
pub(crate) struct Plan {
    /// `HOST:PORT` of the newline-framed TCP listener.
    pub(crate) tcp: String,
    /// `ws://HOST:PORT/`.
    pub(crate) ws: String,
    /// When tasks stop starting operations and end their connections.
    pub(crate) deadline: Instant,
    /// The pause between two operations, in ms: at least, at most.
    pub(crate) think_ms: (u64, u64),
    /// Operations per connection: at least, at most.
    pub(crate) ops: (u64, u64),
    /// Percent of connections that join the chat.
    pub(crate) join_percent: u64,
    /// How long a reply (or a connection, or a close) may take before it
    /// counts as an error.
    pub(crate) reply_timeout: Duration,
}

impl Plan {
    /// Whether the load is over.
    pub(crate) fn over(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The pause between two operations.
pub(crate) async fn think(plan: &Plan, rng: &mut Rng) {
    let ms = rng.range(plan.think_ms.0, plan.think_ms.1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Command-line arguments.
struct Args {
    tcp: String,
    ws: String,
    server_pid: u32,
    conns: u64,
    duration: Duration,
    settle: Duration,
    sample: Duration,
    think_ms: (u64, u64),
    seed: u64,
}

const USAGE: &str = "usage: soak --tcp HOST:PORT --ws ws://HOST:PORT/ --server-pid PID \
    [--conns 1000] [--duration SECONDS (180)] [--settle SECONDS (15)] [--sample SECONDS (5)] \
    [--think-ms MIN-MAX (50-350)] [--seed N (1)]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tcp: String::new(),
        ws: String::new(),
        server_pid: 0,
        conns: 1000,
        duration: Duration::from_secs(180),
        settle: Duration::from_secs(15),
        sample: Duration::from_secs(5),
        think_ms: (50, 350),
        seed: 1,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a whole number"))
        };
        match flag.as_str() {
            "--tcp" => args.tcp = value,
            "--ws" => args.ws = value,
            "--server-pid" => {
                args.server_pid = u32::try_from(number(&value)?)
                    .map_err(|_| "--server-pid: too large".to_owned())?
            }
            "--conns" => args.conns = number(&value)?,
            "--duration" => args.duration = Duration::from_secs(number(&value)?),
            "--settle" => args.settle = Duration::from_secs(number(&value)?),
            "--sample" => args.sample = Duration::from_secs(number(&value)?.max(1)),
            "--think-ms" => {
                let (lo, hi) = value.split_once('-').ok_or("--think-ms takes MIN-MAX")?;
                args.think_ms = (number(lo)?, number(hi)?);
                if args.think_ms.0 > args.think_ms.1 {
                    return Err("--think-ms: MIN is above MAX".to_owned());
                }
            }
            "--seed" => args.seed = number(&value)?,
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    if args.tcp.is_empty() || !args.ws.starts_with("ws://") || args.server_pid == 0 {
        return Err("--tcp, --ws (ws://…) and --server-pid are needed".to_owned());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("soak: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Each connection takes a descriptor here and one in the server; a
    // soak that ran out of them would report the limit, not the server.
    let needed = args.conns + 64;
    match probe::open_files_limit() {
        Some(limit) if limit < needed => {
            eprintln!("soak: the open files limit is {limit}, {needed} are needed for {} connections: raise it (ulimit -n) for this process and the server's", args.conns);
            return ExitCode::from(2);
        }
        _ => {}
    }
    let before = match probe::read(args.server_pid) {
        Ok(reading) => reading,
        Err(err) => {
            eprintln!(
                "soak: cannot read the server process {}: {err}",
                args.server_pid
            );
            return ExitCode::from(2);
        }
    };
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let plan = Arc::new(Plan {
        tcp: args.tcp.clone(),
        ws: args.ws.clone(),
        deadline: start + args.duration,
        think_ms: args.think_ms,
        ops: (5, 60),
        join_percent: 5,
        reply_timeout: Duration::from_secs(30),
    });
    println!(
        "soak: {} connections ({} TCP, {} WebSocket) for {} s against pid {}; the server's RSS and descriptors every {} s",
        args.conns,
        args.conns.div_ceil(2),
        args.conns / 2,
        args.duration.as_secs(),
        args.server_pid,
        args.sample.as_secs()
    );
    let mut table = Table::new(before);
    table.row("before", start, &stats, before);

    // Connections open over the first two seconds, not in one burst
    // larger than the listen backlog.
    let ramp = Duration::from_secs(2);
    let workers: Vec<_> = (0..args.conns)
        .map(|id| {
            let (plan, stats) = (plan.clone(), stats.clone());
            let delay = ramp * id as u32 / args.conns.max(1) as u32;
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(id);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                worker(id, seed, &plan, &stats).await;
            })
        })
        .collect();
    let all_done = futures::future::join_all(workers);
    tokio::pin!(all_done);
    let mut tick = tokio::time::interval_at(start + args.sample, args.sample);
    loop {
        tokio::select! {
            _ = &mut all_done => break,
            _ = tick.tick() => {
                match probe::read(args.server_pid) {
                    Ok(reading) => table.row("during", start, &stats, reading),
                    Err(err) => {
                        eprintln!("soak: the server is gone: {err}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    let closed = Instant::now();
    println!(
        "-- every connection is closed ({:.0} s after the load ended); waiting {} s",
        (closed - plan.deadline).as_secs_f64().max(0.0),
        args.settle.as_secs()
    );
    let mut after = before;
    let settled = closed + args.settle;
    while Instant::now() < settled {
        tokio::time::sleep(args.sample.min(settled - Instant::now())).await;
        after = match probe::read(args.server_pid) {
            Ok(reading) => reading,
            Err(err) => {
                eprintln!("soak: the server is gone: {err}");
                return ExitCode::FAILURE;
            }
        };
        let phase = if Instant::now() >= settled {
            "after"
        } else {
            "settle"
        };
        table.row(phase, start, &stats, after);
    }
    if table.summary(&stats, after) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One task: connection after connection until the deadline.
async fn worker(id: u64, seed: u64, plan: &Plan, stats: &Arc<Stats>) {
    let over = if id % 2 == 0 { Over::Tcp } else { Over::Ws };
    let mut rng = Rng::new(seed);
    let mut session = 0;
    while !plan.over() {
        session += 1;
        let script = Script {
            ops: rng.range(plan.ops.0, plan.ops.1),
            name: format!("soak-{id}-{session}"),
            ending: Ending::pick(&mut rng),
        };
        if rng.chance(50) {
            library::session(over, plan, &mut rng, stats, script).await;
        } else {
            raw::session(over, plan, &mut rng, stats, script).await;
        }
    }
}

/// The rows printed as the soak goes, and what the summary needs of them.
struct Table {
    before: probe::Reading,
    /// The sample with the highest RSS.
    peak: probe::Reading,
}

impl Table {
    fn new(before: probe::Reading) -> Self {
        println!(
            "{:<7} {:>5} {:>6} {:>10} {:>10} {:>11} {:>6} {:>9} {:>6}",
            "phase",
            "t(s)",
            "conns",
            "calls",
            "checked",
            "interrupted",
            "errors",
            "rss(MiB)",
            "fds"
        );
        Table {
            before,
            peak: before,
        }
    }

    fn row(&mut self, phase: &str, start: Instant, stats: &Stats, reading: probe::Reading) {
        if reading.rss_kib > self.peak.rss_kib {
            self.peak = reading;
        }
        println!(
            "{:<7} {:>5.0} {:>6} {:>10} {:>10} {:>11} {:>6} {:>9.1} {:>6}",
            phase,
            start.elapsed().as_secs_f64(),
            stats.open(),
            Stats::get(&stats.calls),
            Stats::get(&stats.checked),
            Stats::get(&stats.interrupted),
            stats.errors(),
            mib(reading.rss_kib),
            reading.fds
        );
    }

    /// Prints the summary; true when the run passed.
    fn summary(&self, stats: &Stats, after: probe::Reading) -> bool {
        let (before, peak) = (self.before, self.peak);
        println!();
        println!(
            "calls {} (replies checked right {}, interrupted by our own drops {}), errors {}",
            Stats::get(&stats.calls),
            Stats::get(&stats.checked),
            Stats::get(&stats.interrupted),
            stats.errors()
        );
        println!(
            "notifications {}, batches {}, chat pushes received {}, server callbacks answered {}",
            Stats::get(&stats.notifications),
            Stats::get(&stats.batches),
            Stats::get(&stats.pushes),
            Stats::get(&stats.callbacks)
        );
        println!(
            "connections {}: closed gracefully {}, dropped mid-call {}, mid-frame {}, idle {}",
            Stats::get(&stats.connects),
            Stats::get(&stats.graceful),
            Stats::get(&stats.mid_call),
            Stats::get(&stats.mid_frame),
            Stats::get(&stats.dropped_idle)
        );
        // The server's connections at the peak, from its descriptors.
        let conns_at_peak = peak.fds.saturating_sub(before.fds);
        let per_conn =
            (peak.rss_kib.saturating_sub(before.rss_kib) as f64) / (conns_at_peak.max(1) as f64);
        println!(
            "server RSS: before {:.1} MiB, peak {:.1} MiB (with {conns_at_peak} connections: {per_conn:.0} KiB each above the start), after {:.1} MiB",
            mib(before.rss_kib),
            mib(peak.rss_kib),
            mib(after.rss_kib)
        );
        println!(
            "server descriptors: before {}, peak {}, after {}",
            before.fds, peak.fds, after.fds
        );
        let first = stats.first_errors();
        if !first.is_empty() {
            println!("first errors:");
            for error in &first {
                println!("  {error}");
            }
        }
        let no_errors = stats.errors() == 0;
        let fds_back = after.fds <= before.fds;
        let rss_back = after.rss_kib <= (2 * before.rss_kib).max(before.rss_kib + 20 * 1024);
        println!(
            "verdict: errors {}; descriptors back to the start {}; RSS back near the start (within 2x or 20 MiB) {}",
            if no_errors { "none" } else { "SOME" },
            yes(fds_back),
            yes(rss_back)
        );
        no_errors && fds_back && rss_back
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
