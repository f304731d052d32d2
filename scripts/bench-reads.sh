#!/usr/bin/env bash
# The reads benchmark (`make bench-reads`): makes sure the real services
# run, builds the server and the load generator, and runs it. Flags are
# passed on to the load generator (bench/reads), e.g.
#   scripts/bench-reads.sh -rounds 1 -duration 2s -shapes drop,followers
# Standard output is the report; its last line is machine-readable. Progress
# and build output go to standard error. Exits 1 when any answer was not the
# expected one, or the run broke.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN_DIR=.data/bin

# services.sh prints its exports on stdout; keep stdout for the report.
scripts/services.sh start >&2

mkdir -p "$BIN_DIR"
echo "bench-reads: building the server and the load generator" >&2
"$GO" build -o "$BIN_DIR/livedrops" .
"$GO" build -o "$BIN_DIR/bench-reads" ./bench/reads

exec "$BIN_DIR/bench-reads" -server "$BIN_DIR/livedrops" -logs .data/bench "$@"
