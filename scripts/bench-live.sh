#!/usr/bin/env bash
# The live updates benchmark (`make bench-live`): makes sure the real
# services run, builds the server and the load process, raises the open-file
# limit (a socket per subscriber, on both sides) and runs it. Flags are passed
# on to the load process (bench/live), e.g.
#   scripts/bench-live.sh -subscribers 2000 -stock 500 -buyers 800
# Standard output is the report; its last line is machine-readable. Progress
# and build output go to standard error. Exits 1 when a subscriber was left
# stale or lost its stream, or the run broke.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN_DIR=.data/bin

# 5,000 subscribers by default: their sockets, the server's (it inherits the
# limit) and room for everything else.
want=${BENCH_LIVE_NOFILE:-16384}
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want ]]; then
	want=$hard
fi
ulimit -n "$want" || { echo "bench-live: cannot raise the open-file limit to $want" >&2; exit 1; }

# services.sh prints its exports on stdout; keep stdout for the report.
scripts/services.sh start >&2

mkdir -p "$BIN_DIR"
echo "bench-live: building the server and the load process" >&2
"$GO" build -o "$BIN_DIR/livedrops" .
"$GO" build -o "$BIN_DIR/bench-live" ./bench/live

exec "$BIN_DIR/bench-live" -server "$BIN_DIR/livedrops" -logs .data/bench "$@"
