#!/usr/bin/env bash
# The orders stampede benchmark (`make bench-orders`): makes sure the real
# services run, builds the server and the load generator, and runs it. Flags
# are passed on to the load generator (bench/orders), e.g.
#   scripts/bench-orders.sh -rounds 1 -buyers 4000 -stock 1000
# Standard output is the report; its last line is machine-readable. Progress
# and build output go to standard error. Exits 1 when anything was oversold or
# ordered twice, or the run broke.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN_DIR=.data/bin

# services.sh prints its exports on stdout; keep stdout for the report.
scripts/services.sh start >&2

mkdir -p "$BIN_DIR"
echo "bench-orders: building the server and the load generator" >&2
"$GO" build -o "$BIN_DIR/livedrops" .
"$GO" build -o "$BIN_DIR/bench-orders" ./bench/orders

exec "$BIN_DIR/bench-orders" -server "$BIN_DIR/livedrops" -logs .data/bench "$@"
