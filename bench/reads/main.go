// Command reads is the reads benchmark (`make bench-reads`).
//
// It fills a fresh database on the real services with creators, products,
// one creator with many followers and a few live drops; boots the built
// server twice as processes of their own, side by side on that database:
// "warm" with its read caches (READ_CACHE=on) and "cold" without
// (READ_CACHE=off); and boots the ceiling, a bare net/http process answering
// each shape's recorded bytes (and, with -postgraphile, PostGraphile as a
// peer). One load process drives each read shape at each of them in turn,
// over the same number of keep-alive connections, and prints reads/s,
// latency, the server's CPU and SQL statements per read, and the ratio to
// the ceiling; the last line is machine-readable.
//
// Every answer is compared with the first, which was checked in full; it
// exits 1 when any answer failed or the run broke.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"livedrops/bench/internal/cputime"
	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/rig"
	"livedrops/bench/internal/sandbox"
	"livedrops/internal/serverproc"
	"livedrops/store"
)

type options struct {
	server   rig.Server
	conns    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	shapes   string
	procs    int
	data     dataset
	// postgraphile is where PostGraphile is installed; "" runs no peer.
	postgraphile string
}

func main() {
	if dir := os.Getenv(bareDirEnv); dir != "" {
		if err := serveBare(dir, os.Getenv(bareAddrEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "bench-reads:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	o.server.Flags(flag.CommandLine)
	flag.IntVar(&o.conns, "conns", 32, "keep-alive HTTP/1.1 connections, one worker each")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per shape, mode and round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each measured window")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds over every shape and mode; figures are medians, with the spread")
	flag.StringVar(&o.shapes, "shapes", "all", "comma-separated shapes to run: drop,creators,products,followers,live")
	flag.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of this load process (0: Go's default)")
	flag.IntVar(&o.data.Creators, "creators", 200, "creators in the dataset")
	flag.IntVar(&o.data.ProductsPerCreator, "products", 20, "products per creator")
	flag.IntVar(&o.data.Followers, "followers", 100_000, "followers of the first creator")
	flag.IntVar(&o.data.LiveDrops, "live-drops", 5, "live drops")
	flag.StringVar(&o.postgraphile, "postgraphile", "", "run the shapes at PostGraphile 5 too, installed in this directory by scripts/install-postgraphile.sh")
	flag.Parse()
	o.data.Stock = 1000
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	// The load keeps every latency of a window; collecting less often keeps
	// its pauses out of the figures.
	debug.SetGCPercent(400)

	b := &bench{o: o, out: os.Stdout}
	rig.Main("bench-reads", b.run, b.cleanup, b.verdict)
}

// target is one server the load is pointed at.
type target struct {
	Mode string // warm, cold or bare
	URL  string // the endpoint requests are posted to; bare adds /<shape>
	Proc *serverproc.Server
}

// bench is one run: its sandbox, servers and figures.
type bench struct {
	o      options
	out    io.Writer
	shapes []shape
	box    *sandbox.Sandbox
	db     *store.DB
	prov   provisioned

	warm, cold, bare *serverproc.Server
	// peer is PostGraphile over the same database, nil without -postgraphile.
	peer *serverproc.Server
	// peerAnswers are the peer's expected answers, by shape name.
	peerAnswers map[string][]byte
	// bareDir holds the ceiling's answers and log.
	bareDir string
	// answers are each shape's expected answer, by shape name.
	answers map[string][]byte
	// results[r][s] is round r's figures of shapes[s].
	results [][]shapeRound
	// setupFailures are answers that failed before any round.
	setupFailures []string
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

func (b *bench) run(ctx context.Context) error {
	o := b.o
	if o.conns < 1 || o.rounds < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("conns and rounds must be positive, duration above zero, warmup not below")
	}
	var err error
	if b.shapes, err = pickShapes(o.shapes); err != nil {
		return err
	}
	if err := o.server.CheckBin(); err != nil {
		return err
	}
	b.header()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.probe(ctx); err != nil {
		return err
	}
	if len(b.setupFailures) > 0 {
		return fmt.Errorf("the first answers are wrong: %s", strings.Join(b.setupFailures, "; "))
	}
	for r := 1; r <= o.rounds; r++ {
		row := make([]shapeRound, len(b.shapes))
		for i, s := range b.shapes {
			if row[i], err = b.measureShape(ctx, s); err != nil {
				return fmt.Errorf("round %d, %s: %w", r, s.Name, err)
			}
			b.printShapeRound(r, s, row[i])
		}
		b.results = append(b.results, row)
	}
	b.summary()
	return nil
}

// setup makes the sandbox, migrates and fills its database, then starts
// both servers on it (caches empty) and the bare ceiling once the answers
// are known (probe).
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.box, err = sandbox.New(ctx, sandbox.ServicesFromEnv()); err != nil {
		return err
	}
	if b.db, err = b.box.OpenMigrated(ctx, 2); err != nil {
		return err
	}
	started := time.Now()
	if b.prov, err = provision(ctx, b.db.DB.DB, b.o.data); err != nil {
		return err
	}
	p := b.prov
	b.printf("data       %d creators, %d products (one image each), %d follows (%s has %d followers), %d live drops; written in %.1fs\n",
		p.Creators, p.Products, p.Follows, p.BigHandle, p.BigFollowers, p.LiveDrops, time.Since(started).Seconds())
	b.printf("           database %s, Redis prefix %s, Kafka topic %s\n", b.box.Name, b.box.RedisPrefix, b.box.KafkaTopic)
	if b.warm, err = b.startServer(ctx, "warm", "on"); err != nil {
		return err
	}
	if b.cold, err = b.startServer(ctx, "cold", "off"); err != nil {
		return err
	}
	if b.o.postgraphile == "" {
		return nil
	}
	started = time.Now()
	if b.peer, err = startPostGraphile(ctx, b.o.postgraphile, b.box.DatabaseURL, filepath.Join(b.o.server.LogDir, "peer")); err != nil {
		return err
	}
	b.printf("peer       PostGraphile 5 (amber preset) pid %d on %s over the same database, ready in %.1fs; log %s\n",
		b.peer.PID(), strings.TrimPrefix(b.peer.URL, "http://"), time.Since(started).Seconds(), b.peer.LogPath)
	return nil
}

// startServer starts one server with READ_CACHE=readCache, logging under a
// directory of its mode's name.
func (b *bench) startServer(ctx context.Context, mode, readCache string) (*serverproc.Server, error) {
	s := b.o.server
	s.LogDir = filepath.Join(s.LogDir, mode)
	started := time.Now()
	srv, err := s.Start(ctx, b.box, "READ_CACHE="+readCache)
	if err != nil {
		return nil, fmt.Errorf("start the %s server: %w", mode, err)
	}
	b.printf("server     %-4s pid %d on %s, READ_CACHE=%s, ready in %.1fs; log %s\n", mode, srv.PID(),
		strings.TrimPrefix(srv.URL, "http://"), readCache, time.Since(started).Seconds(), srv.LogPath)
	return srv, nil
}

// probe sends each shape once to each server, checks the answers in full,
// keeps the warm server's as the expected bytes, and starts the ceiling
// answering them.
func (b *bench) probe(ctx context.Context) error {
	b.answers = map[string][]byte{}
	for _, s := range b.shapes {
		for _, srv := range []struct {
			mode string
			proc *serverproc.Server
		}{{"warm", b.warm}, {"cold", b.cold}} {
			raw, why, err := firstAnswer(ctx, srv.proc.URL+"/query", s, b.o.data, b.prov)
			if err != nil {
				return fmt.Errorf("%s, %s server: %w", s.Name, srv.mode, err)
			}
			if why != "" {
				b.setupFailures = append(b.setupFailures, fmt.Sprintf("%s, %s server: %s", s.Name, srv.mode, why))
				continue
			}
			if want, ok := b.answers[s.Name]; ok && string(want) != string(raw) {
				b.setupFailures = append(b.setupFailures, fmt.Sprintf("%s: the cold server answers other bytes than the warm one:\n%s\n%s", s.Name, want, raw))
				continue
			}
			b.answers[s.Name] = raw
		}
	}
	if b.peer != nil {
		b.peerAnswers = map[string][]byte{}
		for _, s := range b.shapes {
			ps := peerShape(s, b.prov)
			raw, why, err := firstAnswer(ctx, b.peer.URL+"/graphql", ps, b.o.data, b.prov)
			if err != nil {
				return fmt.Errorf("%s, peer: %w", s.Name, err)
			}
			if why != "" {
				b.setupFailures = append(b.setupFailures, fmt.Sprintf("%s, peer: %s", s.Name, why))
			}
			b.peerAnswers[s.Name] = raw
		}
	}
	if len(b.setupFailures) > 0 {
		return nil
	}
	var err error
	b.bareDir = filepath.Join(b.o.server.LogDir, b.box.Name+".bare")
	if b.bare, err = startBare(ctx, b.bareDir, b.answers); err != nil {
		return err
	}
	b.printf("bare       pid %d on %s: net/http answering each shape's recorded bytes (the ceiling)\n", b.bare.PID(), strings.TrimPrefix(b.bare.URL, "http://"))
	for _, s := range b.shapes {
		b.printf("shape      %-9s %s; answer %d bytes\n", s.Name, s.What, len(b.answers[s.Name]))
	}
	return nil
}

// firstAnswer sends s once to the endpoint url and judges the answer in full.
func firstAnswer(ctx context.Context, url string, s shape, d dataset, p provisioned) ([]byte, string, error) {
	c, err := gql.Dial(ctx, url)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	status, raw, err := c.Post(ctx, "", s.body(p))
	if err != nil {
		return nil, "", err
	}
	return raw, judgeFirst(s, status, raw, d, p), nil
}

// measureShape runs one shape against the warm server, the cold one, the
// ceiling and the peer if any, one after the other.
func (b *bench) measureShape(ctx context.Context, s shape) (shapeRound, error) {
	sr := shapeRound{HasPeer: b.peer != nil}
	body := s.body(b.prov)
	type run struct {
		into       *measurement
		url        string
		proc       *serverproc.Server
		sql        bool
		body, want []byte
	}
	runs := []run{
		{&sr.Warm, b.warm.URL + "/query", b.warm, true, body, b.answers[s.Name]},
		{&sr.Cold, b.cold.URL + "/query", b.cold, true, body, b.answers[s.Name]},
		{&sr.Bare, b.bare.URL + "/" + s.Name, b.bare, false, body, b.answers[s.Name]},
	}
	if b.peer != nil {
		runs = append(runs, run{&sr.Peer, b.peer.URL + "/graphql", b.peer, false, peerShape(s, b.prov).body(b.prov), b.peerAnswers[s.Name]})
	}
	var err error
	for _, r := range runs {
		if *r.into, err = b.measure(ctx, r.url, r.proc, r.sql, r.body, r.want); err != nil {
			return sr, err
		}
	}
	return sr, nil
}

// measure warms the connections up, then measures one window: the load's
// answers, the process's CPU and, for a Live Drops server, its SQL statements.
func (b *bench) measure(ctx context.Context, url string, proc *serverproc.Server, sql bool, body, want []byte) (measurement, error) {
	l, err := openLoad(ctx, url, b.o.conns, body, want)
	if err != nil {
		return measurement{}, err
	}
	defer l.Close()
	var m measurement
	m.WarmupFailures = l.run(ctx, b.o.warmup).Failures
	stmts0, stmtsOK0 := scrapeStatements(ctx, proc.InternalURL, sql)
	cpu0, err0 := cputime.Process(proc.PID())
	self0, errSelf0 := cputime.Self()
	m.window = l.run(ctx, b.o.duration)
	cpu1, err1 := cputime.Process(proc.PID())
	self1, errSelf1 := cputime.Self()
	stmts1, stmtsOK1 := scrapeStatements(ctx, proc.InternalURL, sql)
	if ctx.Err() != nil {
		return m, ctx.Err()
	}
	if proc.Exited() {
		return m, fmt.Errorf("the server at %s died:\n%s", proc.URL, proc.Tail(20))
	}
	if err0 == nil && err1 == nil && m.Reads > 0 {
		m.CPUPerRead, m.CPUOK = (cpu1-cpu0)/time.Duration(m.Reads), true
	}
	if errSelf0 == nil && errSelf1 == nil && m.Elapsed > 0 {
		m.LoadCores = (self1 - self0).Seconds() / m.Elapsed.Seconds()
	}
	if stmtsOK0 && stmtsOK1 && m.Reads > 0 {
		m.StatementsPerRead, m.StatementsOK = (stmts1-stmts0)/float64(m.Reads), true
	}
	return m, nil
}

func (b *bench) cleanup() error {
	var errs []error
	for _, srv := range []**serverproc.Server{&b.warm, &b.cold, &b.bare} {
		if err := rig.Stop(*srv); err != nil {
			errs = append(errs, err)
		}
		*srv = nil
	}
	if err := stopPeer(b.peer); err != nil {
		errs = append(errs, err)
	}
	b.peer = nil
	if b.bareDir != "" {
		if err := os.RemoveAll(b.bareDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.box.Release(b.db); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *bench) header() {
	o := b.o
	b.printf("reads benchmark (make bench-reads)\n")
	b.printf("machine    %d CPU cores shared by everything: both servers, the bare ceiling, this load generator,\n", runtime.NumCPU())
	b.printf("           PostgreSQL, Redis, the Kafka broker and the S3 server. Figures are this machine's, not a capacity claim.\n")
	if load := rig.LoadAverage(); load != "" {
		b.printf("           load average before the run %s (1/5/15 min): other work on the machine lowers every figure\n", load)
	}
	b.printf("load       %d keep-alive HTTP/1.1 connections, each sending its next request when its last is answered;\n", o.conns)
	b.printf("           per shape, mode and round %s of warm-up then %s measured; %d rounds; GOMAXPROCS=%d\n",
		o.warmup, o.duration, o.rounds, runtime.GOMAXPROCS(0))
	b.printf("modes      warm = server with READ_CACHE=on (default), measured after its warm-up;\n")
	b.printf("           cold = a second server, side by side on the same database, with READ_CACHE=off\n")
	b.printf("           (a server that does not know READ_CACHE ignores it: then cold reads like warm);\n")
	b.printf("           bare = a net/http process answering the same bytes: the ceiling; ratio = reads/s over bare's\n")
	if o.postgraphile != "" {
		b.printf("           peer = PostGraphile 5 over the same database, sent each shape as the same read in its schema\n")
	}
	b.printf("cpu        server process CPU (/proc/<pid>/stat) per read over the window; statements from livedrops_sql_statements_total\n")
}
