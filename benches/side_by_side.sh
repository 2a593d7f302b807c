#!/usr/bin/env bash
# side_by_side.sh: rpcpeer's servers against jsonrpsee, a naive serde_json server and raw echo servers, under the same `rpcpeer bench` load, in one run.
#
# The raw echoes parse nothing: the practical limit of the machine and the
# generator. Where a target is set against one, the same echo with
# `--check-json` (each message read whole as JSON, as the spec has every
# server do, and nothing more) runs beside it: the floor of any conforming
# server on these framings.
#
# Usage: benches/side_by_side.sh   (from anywhere; it works from the repo root)
#
# Needs: bash 4.1+, cargo, python3 (parses the bench's JSON and prints the
# table), coreutils (timeout, mktemp), taskset (util-linux), Linux /proc.
# It installs nothing. About 13 minutes with the defaults on 2 CPUs.
# Run it on a quiet machine: the load generator and the server share the
# cores, and any other busy process moves the numbers.
#
# Environment (defaults in brackets):
#   ROUNDS [3]          rounds per scenario; servers take turns going first,
#                       and each figure is the median over the rounds
#   DURATION [5]        measured seconds of each bench run
#   WARMUP [1]          seconds of load before the measurement starts
#   BATCH_INFLIGHT [8]  batches in flight per connection in the batch scenario
#   IDLE [1000]         connections held open by the memory test
#   SWEEP_ROUNDS [1]    rounds of the in-flight sweep (5 depths x 3 servers)
#   LATENCY_ROUNDS [5]  rounds of the one-CPU latency scenarios, each with
#                       fresh server processes (see `scenario`)
#   OUT [target/side_by_side]  where the results go: side_by_side.jsonl
#                       (every bench run's JSON, plus ours),
#                       side_by_side.csv (the sweep: depth,server,rps) and,
#                       with CHART=1, chart.svg. `OUT=benches` refreshes the
#                       committed ones that BENCHMARKS.md shows.
#   CHART [0]           1: also draw the sweep into $OUT/chart.svg
#   STRICT [0]          1: exit 1 when a target is missed
#   CARGO [cargo]       the cargo command, split on spaces (e.g. to wrap it
#                       in a lock shared with other builds)
#   BENCH [the built `rpcpeer bench`]  the load generator, split on spaces;
#                       it must take `rpcpeer bench`'s arguments
#   RPCPEER [the built `rpcpeer`]  the `rpcpeer` binary whose `serve` is
#                       measured, such as the one benches/pgo.sh builds
#                       (a relative path is taken from where the script
#                       was started); the load generator stays the built one
#
# Every server listens on 127.0.0.1 port 0 and says where on stdout; every
# one this script starts is killed when it exits, however it exits.
set -euo pipefail
# NB: before the `cd`, so that a relative path means what it did where
# the script was started.
if [[ -n ${RPCPEER:-} ]]; then
    RPCPEER=$(realpath -- "$RPCPEER")
fi
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
BATCH_INFLIGHT=${BATCH_INFLIGHT:-8}
IDLE=${IDLE:-1000}
SWEEP_ROUNDS=${SWEEP_ROUNDS:-1}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-5}
OUT=${OUT:-target/side_by_side}
mkdir -p "$OUT"
CSV=$OUT/side_by_side.csv
RESULTS=$OUT/side_by_side.jsonl
CHART=${CHART:-0}
STRICT=${STRICT:-0}
read -r -a cargo <<<"${CARGO:-cargo}"

die() {
    echo "side_by_side: $*" >&2
    exit 1
}

for n in ROUNDS DURATION WARMUP BATCH_INFLIGHT IDLE SWEEP_ROUNDS LATENCY_ROUNDS; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
command -v python3 >/dev/null || die "needs python3"
[[ -r /proc/self/stat ]] || die "needs Linux /proc"

work=$(mktemp -d)
# Every process this script started and has not yet reaped.
pids=()
forget() {
    local keep=() p
    for p in "${pids[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    pids=("${keep[@]}")
}
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build

