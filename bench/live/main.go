// Command live is the live updates benchmark (`make bench-live`).
//
// It boots the built server as a process of its own on the real services,
// with a fresh database, Redis prefix and Kafka topic; opens many WebSocket
// subscribers (graphql-transport-ws, dropUpdated) on one live drop from this
// process; measures the server's memory per idle subscriber; then sends an
// orders stampede at the same drop while they listen, and judges what every
// subscriber received against PostgreSQL.
//
// Delivery latency is measured for every new stock state a subscriber
// receives (its first message, the snapshot, is not an update): receipt time
// minus the commit of the transaction that produced that state. Orders take
// one unit each and nothing else moves the stock, so the state with N units
// available was made by the one transaction whose StockChanged event says N;
// its outbox row's created_at is the clock_timestamp() of the events' insert,
// the end of that transaction, after it waited for the inventory row lock
// and just before its commit (only the audit row is written between them).
// The figure is therefore the latency from the commit, a hair above it; the
// report also gives a lower bound, from the moment the order's HTTP answer
// (sent after the commit) reached the load generator. Both clocks are this
// machine's.
//
// A subscriber is stale when, once the stampede is over and every event is
// published, its newest state still differs from the drop's final stock and
// status in PostgreSQL after -final-wait.
//
// It exits 1 when the run broke (a subscriber could not connect or its
// stream ended, an answer failed, the server died) or a subscriber was left
// stale; missed performance targets are printed as FAIL but do not change
// the exit code. The last line of the output is machine-readable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	targetP99Ms            = 250.0
	targetKiBPerSubscriber = 48.0
)

type options struct {
	server      rig.Server
	subscribers int
	stock       int
	buyers      int
	conns       int
	dialers     int
	idleSettle  time.Duration
	finalWait   time.Duration
}

func main() {
	var o options
	o.server.Flags(flag.CommandLine)
	flag.IntVar(&o.subscribers, "subscribers", 5000, "WebSocket subscribers to dropUpdated on the drop")
	flag.IntVar(&o.stock, "stock", 300, "units in the drop: every unit sold is a stock state sent to every subscriber")
	flag.IntVar(&o.buyers, "buyers", 450, "buyers in the stampede, one order of one unit each")
	flag.IntVar(&o.conns, "conns", 32, "keep-alive HTTP connections the stampede uses")
	flag.IntVar(&o.dialers, "dialers", 64, "subscribers connecting at the same time")
	flag.DurationVar(&o.idleSettle, "idle-settle", 3*time.Second, "pause before each idle memory reading")
	flag.DurationVar(&o.finalWait, "final-wait", 10*time.Second, "how long subscribers have to reach the final state once every event is published")
	flag.Parse()

	b := &bench{o: o, out: os.Stdout}
	rig.Main("bench-live", b.run, b.cleanup, b.verdict)
}

// bench is one run: its sandbox, server, subscribers and figures.
type bench struct {
	o      options
	out    io.Writer
	box    *sandbox.Sandbox
	db     *store.DB
	server *serverproc.Server
	client *gql.Client
	buyers []sandbox.Buyer
	subs   []*subscriber

	answers []measure.Answer
	// received holds every subscriber's states, kept when they are closed.
	received [][]dropState

	dropGID  string
	dropID   int64
	cpuStart cpuClock
	f        figures
}

// figures are what the run measured.
type figures struct {
	ConnectTime  time.Duration
	Idle, Loaded memory
	ServerSubs   float64 // livedrops_live_subscribers{kind="drop"} once connected
	Orders       measure.Round
	Ledger       *ledger.Ledger
	Final        dropState
	OutboxDrain  time.Duration
	Settle       time.Duration // from the outbox drained to every subscriber final (or final-wait)
	Stale        int
	Ended        []error // streams that ended before the run closed them
	Commits      int
	Delivery     delivery
	FromCommit   measure.Summary
	FromAnswer   measure.Summary
	// CommitToAnswer is, per order, its events' insert to its answer: the
	// spread between the two latency figures (commit, reply).
	CommitToAnswer measure.Summary
	// KiB per idle subscriber: live heap + stacks (the headline), heap in
	// use + stacks, and resident set.
	LivePerSub, InusePerSub, RSSPerSub float64
	// CPU is the cores used from the stampede's first order to the last
	// subscriber showing the final state.
	CPU    cores
	CPUErr error
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-live: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	o := b.o
	if o.subscribers < 1 || o.stock < 1 || o.buyers < 1 || o.conns < 1 || o.dialers < 1 {
		return errors.New("subscribers, stock, buyers, conns and dialers must be positive")
	}
	if err := o.server.CheckBin(); err != nil {
		return err
	}
	if err := checkFileLimit(o.subscribers); err != nil {
		return err
	}
	b.header()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.connect(ctx); err != nil {
		return err
	}
	if err := b.stampede(ctx); err != nil {
		return err
	}
	if err := b.awaitFinal(ctx); err != nil {
		return err
	}
	b.closeSubscribers()
	if err := b.judge(ctx); err != nil {
		return err
	}
	b.report()
	return nil
}

