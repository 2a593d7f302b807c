#!/usr/bin/env bash
# soak.sh: a load-and-fault soak of `rpcpeer serve`: 1,000 connections over TCP and WebSocket with mixed calls, batches, notifications and abrupt disconnects, and the server's RSS and open descriptors before, during and after.
#
# Usage: benches/soak.sh   (from anywhere; it works from the repo root)
#
# Builds the release `rpcpeer` and `examples/soak` (its module docs say
# what the load is and what counts as an error), starts `rpcpeer serve` on
# 127.0.0.1 port 0 (both listeners), runs the soak against it and prints
# its table and summary, then the server's warnings, if any. Exits with
# the soak's status: 0 when no call failed and the server's descriptors
# and RSS came back to where they started; 1 otherwise; 2 when this
# machine cannot run it (the open files limit is too low).
#
# Needs: bash 4.1+, cargo, Linux /proc. It installs nothing. Its load shares
# the CPUs with the server, so it is not a speed measurement.
#
# Environment (defaults in brackets):
#   CONNS [1000]      connections open at once (half TCP, half WebSocket)
#   DURATION [180]    seconds of load
#   SETTLE [15]       seconds to wait after the last connection closed
#                     before the last reading
#   SAMPLE [5]        seconds between readings
#   THINK_MS [50-350] pause between two operations on a connection, in ms
#   CARGO [cargo]     the cargo command, split on spaces (e.g. to wrap it
#                     in a lock shared with other builds)
#   SERVE_ARGS []     more arguments for `rpcpeer serve`, split on spaces
#   BUILD [1]         0: run the release binaries already built, without
#                     asking cargo (which may wait on a busy build lock)
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-1000}
DURATION=${DURATION:-180}
SETTLE=${SETTLE:-15}
SAMPLE=${SAMPLE:-5}
THINK_MS=${THINK_MS:-50-350}
read -r -a cargo <<<"${CARGO:-cargo}"
read -r -a serve_args <<<"${SERVE_ARGS:-}"

die() {
    echo "soak: $*" >&2
    exit "${2:-1}"
}

for n in CONNS DURATION SETTLE SAMPLE; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'" 2
done
[[ -r /proc/self/status ]] || die "needs Linux /proc" 2

# Each connection takes a descriptor in the soak and one in the server,
# both children of this shell: raise the soft limit as far as allowed.
needed=$((CONNS + 256))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
limit=$(ulimit -n)
if [[ $limit != unlimited ]] && ((limit < needed)); then
    die "the open files limit is $limit (hard limit $(ulimit -Hn)); $CONNS connections need $needed: raise the hard limit or lower CONNS" 2
fi

if [[ ${BUILD:-1} != 0 ]]; then
    "${cargo[@]}" build --release --quiet --bin rpcpeer --example soak
fi
bin=${CARGO_TARGET_DIR:-target}/release

work=$(mktemp -d)
server=
cleanup() {
    if [[ -n $server ]]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/rpcpeer" serve --tcp 127.0.0.1:0 --ws 127.0.0.1:0 "${serve_args[@]}" \
    >"$work/serve.out" 2>"$work/serve.err" &
server=$!
tcp= ws=
for _ in $(seq 100); do
    tcp=$(sed -n 's|^listening on tcp://||p' "$work/serve.out")
    ws=$(sed -n 's|^listening on \(ws://.*\)|\1|p' "$work/serve.out")
    [[ -n $tcp && -n $ws ]] && break
    kill -0 "$server" 2>/dev/null || die "rpcpeer serve exited: $(cat "$work/serve.err")"
    sleep 0.1
done
[[ -n $tcp && -n $ws ]] || die "rpcpeer serve did not say where it listens"
echo "rpcpeer serve (pid $server) on tcp://$tcp and $ws; open files limit $limit"

status=0
"$bin/examples/soak" --tcp "$tcp" --ws "$ws" --server-pid "$server" \
    --conns "$CONNS" --duration "$DURATION" --settle "$SETTLE" --sample "$SAMPLE" \
    --think-ms "$THINK_MS" || status=$?

kill -0 "$server" 2>/dev/null || { echo "soak: the server died" >&2; status=1; }
warnings=$(grep -c -E 'WARN|ERROR' "$work/serve.err" || true)
if ((warnings > 0)); then
    echo "the server logged $warnings warnings or errors; the first ones:"
    grep -E 'WARN|ERROR' "$work/serve.err" | head -10
else
    echo "the server logged no warning"
fi
exit "$status"