examples=(--example cmp_naive --example cmp_raw_echo --example cmp_jsonrpsee)
[[ $CHART == 1 ]] && examples+=(--example chart)
"${cargo[@]}" build --release --bin rpcpeer "${examples[@]}"
target=$("${cargo[@]}" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# Copies, so that a build started while this runs cannot swap a binary
# between one scenario and the next.
mkdir "$work/bin"
cp "$target/release/rpcpeer" "$work/bin/"
for e in "${examples[@]}"; do
    [[ $e == --example ]] || cp "$target/release/examples/$e" "$work/bin/"
done
rpcpeer=$work/bin/rpcpeer
served=$rpcpeer
if [[ -n ${RPCPEER:-} ]]; then
    [[ -x $RPCPEER ]] || die "RPCPEER=$RPCPEER is not an executable"
    cp "$RPCPEER" "$work/bin/served"
    served=$work/bin/served
    echo "== rpcpeer's servers run $RPCPEER"
fi
ex=$work/bin
if [[ -n ${BENCH:-} ]]; then
    read -r -a bench <<<"$BENCH"
else
    bench=("$rpcpeer" bench)
fi
"${bench[@]}" --help >/dev/null 2>&1 || die "no load generator: \`${bench[*]} --help\` failed"

tck=$(getconf CLK_TCK)
# 1,000 idle connections and the bench's own need more descriptors than
# the usual soft limit of 1,024; the servers inherit this one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) > IDLE + 64)) || die "the descriptor limit $(ulimit -n) is too low for IDLE=$IDLE"

# ---------------------------------------------------------------- servers

# A logical server is one URL of one process: rpcpeer's one process
# serves both rpcpeer-tcp and rpcpeer-ws.
declare -A proc_of=(
    [rpcpeer-tcp]=rpcpeer [rpcpeer-ws]=rpcpeer [naive]=naive
    [raw-tcp]=raw_tcp [raw-ws]=raw_ws [jsonrpsee]=jsonrpsee
    [json-tcp]=json_tcp [json-ws]=json_ws
)
declare -A scheme_of=(
    [rpcpeer-tcp]=tcp [rpcpeer-ws]=ws [naive]=tcp
    [raw-tcp]=tcp [raw-ws]=ws [jsonrpsee]=ws
    [json-tcp]=tcp [json-ws]=ws
)
declare -A pid_of url_of log_of
starts=0

# The one place that says how each process is started: sets `cmd`.
proc_command() {
    case $1 in
    rpcpeer) cmd=("$served" serve --tcp 127.0.0.1:0 --ws 127.0.0.1:0) ;;
    naive) cmd=("$ex/cmp_naive" 127.0.0.1:0) ;;
    raw_tcp) cmd=("$ex/cmp_raw_echo" --tcp 127.0.0.1:0) ;;
    raw_ws) cmd=("$ex/cmp_raw_echo" --ws 127.0.0.1:0) ;;
    json_tcp) cmd=("$ex/cmp_raw_echo" --tcp 127.0.0.1:0 --check-json) ;;
    json_ws) cmd=("$ex/cmp_raw_echo" --ws 127.0.0.1:0 --check-json) ;;
    jsonrpsee) cmd=("$ex/cmp_jsonrpsee" 127.0.0.1:0) ;;
    *) die "no such server process: $1" ;;
    esac
}

# start_proc NAME: starts it and waits (30 s at most) for its `listening on`
# lines; sets pid_of[NAME] and url_of[NAME.tcp] / url_of[NAME.ws].
start_proc() {
    local name=$1 want=1 cmd=() line
    [[ $name == rpcpeer ]] && want=2
    proc_command "$name"
    # NB: new files for each start: the shell truncates a reused one only
    # once the child runs, so the wait below could read the last start's
    # addresses.
    starts=$((starts + 1))
    local out=$work/$name.$starts.out
    log_of[$name]=$work/$name.$starts.err
    : >"$out"
    "${pin[@]}" "${cmd[@]}" >"$out" 2>"${log_of[$name]}" </dev/null &
    pid_of[$name]=$!
    pids+=("$!")
    local deadline=$((SECONDS + 30))
    until (($(grep -c '^listening on ' "$out" || true) >= want)); do
        kill -0 "${pid_of[$name]}" 2>/dev/null || die "$name exited at start: $(tail -n 5 "${log_of[$name]}")"
        ((SECONDS < deadline)) || die "$name did not say where it listens within 30 s"
        sleep 0.05
    done
    while read -r line; do
        case $line in
        "listening on tcp://"*) url_of[$name.tcp]=${line#listening on } ;;
        "listening on ws://"*) url_of[$name.ws]=${line#listening on } ;;
        esac
    done <"$out"
}

# stop_proc NAME: SIGTERM, then SIGKILL after 6 s (rpcpeer's graceful stop
# promises 5).
stop_proc() {
    local pid=${pid_of[$1]} i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
    unset "pid_of[$1]"
}

