#!/usr/bin/env bash
# Starts the real services the tests use, each only if nothing already answers
# on its port: PostgreSQL (5432), Redis (6379), the Kafka-protocol broker
# (9092) and the S3 server (9000). Safe to run again: a second run starts
# nothing. `scripts/services.sh stop` stops the two Go processes it started.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN_DIR=$ROOT/.data/bin
RUN_DIR=$ROOT/.data/services

PG_PORT=5432
REDIS_PORT=${REDIS_PORT:-6379}
KAFKA_ADDR=127.0.0.1:9092
S3_ADDR=127.0.0.1:9000
S3_BUCKET=livedrops-media
APP_DB=livedrops

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# answers HOST PORT: true when something accepts TCP connections there.
answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_for NAME HOST PORT [LOG]: up to 30 s for the port to answer.
wait_for() {
	local name=$1 host=$2 port=$3 log=${4:-}
	for _ in $(seq 1 150); do
		answers "$host" "$port" && return 0
		sleep 0.2
	done
	[[ -n $log && -f $log ]] && tail -n 20 "$log" >&2
	die "$name did not answer on $host:$port within 30s"
}

APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found; install $* yourself"
	if [[ -z $APT_UPDATED ]]; then
		say "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		APT_UPDATED=1
	fi
	say "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# ---- PostgreSQL --------------------------------------------------------------

pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/${1:-postgres}?sslmode=disable"; }