// checkFileLimit fails early when this process cannot hold a socket per
// subscriber (the server, started from here, inherits the limit).
func checkFileLimit(subscribers int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	if need := uint64(subscribers) + 1024; lim.Cur < need {
		return fmt.Errorf("the open-file limit is %d, %d subscribers need at least %d: raise it with `ulimit -n %d` (scripts/bench-live.sh does)",
			lim.Cur, subscribers, need, need)
	}
	return nil
}

func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.box, err = sandbox.New(ctx, sandbox.ServicesFromEnv()); err != nil {
		return err
	}
	if b.db, err = b.box.OpenMigrated(ctx, 4); err != nil {
		return err
	}
	if b.buyers, err = b.box.AddBuyers(ctx, b.db.DB.DB, b.o.buyers); err != nil {
		return err
	}
	if err := b.waitForRoom(ctx, serverConns+8, 3*time.Minute); err != nil {
		return err
	}
	if err := b.startServer(ctx); err != nil {
		return err
	}
	b.client = gql.New(b.server.URL+"/query", b.o.conns)
	s, err := shop.NewSeller(ctx, b.client, "live_seller")
	if err != nil {
		return err
	}
	// A per-user limit of 1: each buyer orders once, one unit.
	if b.dropGID, b.dropID, err = s.LiveDrop(ctx, b.client, "Live drop", b.o.stock, 1); err != nil {
		return err
	}
	b.printf("setup      database %s, Redis prefix %s, Kafka topic %s; drop #%d LIVE with %d units; %d buyers\n",
		b.box.Name, b.box.RedisPrefix, b.box.KafkaTopic, b.dropID, b.o.stock, len(b.buyers))
	return nil
}

// serverConns is the most PostgreSQL connections the server opens
// (store.Open's pool).
const serverConns = 32

