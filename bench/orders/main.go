// Command orders is the orders stampede benchmark (`make bench-orders`).
//
// It boots the built server as a process of its own on the real services,
// with a fresh database, Redis prefix and Kafka topic; sends every buyer at
// one live drop through GraphQL over a fixed pool of keep-alive connections,
// with some buyers retrying with the same idempotency key; checks in
// PostgreSQL that nothing was oversold or ordered twice; and measures, in the
// same run, the raw ceiling: the order's bare conditional update and insert
// sent straight to PostgreSQL at the same concurrency. It prints the figures
// of each round and their medians; the last line is machine-readable.
//
// It exits 1 when anything was oversold or ordered twice, or the run broke
// (a failed answer, a drop not sold out, a server that died); missed
// performance targets are printed as FAIL but do not change the exit code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/bench/internal/ceiling"
	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/ledger"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/rig"
	"livedrops/bench/internal/sandbox"
	"livedrops/bench/internal/shop"
	"livedrops/bench/internal/stampede"
	"livedrops/internal/serverproc"
	"livedrops/store"
)

// Targets the figures are judged against.
const (
	targetRatio        = 0.5
	targetSoldOutP99Ms = 20.0
)

type options struct {
	server       rig.Server
	buyers       int
	stock        int
	perUserLimit int
	retryPercent int
	conns        int
	rounds       int
	seed         uint64
	procs        int
	prune        int
}

// loadHeapLimit is the heap this load process grows to before it collects.
const loadHeapLimit = 1 << 30

func main() {
	var o options
	o.server.Flags(flag.CommandLine)
	flag.IntVar(&o.buyers, "buyers", 20000, "buyers sent at each drop, one order of quantity 1 each")
	flag.IntVar(&o.stock, "stock", 5000, "units in each drop")
	// Above 1 on purpose: a second order for one buyer must be refused by
	// idempotency, not hidden by the per-user limit.
	flag.IntVar(&o.perUserLimit, "per-user-limit", 2, "units one buyer may hold in a drop")
	flag.IntVar(&o.retryPercent, "retry-percent", 10, "percent of buyers who send their request again with the same key")
	flag.IntVar(&o.conns, "conns", 64, "concurrent connections, to the server and to PostgreSQL for the raw ceiling")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds, each on a fresh drop")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the buyers' order and of who retries (0: random)")
	// The load stands in for buyers on machines of their own: on one P it
	// takes at most one of the cores it shares with the server (it needs a
	// fifth of one), instead of contending for both.
	flag.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of this load process (0: Go's default)")
	flag.IntVar(&o.prune, "prune", 0, "rows past their retention written to each pruned table before each GraphQL round, "+
		"which the server (PRUNE_INTERVAL="+pruneInterval+") prunes during the round; 0: no pruning")
	flag.Parse()
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	// Nor does it stop to collect garbage while it times answers: its heap
	// is collected only past loadHeapLimit (a round's answers take a few MiB).
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(loadHeapLimit)
	if o.seed == 0 {
		o.seed = mrand.Uint64()
	}

	b := &bench{o: o, out: os.Stdout}
	rig.Main("bench-orders", b.run, b.cleanup, b.verdict)
}

