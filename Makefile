# Live Drops: everyday tasks. `make run` needs nothing but Go (it installs the
# PostgreSQL binaries its embedded database uses); `make test` starts the real
# services the tests talk to.

GO       ?= go
SERVICES := scripts/services.sh
# apt-get needs root; use sudo only when we are not root already.
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help run build test e2e check-generated bench-orders bench-live bench-reads generate migrate seed services services-stop vet clean clean-data postgres-binaries

help:
	@echo "make run            start the server with embedded PostgreSQL, Redis, Kafka and S3 (override each with its env var)"
	@echo "make build          build .data/bin/livedrops"
	@echo "make test           start the services, then run every test with -race"
	@echo "make e2e            browser tests against the real binary (make test runs them too)"
	@echo "make services       start PostgreSQL, Redis, the Kafka broker and the S3 server if not running; print their URLs"
	@echo "make services-stop  stop the Kafka broker and S3 server that 'make services' started"
	@echo "make bench-orders  orders stampede: GraphQL vs the raw PostgreSQL ceiling, oversell/duplicate checks (~3 min)"
	@echo "make bench-live    5,000 WebSocket subscribers on one drop during an orders stampede: delivery latency, memory (~1 min)"
	@echo "make bench-reads   five read shapes, warm and cold caches, vs a bare net/http ceiling: reads/s, CPU and SQL per read (~4 min)"
	@echo "make generate       regenerate the GraphQL executor from schema.graphqls"
	@echo "make migrate|seed   apply migrations | load demo data, using DATABASE_URL"
	@echo "make vet            go vet ./..."
	@echo "make clean          remove built binaries and coverage files"
	@echo "make clean-data     also remove .data/ (embedded database, objects, service logs)"

run: postgres-binaries build
	@.data/bin/livedrops

# The embedded database of `make run` is a private cluster run from the
# machine's PostgreSQL binaries; install them once if none are found.
postgres-binaries:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null; then \
		echo "installing PostgreSQL binaries for the embedded database"; \
		$(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi

build:
	$(GO) build -o .data/bin/livedrops .

test: services
	$(GO) test -race -count=1 -timeout 20m ./...
	scripts/e2e.sh

# Browser tests only, against the real binary on the real services.
e2e: services
	scripts/e2e.sh

generate:
	$(GO) tool gqlgen generate
	gofmt -w graph resolvers

# Benchmarks: commands that print figures (each starts the services it needs).
bench-orders:
	@scripts/bench-orders.sh $(BENCH_ORDERS_FLAGS)

bench-live:
	@scripts/bench-live.sh $(BENCH_LIVE_FLAGS)

bench-reads:
	@scripts/bench-reads.sh $(BENCH_READS_FLAGS)

# CI: the generated code must be exactly what the schema and gqlgen.yml give.
check-generated: generate
	git diff --exit-code -- graph resolvers

migrate:
	$(GO) run . migrate

seed:
	$(GO) run . seed

services:
	@$(SERVICES) start

services-stop:
	@$(SERVICES) stop

vet:
	$(GO) vet ./...

clean:
	rm -rf .data/bin coverage.out coverage.html *.coverprofile livedrops

clean-data: services-stop
	rm -rf .data