server_pid() { echo "${pid_of[${proc_of[$1]}]}"; }
server_url() { echo "${url_of[${proc_of[$1]}.${scheme_of[$1]}]}"; }

# Of the whole process, every thread: /proc/PID/stat fields 14 and 15, in
# clock ticks. The command name, field 2, is cut off first since it may
# hold spaces.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- load

: >"$work/results.jsonl"

# measure SCENARIO SERVER ROUND BENCH-ARGS...: one bench run against one
# server. Server CPU is read once the warm-up is over and again once the
# bench has exited, so it covers the measured seconds (and the bench's
# short teardown); RSS is sampled every 0.25 s in between.
measure() {
    local scenario=$1 server=$2 round=$3
    shift 3
    local spid url out=$work/bench.out
    spid=$(server_pid "$server")
    url=$(server_url "$server")
    local args=(--json --duration "$DURATION" --warmup "$WARMUP" "$@")
    [[ $url == tcp://* ]] && args+=(--framing newline)

    local rss0 c0 c1 rc=0 bpid samples=()
    rss0=$(rss_kib "$spid")
    timeout $((DURATION + WARMUP + 60)) "${pin[@]}" "${bench[@]}" "$url" "${args[@]}" \
        >"$out" 2>"$work/bench.err" </dev/null &
    bpid=$!
    pids+=("$bpid")
    sleep "$WARMUP"
    c0=$(cpu_ticks "$spid")
    while kill -0 "$bpid" 2>/dev/null; do
        samples+=("$(rss_kib "$spid")")
        sleep 0.25
    done
    wait "$bpid" || rc=$?
    forget "$bpid"
    kill -0 "$spid" 2>/dev/null || die "$server died under load: $(tail -n 5 "${log_of[${proc_of[$server]}]}")"
    c1=$(cpu_ticks "$spid")

    local json
    json=$(grep '^{' "$out" | tail -n 1 || true)
    if [[ $rc != 0 || -z $json ]]; then
        echo "  $scenario $server: bench failed (exit $rc): $(tail -n 3 "$work/bench.err")" >&2
        json='{}'
        # Counted as a failed run in the table even when the exit was 0.
        [[ $rc != 0 ]] || rc=1
    fi
    python3 - "$work/results.jsonl" "$json" "$scenario" "$server" "$round" "$rc" \
        "$((c1 - c0))" "$tck" "$rss0" "${samples[*]:-}" <<'PY'
import json, sys
path, raw, scenario, server, rnd, rc, ticks, tck, rss0, samples = sys.argv[1:]
run = json.loads(raw)
rss = [int(s) for s in samples.split()] or [int(rss0)]
half = rss[len(rss) // 2:]
run.update(
    scenario=scenario, server=server, round=int(rnd), bench_exit=int(rc),
    server_cpu_s=int(ticks) / int(tck),
    rss_before_kib=int(rss0),
    rss_peak_kib=max(rss),
    # Growth over the second half of the run: what an unbounded queue shows.
    rss_growth_late_kib=half[-1] - half[0],
)
with open(path, "a") as out:
    out.write(json.dumps(run) + "\n")
n = run.get("items") or run.get("requests") or 0
cpu = 1e6 * run["server_cpu_s"] / n if n else float("nan")
rate = run.get("items_per_s") or run.get("rps") or 0
print(f"  {scenario:<16} {server:<12} round {rnd}: {rate:>10.0f}/s  "
      f"cpu {cpu:6.2f} us/item  p50 {run.get('p50_us', '?')} us  errors {run.get('errors', '?')}")
PY
}

# scenario NAME "SERVERS" BENCH-ARGS...: fresh processes, ROUNDS rounds,
# each starting with the next server in turn. With FRESH=1, the processes
# are started again for every round: one request at a time, the same
# binary's p50 differs more between two processes (where its memory and
# threads landed) than between two rounds of one, so each round then
# samples that too.
scenario() {
    local name=$1 r i p servers=()
    read -r -a servers <<<"$2"
    shift 2
    echo "== $name: $*"
    local procs=()
    for i in "${servers[@]}"; do
        [[ " ${procs[*]} " == *" ${proc_of[$i]} "* ]] || procs+=("${proc_of[$i]}")
    done
    local n=${#servers[@]}
    for ((r = 0; r < ROUNDS; r++)); do
        if ((r == 0 || ${FRESH:-0})); then
            for p in "${procs[@]}"; do start_proc "$p"; done
        fi
        for ((i = 0; i < n; i++)); do
            measure "$name" "${servers[(i + r) % n]}" "$r" "$@"
        done
        if ((r == ROUNDS - 1 || ${FRESH:-0})); then
            for p in "${procs[@]}"; do stop_proc "$p"; done
        fi
    done
}

echo_args=(--method echo --params '["hello"]' --expect '"hello"')
# Empty: the servers and the bench use every core. The latency scenarios
# set it to put server and client on one CPU, so a request's round trip
# is the work of both and no cross-CPU wake-up.
pin=()

scenario tcp_echo_4x64 "rpcpeer-tcp naive raw-tcp" "${echo_args[@]}" --conns 4 --inflight 64
scenario ws_echo_4x64 "rpcpeer-ws jsonrpsee raw-ws" "${echo_args[@]}" --conns 4 --inflight 64
scenario ws_batch100 "rpcpeer-ws jsonrpsee" "${echo_args[@]}" --batch 100 --conns 4 --inflight "$BATCH_INFLIGHT"
# `update` is a notification rpcpeer's demo accepts; jsonrpsee has it too.
# The raw echo, which reads each frame and parses nothing, is the ceiling
# of what this generator can send on these CPUs; the checking echo, the
# ceiling of a server that must read each notification as JSON.
scenario ws_notify "rpcpeer-ws jsonrpsee raw-ws json-ws" --notify --method update --params '["hello"]' --conns 4 --inflight 64
scenario ws_sleep_1x64 "rpcpeer-ws jsonrpsee" --method sleep --params '[10]' --expect 10 --conns 1 --inflight 64
command -v taskset >/dev/null || die "needs taskset (util-linux) for the one-CPU latency scenarios"
pin=(taskset -c 0)
saved_rounds=$ROUNDS
ROUNDS=$LATENCY_ROUNDS
FRESH=1
scenario tcp_latency_1x1 "rpcpeer-tcp raw-tcp naive json-tcp" "${echo_args[@]}" --conns 1 --inflight 1
scenario ws_latency_1x1 "rpcpeer-ws raw-ws jsonrpsee" "${echo_args[@]}" --conns 1 --inflight 1
FRESH=0
ROUNDS=$saved_rounds
pin=()

# ---------------------------------------------------------------- idle memory

: >"$work/idle.tsv"

# idle SERVER: a fresh process (so freed memory from an earlier test cannot
# hide new allocations), RSS before, and again once IDLE connections are held.
idle() {
    local server=$1 proc=${proc_of[$1]} url pid before after bpid hold i
    start_proc "$proc"
    pid=${pid_of[$proc]}
    url=$(server_url "$server")
    sleep 0.5
    before=$(rss_kib "$pid")
    local fifo=$work/idle.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    : >"$work/idle.$server.out"
    # stdin is a pipe this script holds open: closing it is the bench's
    # signal to let go. The timeout is only a backstop.
    timeout 120 "${bench[@]}" "$url" --idle "$IDLE" \
        <"$fifo" >"$work/idle.$server.out" 2>"$work/idle.$server.err" &
    bpid=$!
    pids+=("$bpid")
    # Opening the write end is what lets the bench's stdin open.
    exec {hold}>"$fifo"
    local deadline=$((SECONDS + 90))
    until grep -q "holding $IDLE idle connections" "$work/idle.$server.out"; do
        kill -0 "$bpid" 2>/dev/null || die "bench --idle against $server exited: $(tail -n 3 "$work/idle.$server.err")"
        ((SECONDS < deadline)) || die "bench --idle against $server did not connect within 90 s"
        sleep 0.1
    done
    # Let the server finish whatever each new connection set off.
    sleep 1
    after=$(rss_kib "$pid")
    exec {hold}>&-
    for ((i = 0; i < 100; i++)); do
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$bpid" 2>/dev/null || true
    wait "$bpid" 2>/dev/null || true
    forget "$bpid"
    stop_proc "$proc"
    printf '%s\t%s\t%s\t%s\n' "$server" "$before" "$after" "$IDLE" >>"$work/idle.tsv"
    echo "  idle $server: $before -> $after KiB for $IDLE connections"
}

echo "== idle: $IDLE connections"
for s in rpcpeer-tcp rpcpeer-ws naive raw-tcp raw-ws jsonrpsee; do idle "$s"; done

# ---------------------------------------------------------------- sweep

echo "== sweep: 4 connections over WebSocket, in flight 1..256"
saved_rounds=$ROUNDS
ROUNDS=$SWEEP_ROUNDS
for depth in 1 4 16 64 256; do
    scenario "sweep_$depth" "rpcpeer-ws jsonrpsee raw-ws" "${echo_args[@]}" --conns 4 --inflight "$depth"
done
ROUNDS=$saved_rounds

# ---------------------------------------------------------------- report

cp "$work/results.jsonl" "$RESULTS"
# The idle-memory test's one measurement per server, beside the runs.
python3 - "$work/idle.tsv" >>"$RESULTS" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    server, before, after, conns = line.split()
    print(json.dumps({"scenario": "idle", "server": server, "connections": int(conns),
                      "rss_before_kib": int(before), "rss_after_kib": int(after)}))
PY
status=0
python3 - "$work/results.jsonl" "$work/idle.tsv" "$CSV" "$STRICT" <<'PY' || status=$?
import json, math, statistics, sys

results_path, idle_path, csv_path, strict = sys.argv[1:]
runs = [json.loads(line) for line in open(results_path) if line.strip()]

def items(r):
    return r.get("items") or r.get("requests") or 0

def metric(r, key):
    if key == "rate":
        return r.get("items_per_s") or r.get("rps") or 0.0
    if key == "cpu_us":
        n = items(r)
        return 1e6 * r["server_cpu_s"] / n if n else math.nan
    if key == "rss_peak_mib":
        return r["rss_peak_kib"] / 1024
    if key == "rss_growth_late_mib":
        return r["rss_growth_late_kib"] / 1024
    return r.get(key, math.nan)

groups = {}
for r in runs:
    groups.setdefault((r["scenario"], r["server"]), []).append(r)

def med(scenario, server, key):
    rs = groups.get((scenario, server))
    if not rs:
        return math.nan
    values = [metric(r, key) for r in rs]
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else math.nan

def errors(scenario, server):
    rs = groups.get((scenario, server), [])
    return sum(int(r.get("errors") or 0) for r in rs) + sum(1 for r in rs if r["bench_exit"])

print()
print(f"medians of the rounds; CPU is the server's, per request (per item in a batch)")
head = f"{'scenario':<16} {'server':<12} {'items/s':>10} {'cpu us/item':>11} {'p50 us':>8} {'p99 us':>8} {'peak RSS MiB':>12} {'errors':>6}"
print(head)
print("-" * len(head))
for (scenario, server) in groups:
    if scenario.startswith("sweep_"):
        continue
    print(f"{scenario:<16} {server:<12} {med(scenario, server, 'rate'):>10.0f} "
          f"{med(scenario, server, 'cpu_us'):>11.2f} {med(scenario, server, 'p50_us'):>8.0f} "
          f"{med(scenario, server, 'p99_us'):>8.0f} {med(scenario, server, 'rss_peak_mib'):>12.1f} "
          f"{errors(scenario, server):>6}")

idle = {}
for line in open(idle_path):
    server, before, after, n = line.split("\t")
    idle[server] = (int(after) - int(before)) / int(n)
print()
print("idle connections: server RSS growth per connection")
for server, kib in idle.items():
    print(f"  {server:<12} {kib:7.1f} KiB")

checks = []
def check(label, value, op, bound):
    ok = (value <= bound) if op == "<=" else (value >= bound)
    if math.isnan(value):
        ok = False
    checks.append(ok)
    print(f"  {'PASS' if ok else 'MISS'}  {label}: {value:.3g} (target {op} {bound:g})")

def ratio(a, b):
    return a / b if b else math.nan

print()
print("targets")
s = "tcp_echo_4x64"
check("TCP 4x64 echo, CPU/request rpcpeer / naive", ratio(med(s, "rpcpeer-tcp", "cpu_us"), med(s, "naive", "cpu_us")), "<=", 1)
check("TCP 4x64 echo, req/s rpcpeer / raw echo", ratio(med(s, "rpcpeer-tcp", "rate"), med(s, "raw-tcp", "rate")), ">=", 0.4)
s = "ws_echo_4x64"
check("WS 4x64 echo, req/s rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "rate"), med(s, "jsonrpsee", "rate")), ">=", 5)
check("WS 4x64 echo, CPU/request rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "cpu_us"), med(s, "jsonrpsee", "cpu_us")), "<=", 0.2)
s = "ws_batch100"
check("WS batches of 100, items/s rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "rate"), med(s, "jsonrpsee", "rate")), ">=", 2)
s = "ws_notify"
check("WS notifications, msgs/s rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "rate"), med(s, "jsonrpsee", "rate")), ">=", 10)
# Bounded: a queue that grows with the load would still be growing in the
# second half of the run; a bounded one has stopped.
check("WS notifications, rpcpeer RSS growth over the run's second half, MiB", med(s, "rpcpeer-ws", "rss_growth_late_mib"), "<=", 16)
s = "ws_sleep_1x64"
# "No worse": 2% is allowed for noise, since both are bound by the sleeps.
check("WS 64 x sleep 10 ms on one connection, req/s rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "rate"), med(s, "jsonrpsee", "rate")), ">=", 0.98)
check("WS 64 x sleep 10 ms on one connection, p99 rpcpeer / jsonrpsee", ratio(med(s, "rpcpeer-ws", "p99_us"), med(s, "jsonrpsee", "p99_us")), "<=", 1.02)
check("TCP one at a time, p50 rpcpeer / raw echo", ratio(med("tcp_latency_1x1", "rpcpeer-tcp", "p50_us"), med("tcp_latency_1x1", "raw-tcp", "p50_us")), "<=", 1.1)
check("WS one at a time, p50 rpcpeer / raw echo", ratio(med("ws_latency_1x1", "rpcpeer-ws", "p50_us"), med("ws_latency_1x1", "raw-ws", "p50_us")), "<=", 1.1)
check("idle TCP connections, rpcpeer KiB each", idle.get("rpcpeer-tcp", math.nan), "<=", 16)
check("idle WS connections, rpcpeer KiB each", idle.get("rpcpeer-ws", math.nan), "<=", 16)
print()
print("for reference")
for label, a, b in [
    ("TCP 4x64 echo, req/s rpcpeer / naive", ("tcp_echo_4x64", "rpcpeer-tcp"), ("tcp_echo_4x64", "naive")),
    ("WS 4x64 echo, req/s rpcpeer / raw echo", ("ws_echo_4x64", "rpcpeer-ws"), ("ws_echo_4x64", "raw-ws")),
    ("WS batches of 100, CPU/item rpcpeer / jsonrpsee", ("ws_batch100", "rpcpeer-ws", "cpu_us"), ("ws_batch100", "jsonrpsee", "cpu_us")),
    ("WS notifications, CPU/msg rpcpeer / jsonrpsee", ("ws_notify", "rpcpeer-ws", "cpu_us"), ("ws_notify", "jsonrpsee", "cpu_us")),
    ("WS notifications, msgs/s rpcpeer / raw echo", ("ws_notify", "rpcpeer-ws"), ("ws_notify", "raw-ws")),
    ("WS notifications, msgs/s raw echo / jsonrpsee (the most any server could reach)", ("ws_notify", "raw-ws"), ("ws_notify", "jsonrpsee")),
    ("WS notifications, msgs/s checking echo / jsonrpsee (the most a server that reads JSON could reach)", ("ws_notify", "json-ws"), ("ws_notify", "jsonrpsee")),
    ("WS notifications, msgs/s rpcpeer / checking echo", ("ws_notify", "rpcpeer-ws"), ("ws_notify", "json-ws")),
    ("TCP one at a time, p50 checking echo / raw echo", ("tcp_latency_1x1", "json-tcp", "p50_us"), ("tcp_latency_1x1", "raw-tcp", "p50_us")),
    ("TCP one at a time, p50 rpcpeer / checking echo", ("tcp_latency_1x1", "rpcpeer-tcp", "p50_us"), ("tcp_latency_1x1", "json-tcp", "p50_us")),
]:
    key = a[2] if len(a) > 2 else "rate"
    print(f"  {label}: {ratio(med(a[0], a[1], key), med(b[0], b[1], key)):.3g}")

with open(csv_path, "w") as csv:
    csv.write("depth,server,rps\n")
    for (scenario, server) in groups:
        if scenario.startswith("sweep_"):
            depth = scenario[len("sweep_"):]
            csv.write(f"{depth},{server},{med(scenario, server, 'rps'):.0f}\n")
print()
print(f"sweep written to {csv_path}")
sys.exit(1 if strict == "1" and not all(checks) else 0)
PY

if [[ $CHART == 1 ]]; then
    "$ex/chart" "$CSV" "$OUT/chart.svg"
    echo "chart written to $OUT/chart.svg"
fi
exit "$status"