// bench is one run: its sandbox, server and figures.
type bench struct {
	o      options
	out    io.Writer
	box    *sandbox.Sandbox
	db     *store.DB
	server *serverproc.Server
	client *gql.Client
	// redis reads Redis's CPU time for the report.
	redis  *redis.Client
	buyers []sandbox.Buyer
	seller *shop.Seller

	graphql []roundFigures
	raw     []roundFigures
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

// run is the whole benchmark: set up, GraphQL rounds, raw rounds, summary.
func (b *bench) run(ctx context.Context) error {
	o := b.o
	if o.buyers < 1 || o.stock < 1 || o.conns < 1 || o.rounds < 1 || o.perUserLimit < 1 ||
		o.retryPercent < 0 || o.retryPercent > 100 || o.prune < 0 {
		return errors.New("buyers, stock, conns, rounds and per-user-limit must be positive, retry-percent 0 to 100, prune not negative")
	}
	if err := o.server.CheckBin(); err != nil {
		return err
	}
	b.header()
	if err := b.setup(ctx); err != nil {
		return err
	}
	rawDrops, err := b.graphqlRounds(ctx)
	if err != nil {
		return err
	}
	if err := b.rawRounds(ctx, rawDrops); err != nil {
		return err
	}
	b.summary()
	return nil
}

// setup makes the sandbox, starts the server on it (which applies its own
// migrations: the schema is the server's), then the buyers and the seller.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.box, err = sandbox.New(ctx, sandbox.ServicesFromEnv()); err != nil {
		return err
	}
	redisOpts, err := redis.ParseURL(b.box.Services.RedisURL)
	if err != nil {
		return fmt.Errorf("parse Redis URL: %w", err)
	}
	b.redis = redis.NewClient(redisOpts)
	if err := b.startServer(ctx); err != nil {
		return err
	}
	if b.db, err = store.Open(ctx, b.ownURL()); err != nil {
		return err
	}
	b.db.SetMaxOpenConns(4) // the benchmark's own reads; the load has its own pools
	started := time.Now()
	if b.buyers, err = b.box.AddBuyers(ctx, b.db.DB.DB, b.o.buyers); err != nil {
		return err
	}
	b.printf("setup      database %s, Redis prefix %s, Kafka topic %s; %d buyers with tokens in %.1fs\n",
		b.box.Name, b.box.RedisPrefix, b.box.KafkaTopic, len(b.buyers), time.Since(started).Seconds())
	b.client = gql.New(b.server.URL+"/query", b.o.conns)
	b.seller, err = shop.NewSeller(ctx, b.client, "bench_seller")
	return err
}

// graphqlRounds runs the rounds through the server, then schedules the raw
// rounds' drops through it too (so both kinds of drop are made alike) and
// stops it. It returns the raw rounds' drop ids.
func (b *bench) graphqlRounds(ctx context.Context) ([]int64, error) {
	rng := mrand.New(mrand.NewPCG(b.o.seed, b.o.seed>>1|1))
	for r := 1; r <= b.o.rounds; r++ {
		f, err := b.graphqlRound(ctx, r, rng)
		if err != nil {
			return nil, fmt.Errorf("GraphQL round %d: %w", r, err)
		}
		b.graphql = append(b.graphql, f)
		b.printRound("graphql", r, f)
	}
	rawDrops := make([]int64, b.o.rounds)
	for r := range rawDrops {
		var err error
		if _, rawDrops[r], err = b.seller.LiveDrop(ctx, b.client, fmt.Sprintf("Raw ceiling %d", r+1), b.o.stock, b.o.perUserLimit); err != nil {
			return nil, err
		}
	}
	// The raw ceiling runs with the server stopped: PostgreSQL gets the
	// machine the server had, and the server's idle pool does not count
	// against max_connections next to the ceiling's.
	b.client.Close()
	if err := b.stopServer(); err != nil {
		return nil, err
	}
	return rawDrops, b.waitServerConnsGone(ctx, 30*time.Second)
}

