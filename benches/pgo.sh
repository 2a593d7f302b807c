#!/usr/bin/env bash
# pgo.sh: builds `rpcpeer` with profile-guided optimization (PGO), trained
# on the loads that side_by_side.sh measures.
#
# Why: on a small message much of the server's time goes to code that the
# compiler lays out without knowing which branches are hot. A build that
# knows, from a run of the real thing, inlines and orders its code by what
# runs, and spends far less CPU per message (BENCHMARKS.md, "The 0.15 µs
# are the code's layout: a build that knows the hot path"). PGO is the
# compiler's own feature; cargo-pgo drives it.
#
# Usage: benches/pgo.sh   (from anywhere; it works from the repo root)
# Then:  RPCPEER=<the path printed last> benches/side_by_side.sh measures it.
#
# Needs: cargo, python3, rustup (for the llvm-tools component, which holds
# llvm-profdata) and cargo-pgo; the component and cargo-pgo are installed
# when missing. About 15 minutes on 2 CPUs: two release builds and half a
# minute of training.
#
# Environment (defaults in brackets):
#   TRAIN [3]   seconds of each training load
#   CARGO [cargo]  the cargo command, split on spaces (e.g. to wrap it in
#               a lock shared with other builds)
#
# The server listens on 127.0.0.1 port 0 and is stopped when this exits,
# however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

TRAIN=${TRAIN:-3}
read -r -a cargo <<<"${CARGO:-cargo}"

die() {
    echo "pgo: $*" >&2
    exit 1
}

work=$(mktemp -d)
server=
cleanup() {
    if [[ -n $server ]]; then
        kill -KILL "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! "${cargo[@]}" pgo --help >/dev/null 2>&1; then
    "${cargo[@]}" install cargo-pgo --locked
fi
command -v rustup >/dev/null ||
    die "rustup is needed for llvm-profdata (its llvm-tools component)"
rustup component add llvm-tools

# NB: profiles left by an earlier build of other code would steer this one.
"${cargo[@]}" pgo clean
"${cargo[@]}" pgo build -- --bin rpcpeer
target=$("${cargo[@]}" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
host=$(rustc -vV | sed -n 's/^host: //p')
bin=$target/$host/release/rpcpeer
[[ -x $bin ]] || die "the instrumented build left no $bin"
cp "$bin" "$work/rpcpeer"

"$work/rpcpeer" serve --tcp 127.0.0.1:0 --ws 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do
    grep -q '^listening on ws://' "$work/serve.out" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
tcp=$(sed -n 's/^listening on \(tcp:\/\/.*\)/\1/p' "$work/serve.out")
ws=$(sed -n 's/^listening on \(ws:\/\/.*\)/\1/p' "$work/serve.out")
[[ -n $tcp && -n $ws ]] || die "serve did not say where it listens: $(cat "$work/serve.err")"

# The client is the same instrumented binary: `bench` is trained too.
train() {
    echo "pgo: training on $*"
    "$work/rpcpeer" bench "$@" --duration "$TRAIN" --json >/dev/null
}
echo_args=(--method echo --params '["hello"]' --expect '"hello"')
train "$tcp" "${echo_args[@]}" --conns 4 --inflight 64
train "$ws" "${echo_args[@]}" --conns 4 --inflight 64
train "$ws" "${echo_args[@]}" --conns 4 --inflight 8 --batch 100
train "$ws" --notify --method update --params '["hello"]' --conns 4 --inflight 64
train "$ws" --method sleep --params '[10]' --conns 1 --inflight 64
train "$tcp" "${echo_args[@]}" --conns 1 --inflight 1
train "$ws" "${echo_args[@]}" --conns 1 --inflight 1

# NB: the profile is written as the process exits, so `serve` must stop
# on its own: SIGINT is its graceful stop.
kill -INT "$server"
wait "$server" || die "serve did not stop cleanly: $(tail -n 3 "$work/serve.err")"
server=

"${cargo[@]}" pgo optimize build -- --bin rpcpeer
echo "pgo: built $bin"