pg_query() { psql "$(pg_url)" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# newest Debian-managed cluster as "VERSION NAME", empty when there is none.
pg_cluster() {
	command -v pg_lsclusters >/dev/null || return 0
	pg_lsclusters --no-header 2>/dev/null | sort -V -k1,1 | tail -n 1 | awk '{print $1, $2}'
}

# trust for local TCP connections: tests and CI connect as postgres with no password.
pg_trust_loopback() {
	local ver=$1 name=$2 hba
	hba=$(pg_conftool -s "$ver" "$name" show hba_file 2>/dev/null || echo "/etc/postgresql/$ver/$name/pg_hba.conf")
	# pg_hba.conf is read top down: our lines must come first to win.
	if ! head -n 1 "$hba" | grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust'; then
		say "allowing trust auth on 127.0.0.1 in $hba"
		sed -i -e '1i host all all 127.0.0.1/32 trust' -e '1i host all all ::1/128 trust' "$hba"
	fi
	pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
	sleep 0.5
}

start_postgres() {
	if answers 127.0.0.1 "$PG_PORT"; then
		say "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
	else
		if ! command -v pg_ctlcluster >/dev/null || [[ -z $(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null) ]]; then
			apt_install postgresql
		fi
		local cluster ver name
		cluster=$(pg_cluster)
		if [[ -z $cluster ]]; then
			ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
			say "creating PostgreSQL $ver cluster main"
			pg_createcluster --port "$PG_PORT" "$ver" main >&2
			cluster="$ver main"
		fi
		read -r ver name <<<"$cluster"
		if [[ $(pg_conftool -s "$ver" "$name" show port 2>/dev/null) != "$PG_PORT" ]]; then
			say "moving PostgreSQL $ver/$name to port $PG_PORT (nothing else answers there)"
			pg_conftool "$ver" "$name" set port "$PG_PORT"
		fi
		# Installing the package may have started it already; that is fine too.
		if ! answers 127.0.0.1 "$PG_PORT"; then
			say "starting PostgreSQL $ver/$name on 127.0.0.1:$PG_PORT"
			pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || answers 127.0.0.1 "$PG_PORT" ||
				die "PostgreSQL $ver/$name did not start; see /var/log/postgresql/postgresql-$ver-$name.log"
		fi
		wait_for PostgreSQL 127.0.0.1 "$PG_PORT" "/var/log/postgresql/postgresql-$ver-$name.log"
	fi
	command -v psql >/dev/null || apt_install postgresql-client
	if ! pg_query 'select 1' >/dev/null 2>&1; then
		# A server that refuses passwordless postgres: fix it when it is a cluster of this machine.
		local cluster
		cluster=$(pg_cluster)
		[[ -n $cluster ]] || die "PostgreSQL on 127.0.0.1:$PG_PORT refuses $(pg_url); allow trust auth for postgres on 127.0.0.1"
		pg_trust_loopback $cluster
		pg_query 'select 1' >/dev/null || die "PostgreSQL on 127.0.0.1:$PG_PORT still refuses $(pg_url)"
	fi
	if [[ -z $(pg_query "select 1 from pg_database where datname = '$APP_DB'") ]]; then
		pg_query "create database $APP_DB" && say "created database $APP_DB"
	fi
}

# ---- Redis -------------------------------------------------------------------

start_redis() {
	if answers 127.0.0.1 "$REDIS_PORT"; then
		say "Redis already answers on 127.0.0.1:$REDIS_PORT"
		return
	fi
	command -v redis-server >/dev/null || apt_install redis-server
	say "starting redis-server on 127.0.0.1:$REDIS_PORT"
	redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
		--logfile "$RUN_DIR/redis.log" --pidfile "$RUN_DIR/redis.pid"
	wait_for Redis 127.0.0.1 "$REDIS_PORT" "$RUN_DIR/redis.log"
}

# ---- the Go services ---------------------------------------------------------

# start_go NAME ADDR ARGS...: builds cmd/NAME to .data/bin and runs it detached.
start_go() {
	local name=$1 addr=$2
	shift 2
	local host=${addr%:*} port=${addr##*:}
	if answers "$host" "$port"; then
		say "$name already answers on $addr"
		return
	fi
	say "building $name"
	go build -o "$BIN_DIR/$name" "./cmd/$name"
	say "starting $name on $addr (log: .data/services/$name.log)"
	# setsid: the process outlives make and the shell that started it.
	setsid nohup "$BIN_DIR/$name" "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/$name.pid"
	wait_for "$name" "$host" "$port" "$RUN_DIR/$name.log"
}

# stop_go NAME: stops the process recorded in its pid file, if it is still ours.
stop_go() {
	local name=$1 pidfile=$RUN_DIR/$1.pid pid
	[[ -f $pidfile ]] || { say "$name: not started by this script"; return; }
	pid=$(cat "$pidfile")
	# The pid may have been reused since: only signal the binary we started.
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$BIN_DIR/$name"; then
		kill -TERM "$pid"
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		say "stopped $name (pid $pid)"
	else
		say "$name: pid $pid is not running"
	fi
	rm -f "$pidfile"
}

print_exports() {
	cat <<EOF
# Real services for tests (read by internal/testenv) and for running the server:
export TEST_DATABASE_URL='$(pg_url)'
export TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export TEST_KAFKA_BROKERS='$KAFKA_ADDR'
export TEST_S3_ENDPOINT='http://$S3_ADDR'
export DATABASE_URL='$(pg_url "$APP_DB")'
export REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export KAFKA_BROKERS='$KAFKA_ADDR'
export S3_ENDPOINT='http://$S3_ADDR'
export S3_BUCKET='$S3_BUCKET'
export MEDIA_BASE_URL='http://$S3_ADDR/$S3_BUCKET'
EOF
}

mkdir -p "$BIN_DIR" "$RUN_DIR"
case ${1:-start} in
start)
	start_postgres
	start_redis
	start_go kafka-broker "$KAFKA_ADDR" -addr "$KAFKA_ADDR" -partitions 6
	start_go s3-server "$S3_ADDR" -addr "$S3_ADDR" -dir "$RUN_DIR/s3" -bucket "$S3_BUCKET"
	print_exports
	;;
stop)
	stop_go kafka-broker
	stop_go s3-server
	;;
env)
	print_exports
	;;
*)
	die "usage: $0 [start|stop|env]"
	;;
esac