// waitForRoom waits until PostgreSQL has need connections free: another
// benchmark or test run on the same PostgreSQL may hold most of them, and a
// subscriber refused for want of one would break the run.
func (b *bench) waitForRoom(ctx context.Context, need int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	told := false
	for {
		var free int
		err := b.db.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int
			- current_setting('superuser_reserved_connections')::int - count(*) FROM pg_stat_activity`).Scan(&free)
		if err != nil {
			return fmt.Errorf("count free PostgreSQL connections: %w", err)
		}
		if free >= need {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL has %d connections free after %s, the server needs %d: is another run holding them?", free, limit, need)
		}
		if !told {
			progress("PostgreSQL has %d connections free, the server needs %d: waiting for other runs to finish", free, need)
			told = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (b *bench) startServer(ctx context.Context) error {
	started := time.Now()
	var err error
	if b.server, err = b.o.server.Start(ctx, b.box); err != nil {
		return err
	}
	b.printf("server     %s (pid %d) on %s, ready in %.1fs; LOG_LEVEL=%s; log %s\n",
		b.o.server.Bin, b.server.PID(), strings.TrimPrefix(b.server.URL, "http://"), time.Since(started).Seconds(), b.o.server.LogLevel, b.server.LogPath)
	return nil
}

// connect measures the idle server, opens every subscriber (each has its
// first state when connect returns) and measures the server again.
func (b *bench) connect(ctx context.Context) error {
	var err error
	if b.f.Idle, err = b.settledMemory(ctx); err != nil {
		return err
	}
	wsURL := "ws" + strings.TrimPrefix(b.server.URL, "http") + "/query"
	httpClient := &http.Client{}
	b.subs = make([]*subscriber, b.o.subscribers)
	var (
		next     atomic.Int64
		failures atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	progress("connecting %d subscribers", b.o.subscribers)
	started := time.Now()
	for range min(b.o.dialers, b.o.subscribers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(b.subs) || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				s, err := subscribe(dctx, httpClient, wsURL, b.dropGID, "")
				cancel()
				if err != nil {
					failures.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				b.subs[i] = s
			}
		}()
	}
	wg.Wait()
	b.f.ConnectTime = time.Since(started)
	if n := failures.Load(); n > 0 {
		return fmt.Errorf("%d of %d subscribers could not connect; the first: %w\n--- end of %s ---\n%s",
			n, b.o.subscribers, firstErr, b.server.LogPath, b.server.Tail(5))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.f.Loaded, err = b.settledMemory(ctx); err != nil {
		return err
	}
	b.f.ServerSubs = b.serverGauge(ctx, `livedrops_live_subscribers{kind="drop"}`)
	perSub := func(before, after int64) float64 { return float64(after-before) / float64(b.o.subscribers) / 1024 }
	idle, loaded := b.f.Idle, b.f.Loaded
	b.f.LivePerSub = perSub(idle.Live(), loaded.Live())
	b.f.InusePerSub = perSub(idle.HeapInuse+idle.StackInuse, loaded.HeapInuse+loaded.StackInuse)
	b.f.RSSPerSub = perSub(idle.RSS, loaded.RSS)
	return nil
}

// settledMemory waits idleSettle, so the server finishes what it was doing,
// then samples its memory.
func (b *bench) settledMemory(ctx context.Context) (memory, error) {
	select {
	case <-ctx.Done():
		return memory{}, ctx.Err()
	case <-time.After(b.o.idleSettle):
	}
	return readMemory(ctx, b.server.PID(), b.server.URL, b.server.InternalURL)
}

// serverGauge reads one sample of the server's metrics, 0 when missing.
func (b *bench) serverGauge(ctx context.Context, series string) float64 {
	v, err := scrape(ctx, b.server.URL, series)
	if err != nil {
		return 0
	}
	return v[0]
}

// stampede sends the buyers at the drop while every subscriber listens.
func (b *bench) stampede(ctx context.Context) error {
	progress("stampede: %d buyers at %d units", len(b.buyers), b.o.stock)
	conns, err := gql.DialAll(ctx, b.server.URL+"/query", b.o.conns)
	if err != nil {
		return err
	}
	defer gql.CloseAll(conns)
	b.cpuStart = readCPU(b.server.PID())
	answers := stampede.Run(ctx, conns, b.buyers, b.dropGID, "live-", stampede.Each(len(b.buyers)))
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.server.Exited() {
		return fmt.Errorf("the server died during the stampede:\n%s", b.server.Tail(20))
	}
	b.f.Orders = measure.Tally(answers)
	if n := b.f.Orders.FailedCount(); n > 0 {
		return fmt.Errorf("%d order answers were neither an order nor SOLD_OUT: %v", n, b.f.Orders.Failures)
	}
	b.answers = answers
	return nil
}

// awaitFinal waits for every event to be published, reads the drop's final
// state from PostgreSQL, and gives the subscribers up to finalWait to show it.
func (b *bench) awaitFinal(ctx context.Context) error {
	var err error
	if b.f.OutboxDrain, err = b.waitOutbox(ctx, 60*time.Second); err != nil {
		return err
	}
	if b.f.Ledger, err = ledger.Read(ctx, b.db.DB.DB, b.dropID); err != nil {
		return err
	}
	l := b.f.Ledger
	var status string
	if err := b.db.QueryRowContext(ctx, `SELECT status FROM drops WHERE id = $1`, b.dropID).Scan(&status); err != nil {
		return fmt.Errorf("read the drop's final status: %w", err)
	}
	b.f.Final = dropState{Available: int32(l.Available), Reserved: int32(l.Reserved), Sold: int32(l.Sold), Total: int32(l.Total), Status: status}

	started := time.Now()
	deadline := started.Add(b.o.finalWait)
	for {
		lasts := make([]*dropState, len(b.subs))
		for i, s := range b.subs {
			if st, ok, _ := s.last(); ok {
				lasts[i] = &st
			}
		}
		b.f.Stale = countStale(lasts, b.f.Final)
		if b.f.Stale == 0 || time.Now().After(deadline) {
			b.f.Settle = time.Since(started)
			b.f.CPU, b.f.CPUErr = readCPU(b.server.PID()).since(b.cpuStart)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitOutbox waits until every outbox event is published, up to limit.
func (b *bench) waitOutbox(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var pending int
		if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
			return 0, fmt.Errorf("count unpublished outbox events: %w", err)
		}
		if pending == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("%d outbox events still unpublished %s after the stampede", pending, limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// closeSubscribers records which streams ended early, then closes them all.
func (b *bench) closeSubscribers() {
	for _, s := range b.subs {
		if _, _, err := s.last(); err != nil {
			b.f.Ended = append(b.f.Ended, err)
		}
		b.received = append(b.received, s.received())
	}
	closeAll(b.subs, b.o.dialers)
	b.subs = b.subs[:0:0]
}

// closeAll closes subscribers from a few goroutines at once.
func closeAll(subs []*subscriber, workers int) {
	var wg sync.WaitGroup
	ch := make(chan *subscriber)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				s.Close()
			}
		}()
	}
	for _, s := range subs {
		if s != nil {
			ch <- s
		}
	}
	close(ch)
	wg.Wait()
}

// judge reads the commits and measures what the subscribers received.
func (b *bench) judge(ctx context.Context) error {
	commits, err := readCommits(ctx, b.db.DB.DB, b.dropID)
	if err != nil {
		return err
	}
	addAnswers(commits, b.answers)
	b.f.Commits = len(commits)
	var spread []time.Duration
	for _, c := range commits {
		if !c.Answered.IsZero() {
			spread = append(spread, c.Answered.Sub(c.Written))
		}
	}
	b.f.CommitToAnswer = measure.Summarize(spread)
	b.f.Delivery = judgeDelivery(b.received, commits)
	b.f.FromCommit = measure.Summarize(b.f.Delivery.FromCommit)
	b.f.FromAnswer = measure.Summarize(b.f.Delivery.FromAnswer)
	return nil
}

func (b *bench) cleanup() error {
	var errs []error
	closeAll(b.subs, max(b.o.dialers, 1))
	if b.client != nil {
		b.client.Close()
	}
	if err := rig.Stop(b.server); err != nil {
		errs = append(errs, err)
	}
	if err := b.box.Release(b.db); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