// rawRounds runs the raw ceiling on the given drops, one round each.
func (b *bench) rawRounds(ctx context.Context, drops []int64) error {
	buyerIDs := make([]int64, len(b.buyers))
	for i, by := range b.buyers {
		buyerIDs[i] = by.ID
	}
	pool, err := ceiling.Open(ctx, b.ownURL(), b.o.conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	for r := 1; r <= len(drops); r++ {
		f, err := b.rawRound(ctx, pool, r, drops[r-1], buyerIDs)
		if err != nil {
			return fmt.Errorf("raw round %d: %w", r, err)
		}
		b.raw = append(b.raw, f)
		b.printRound("raw sql", r, f)
	}
	return nil
}

func (b *bench) header() {
	o := b.o
	b.printf("orders stampede benchmark (make bench-orders)\n")
	b.printf("machine    %d CPU cores shared by everything: the server, this load generator, PostgreSQL, Redis,\n", runtime.NumCPU())
	b.printf("           the Kafka broker and the S3 server. Figures are this machine's, not a capacity claim.\n")
	if load := rig.LoadAverage(); load != "" {
		b.printf("           load average before the run %s (1/5/15 min): other work on the machine lowers every figure\n", load)
	}
	b.printf("load       %d buyers at one LIVE drop of %d units (per-user limit %d, quantity 1 each); %d%% of buyers\n",
		o.buyers, o.stock, o.perUserLimit, o.retryPercent)
	b.printf("           send the same request again with the same key (half concurrently, half right after);\n")
	b.printf("           %d keep-alive HTTP connections; %d rounds, a fresh drop each; seed %d\n", o.conns, o.rounds, o.seed)
	b.printf("           this load process runs on GOMAXPROCS=%d (it stands in for buyers on other machines)\n", runtime.GOMAXPROCS(0))
	b.printf("raw        ceiling: UPDATE inventory ... WHERE available >= 1 + INSERT INTO orders in one transaction,\n")
	b.printf("           %d attempts from %d PostgreSQL connections against %d units, server stopped\n", o.buyers, o.conns, o.stock)
	if o.prune > 0 {
		b.printf("prune      before each GraphQL round, %d rows past their retention in each of 4 tables; the server prunes\n", o.prune)
		b.printf("           them during the round (PRUNE_INTERVAL=%s, batches of PRUNE_BATCH=5000)\n", pruneInterval)
	}
	b.printf("accepted   = orders created (PENDING_PAYMENT); accepted/s = accepted / (first request .. last new order answered)\n")
}

func (b *bench) startServer(ctx context.Context) error {
	started := time.Now()
	var err error
	var extra []string
	if b.o.prune > 0 {
		extra = append(extra, "PRUNE_INTERVAL="+pruneInterval)
	}
	if b.server, err = b.o.server.Start(ctx, b.box, extra...); err != nil {
		return err
	}
	b.printf("server     %s (pid %d) on %s, ready in %.1fs; SEED=false ORDER_RATE_PER_MINUTE=%d LOG_LEVEL=%s; log %s\n",
		b.o.server.Bin, b.server.PID(), strings.TrimPrefix(b.server.URL, "http://"), time.Since(started).Seconds(), b.o.server.OrderRate, b.o.server.LogLevel, b.server.LogPath)
	return nil
}

func (b *bench) stopServer() error {
	s := b.server
	b.server = nil
	return rig.Stop(s)
}

func (b *bench) cleanup() error {
	var errs []error
	if b.client != nil {
		b.client.Close()
	}
	if err := b.stopServer(); err != nil {
		errs = append(errs, err)
	}
	if b.redis != nil {
		b.redis.Close()
	}
	if err := b.box.Release(b.db); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// warm opens the round's connections, one for each worker, and sends a few
// authenticated reads through each before the clock starts, so a round
// measures orders, not handshakes or cold caches.
func (b *bench) warm(ctx context.Context) ([]*gql.Conn, error) {
	conns, err := gql.DialAll(ctx, b.server.URL+"/query", b.o.conns)
	if err != nil {
		return nil, err
	}
	errs := make(chan error, len(conns))
	for w, c := range conns {
		go func() {
			var err error
			for i := range 3 {
				by := b.buyers[(w*3+i)%len(b.buyers)]
				if e := c.Do(ctx, by.Token, `{ viewer { id } }`, nil, nil); e != nil && err == nil {
					err = fmt.Errorf("warm-up query: %w", e)
				}
			}
			errs <- err
		}()
	}
	var all []error
	for range conns {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		gql.CloseAll(conns)
		return nil, err
	}
	return conns, nil
}

func (b *bench) graphqlRound(ctx context.Context, r int, rng *mrand.Rand) (roundFigures, error) {
	dropGID, dropID, err := b.seller.LiveDrop(ctx, b.client, fmt.Sprintf("Stampede %d", r), b.o.stock, b.o.perUserLimit)
	if err != nil {
		return roundFigures{}, err
	}
	conns, err := b.warm(ctx)
	if err != nil {
		return roundFigures{}, err
	}
	defer gql.CloseAll(conns)
	if b.o.prune > 0 {
		if err := b.age(ctx, r); err != nil {
			return roundFigures{}, err
		}
	}
	jobs := stampede.Plan(len(b.buyers), b.o.retryPercent, rng)
	metricsBefore := scrapeCounters(ctx, b.server.InternalURL)
	before := b.sampleCPU(ctx, b.server.PID())
	answers := stampede.Run(ctx, conns, b.buyers, dropGID, fmt.Sprintf("r%d-", r), jobs)
	cpu, cpuOK := b.sampleCPU(ctx, b.server.PID()).since(before)
	serverCounters := scrapeCounters(ctx, b.server.InternalURL).delta(metricsBefore)
	if ctx.Err() != nil {
		return roundFigures{}, ctx.Err()
	}
	if b.server.Exited() {
		return roundFigures{}, fmt.Errorf("the server died during the round:\n%s", b.server.Tail(20))
	}
	f, err := b.judge(ctx, answers, dropID, len(b.buyers), orderGID)
	if err != nil {
		return f, err
	}
	f.Retries = checkRetries(answers)
	f.CPU, f.CPUOK = cpu, cpuOK
	f.ServerCounters = serverCounters
	if b.o.prune > 0 {
		if f.AgedLeft, err = b.agedLeft(ctx); err != nil {
			return f, err
		}
		f.AgedWritten = 4 * b.o.prune
	}
	// The relay publishes the round's events after the last answer; the next
	// round starts once it is done, so rounds do not overlap.
	f.Drain, f.Drained, err = b.waitOutbox(ctx, 60*time.Second)
	return f, err
}

func (b *bench) rawRound(ctx context.Context, pool *ceiling.Pool, r int, dropID int64, buyerIDs []int64) (roundFigures, error) {
	before := b.sampleCPU(ctx, 0)
	answers, err := pool.Run(ctx, ceiling.Config{
		DropID: dropID, Buyers: buyerIDs, Attempts: b.o.buyers,
		KeyPrefix: fmt.Sprintf("raw%d-", r), PriceCents: b.seller.PriceCents, Currency: b.seller.Currency,
	})
	if err != nil {
		return roundFigures{}, err
	}
	cpu, cpuOK := b.sampleCPU(ctx, 0).since(before)
	f, err := b.judge(ctx, answers, dropID, b.o.buyers, rawID)
	f.CPU, f.CPUOK = cpu, cpuOK
	return f, err
}

// judge tallies a round's answers and checks them against PostgreSQL.
func (b *bench) judge(ctx context.Context, answers []measure.Answer, dropID int64, demand int,
	decode func(string) (int64, error)) (roundFigures, error) {
	f := roundFigures{Round: measure.Tally(answers), DropID: dropID, Demand: demand}
	l, err := ledger.Read(ctx, b.db.DB.DB, dropID)
	if err != nil {
		return f, err
	}
	f.Ledger = l
	answered, undecodable := orderKeys(answers, decode)
	f.Phantoms = len(undecodable)
	for id := range answered {
		if !l.OrderIDs[id] {
			f.Phantoms++
		}
	}
	for id := range l.OrderIDs {
		if !answered[id] {
			f.Unanswered++
		}
	}
	return f, nil
}

// appName names the benchmark's own PostgreSQL connections, told apart
// from the server's.
const appName = "bench-orders"

// ownURL is the sandbox database's URL for the benchmark's own connections.
func (b *bench) ownURL() string {
	u, err := url.Parse(b.box.DatabaseURL)
	if err != nil {
		return b.box.DatabaseURL
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	return u.String()
}

// waitServerConnsGone waits until PostgreSQL has closed every connection the
// stopped server held, so the raw ceiling has the room and the machine to itself.
func (b *bench) waitServerConnsGone(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND application_name <> $2`, b.box.Name, appName).Scan(&n)
		if err != nil {
			return fmt.Errorf("count the server's connections: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections of the stopped server still open after %s", n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitOutbox waits until every outbox event is published, up to limit.
func (b *bench) waitOutbox(ctx context.Context, limit time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	for {
		var pending int
		if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
			return 0, false, fmt.Errorf("count unpublished outbox events: %w", err)
		}
		if pending == 0 {
			return time.Since(start), true, nil
		}
		if time.Since(start) > limit {
			return time.Since(start), false, nil
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
