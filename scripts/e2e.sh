#!/usr/bin/env bash
# Browser tests against the real binary on the real services: builds the
# server, starts it on a fresh database (demo data loaded) with its own Redis
# prefix and Kafka topic, runs e2e/run.sh against it, and stops it again.
# Needs `make services` first (make test does that).
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/services.sh env)"
run=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
db=e2e_$run
admin_url=$TEST_DATABASE_URL
psql "$admin_url" -XAtq -c "CREATE DATABASE $db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=.data/services/e2e-server.log
mkdir -p .data/bin .data/services
go build -o .data/bin/livedrops .

DATABASE_URL="${admin_url/\/postgres\?/\/$db?}" \
REDIS_PREFIX="e2e$run:" KAFKA_TOPIC="e2e.$run" SEED=true \
HTTP_ADDR=127.0.0.1:$port LOG_LEVEL=warn \
	.data/bin/livedrops >"$log" 2>&1 &
server=$!

cleanup() {
	kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
	psql "$admin_url" -XAtq -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 150); do
	curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "e2e: the server exited" >&2; exit 1; }
	sleep 0.2
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log" >&2; echo "e2e: the server did not come up" >&2; exit 1; }

BASE_URL=http://127.0.0.1:$port e2e/run.sh "$@"
