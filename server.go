// Command livedrops is the Live Drops server: one binary that serves the
// GraphQL API (no arguments), applies migrations (`migrate`) or loads demo data
// (`seed`).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/redis/go-redis/v9"
	"golang.org/x/net/netutil"

	"livedrops/accounts"
	"livedrops/auth"
	"livedrops/cache"
	"livedrops/catalog"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/drops"
	"livedrops/events"
	"livedrops/graph"
	"livedrops/httpapi"
	"livedrops/internal/devstack"
	"livedrops/internalapi"
	"livedrops/live"
	"livedrops/loaders"
	"livedrops/logging"
	"livedrops/media"
	"livedrops/metrics"
	"livedrops/notify"
	"livedrops/orders"
	"livedrops/payments"
	"livedrops/resolvers"
	"livedrops/respcache"
	"livedrops/retention"
	"livedrops/seed"
	"livedrops/store"
	"livedrops/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "livedrops:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := logging.New(cfg.LogLevel, os.Stdout)
	slog.SetDefault(log)
	cache.LogTo(log)
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "", "serve":
		app, err := NewApp(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer app.Close()
		return app.Serve(ctx)
	case "migrate", "seed":
		stack, err := startStack(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer stack.Close()
		db, err := openDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if cmd == "migrate" {
			log.Info("migrations applied")
			return nil
		}
		return seed.Load(ctx, db, drops.New(db, nil), log)
	default:
		return fmt.Errorf("unknown command %q (want no argument, migrate or seed)", cmd)
	}
}

// App is one running Live Drops instance with everything it owns.
type App struct {
	Config  *config.Config
	Log     *slog.Logger
	DB      *store.DB
	Redis   redis.UniversalClient
	Handler http.Handler
	// Operations serves the operators' listener (INTERNAL_ADDR): the
	// internal API, metrics and profiles.
	Operations http.Handler
	// Near is the near cache of reads (nil with READ_CACHE=off).
	Near *cache.Near
	// Responses is the response cache; nil with READ_CACHE=off.
	Responses *respcache.Cache

	stack    *devstack.Stack
	producer *events.Producer
	workers  []func(context.Context) error
	closers  []func() error
	listener net.Listener
	// operations is INTERNAL_ADDR's listener.
	operations net.Listener
}

// startStack starts embedded stand-ins for the services cfg leaves unset.
func startStack(ctx context.Context, cfg *config.Config, log *slog.Logger) (*devstack.Stack, error) {
	if cfg.Prod() {
		return nil, nil
	}
	return devstack.Start(ctx, cfg, log)
}

func openDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	db.Topic = cfg.KafkaTopic
	db.SetMaxOpenConns(cfg.DBMaxConns)
	db.SetMaxIdleConns(cfg.DBMaxConns)
	if err := db.Migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// NewApp connects every part and assembles the HTTP handler. Nothing serves
// until Serve.
func NewApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (app *App, err error) {
	app = &App{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			app.Close()
			app = nil
		}
	}()
	if app.stack, err = startStack(ctx, cfg, log); err != nil {
		return app, err
	}
	if app.DB, err = openDB(ctx, cfg); err != nil {
		return app, err
	}
	app.closers = append(app.closers, app.DB.Close)
	metrics.RegisterDBStats(app.DB.DB.DB)
	metrics.RegisterStatements(app.DB.Statements.Load)

	if app.Redis, err = cache.Connect(cfg.RedisURL); err != nil {
		return app, fmt.Errorf("REDIS_URL: %w", err)
	}
	app.closers = append(app.closers, app.Redis.Close)
	metrics.RegisterRedisStats(app.Redis)
	objects, err := media.New(ctx, cfg)
	if err != nil {
		return app, err
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		return app, err
	}
	if err := events.EnsureTopic(ctx, cfg.KafkaBrokers, cfg.KafkaTopic, 6); err != nil {
		return app, err
	}
	if app.producer, err = events.NewProducer(cfg.KafkaBrokers, log); err != nil {
		return app, err
	}
	app.closers = append(app.closers, func() error { app.producer.Close(); return nil })

	kv := cache.New(app.Redis, cfg.RedisPrefix, 5*time.Minute)
	// READ_CACHE=off reads every loader's value straight from PostgreSQL;
	// writes still evict from Redis.
	readKV, reads := kv, []loaders.Option(nil)
	var near *cache.Near
	if cfg.ReadCacheOn() {
		if near, err = cache.NewNear(cfg.NearCacheBytes, cache.NearTTL); err != nil {
			return app, fmt.Errorf("NEAR_CACHE_BYTES: %w", err)
		}
		app.closers = append(app.closers, func() error { near.Close(); return nil })
		app.Near = near
		kv.EvictsNear(near)
		reads = append(reads, loaders.WithNear(near))
	} else {
		readKV = nil
	}
	tokens := auth.NewTokens([]byte(cfg.JWTSecret), cfg.JWTTTL, time.Now)
	revoked := auth.NewRevoked(nil)
	sessions := accounts.NewSessions(app.DB, app.Redis, cfg.RedisPrefix, revoked, log)
	tokens.UseRevocations(revoked, sessions)
	if err := sessions.Load(ctx); err != nil {
		return app, err
	}
	gate := orders.NewGate(app.Redis, cfg.RedisPrefix)
	gate.Retention = cfg.RetainGateKeys
	app.closers = append(app.closers, gate.Close) // the gate has a Redis client of its own
	provider := payments.NewSimulated()
	orderSvc := orders.New(app.DB, gate, provider, app.Redis, cfg)
	dropSvc := drops.New(app.DB, gate)
	res := &resolvers.Resolver{
		DB:           app.DB,
		Accounts:     accounts.New(app.DB, tokens, kv, accounts.NewLimits(app.Redis, cfg.RedisPrefix, cfg.Abuse)),
		Sessions:     sessions,
		Catalog:      catalog.New(app.DB, objects, kv),
		DropService:  dropSvc,
		OrderService: orderSvc,
	}
	if cfg.SeedEnabled() {
		if err := seed.Load(ctx, app.DB, dropSvc, log); err != nil {
			return app, err
		}
	}
	if cfg.ReadCacheOn() {
		app.Responses = respcache.New(cfg.ResponseCacheBytes)
		// Events apply to this instance's caches at commit too, before Kafka
		// brings them back, so it reads its own writes.
		app.DB.OnCommit = func(ctx context.Context, evs []domain.Event) {
			for _, ev := range evs {
				_ = near.Handle(ctx, ev)
				_ = app.Responses.Handle(ctx, ev)
			}
		}
	}
	if res.Hub, err = app.startLive(kv, near, app.Responses, revoked.Handle); err != nil {
		return app, err
	}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: res, Complexity: resolvers.Complexity()})

	relay := events.NewRelay(app.DB, cfg.DatabaseURL, app.producer, cfg.KafkaTopic, log)
	app.workers = append(app.workers,
		relay.Run,
		drops.NewScheduler(app.DB, dropSvc, log).Run,
		orders.NewSweeper(app.DB, orderSvc, log).Run,
		orders.NewReconciler(app.DB, gate, log).Run,
		newPruner(app.DB, cfg, log).Run,
	)

	ping := func(name string, fn func(context.Context) error) httpapi.Check {
		return httpapi.Check{Name: name, Fn: fn}
	}
	app.Handler = httpapi.New(httpapi.Options{
		Schema:       schema,
		Log:          log,
		Prod:         cfg.Prod(),
		MaxBodyBytes: cfg.MaxBodyBytes,
		Complexity:   queryCostLimit,
		Depth:        12,
		APQCache:     httpapi.NewRedisAPQCache(app.Redis, cfg.RedisPrefix),
		// A password hash costs far more than any other mutation: one a request.
		MutationCosts:        map[string]int{"logIn": passwordHashCost, "signUp": passwordHashCost},
		TrustedProxies:       cfg.TrustedProxies,
		APQMaxBytes:          cfg.APQMaxBytes,
		BodyReadTimeout:      cfg.ReadTimeout,
		WebSocketsPerAddress: cfg.WebSocketsPerAddress,
		Responses:            app.Responses,
		Authenticate:         tokens.Middleware,
		InitWebSocket: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			v, err := tokens.ViewerFromAuthorization(ctx, p.Authorization())
			if err != nil {
				return ctx, nil, err
			}
			if v != nil {
				// Ends (closing the socket with 4401) when the session does.
				ctx = domain.WithViewer(tokens.SessionContext(ctx, v), v)
			}
			// The upgrade request's loaders (loaders.Middleware) serve the
			// connection: made on first use, remembering nothing.
			return ctx, nil, nil
		},
		PerRequest: []func(http.Handler) http.Handler{resolvers.Streams, loaders.Middleware(app.DB, readKV, reads...)},
		Ready: []httpapi.Check{
			ping("postgres", app.DB.PingContext),
			ping("redis", func(ctx context.Context) error { return app.Redis.Ping(ctx).Err() }),
			ping("kafka", app.producer.Ping),
			ping("s3", objects.Ping),
		},
		Playground: playground(),
	})
	app.Operations = httpapi.Operations(internalapi.New(internalapi.Options{
		DB: app.DB, Drops: dropSvc, Orders: orderSvc, Cache: kv, Responses: responseEvicter(app.Responses),
		Token: cfg.InternalToken, WebhookSecret: []byte(cfg.PaymentWebhookSecret), Log: log,
	}), log)
	return app, nil
}

// newPruner applies each table's retention from cfg.
func newPruner(db *store.DB, cfg *config.Config, log *slog.Logger) *retention.Pruner {
	p := retention.NewPruner(db, []retention.Rule{
		{Family: store.PrunedOutbox, Keep: cfg.RetainOutbox},
		{Family: store.PrunedConsumedEvents, Keep: cfg.RetainConsumedEvents},
		{Family: store.PrunedPaymentEvents, Keep: cfg.RetainPaymentEvents},
		{Family: store.PrunedAuditLog, Keep: cfg.RetainAuditLog},
		{Family: store.PrunedDeadLetters, Keep: cfg.RetainDeadLetters},
		// A revocation is needed only while its token lives.
		{Family: store.PrunedRevokedTokens, Keep: time.Hour},
	}, log)
	p.Interval, p.Batch = cfg.PruneInterval, cfg.PruneBatch
	return p
}

// responseEvicter is c as the internal API's evicter; nil (no cache) stays nil.
func responseEvicter(c *respcache.Cache) internalapi.ResponseEvicter {
	if c == nil {
		return nil
	}
	return c
}

// Listen binds the HTTP and internal addresses; Serve uses them (tests bind
// :0 and read Addr and InternalAddr).
func (a *App) Listen() error {
	if a.listener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", a.Config.HTTPAddr, err)
	}
	if a.operations, err = net.Listen("tcp", a.Config.InternalAddr); err != nil {
		ln.Close()
		return fmt.Errorf("INTERNAL_ADDR %s: %w", a.Config.InternalAddr, err)
	}
	a.listener = ln
	return nil
}

// Addr is the bound address, after Listen.
func (a *App) Addr() string { return a.listener.Addr().String() }

// InternalAddr is the operators' listener's bound address, after Listen.
func (a *App) InternalAddr() string { return a.operations.Addr().String() }

// serveOperations serves the operators' listener until ctx ends; profiles
// may run for seconds, so it closes rather than drains.
func (a *App) serveOperations(ctx context.Context) {
	srv := &http.Server{Handler: a.Operations, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: a.Config.IdleTimeout}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	a.Log.Info("internal API, metrics and profiles at http://" + a.InternalAddr() + "/")
	if err := srv.Serve(a.operations); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.Log.Warn("internal listener stopped", "err", err)
	}
}

// Serve runs the background workers and the HTTP server until ctx ends (or a
// worker fails), then shuts down gracefully: live streams end at once, so
// their clients reconnect elsewhere, and the workers stop before Serve returns.
func (a *App) Serve(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	errc := make(chan error, len(a.workers))
	for _, w := range a.workers {
		workers.Go(func() {
			if err := w(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
				cancel()
			}
		})
	}
	workers.Go(func() { a.serveOperations(ctx) })
	a.Log.Info("Live Drops is up: GraphQL Playground at " + playgroundURL(a.Addr(), a.Config.HTTPAddr))
	// No ReadTimeout: it would cut WebSocket and SSE streams; the handler
	// bounds reading each body instead (READ_TIMEOUT).
	srv := &http.Server{
		Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: a.Config.IdleTimeout, MaxHeaderBytes: maxHeaderBytes,
	}
	err := httpapi.Serve(ctx, srv, netutil.LimitListener(a.listener, a.Config.MaxConnections), a.Log, shutdownGrace)
	cancel()
	if !waitFor(&workers, shutdownGrace) {
		a.Log.Warn("stopping", "err", fmt.Errorf("background workers still running %s after shutdown began", shutdownGrace))
	}
	select {
	case werr := <-errc:
		a.Log.Error("stopping", "err", werr)
		if err == nil {
			err = werr
		}
	default:
	}
	return err
}

// passwordHashCost is what logIn and signUp count against
// httpapi.DefaultMaxMutationCost, a request's budget of mutations.
const passwordHashCost = httpapi.DefaultMaxMutationCost

// maxHeaderBytes bounds a request's headers: tokens and cookies fit many times.
const maxHeaderBytes = 64 << 10

// queryCostLimit is the largest cost an operation may have: a full page of
// 100 creators with 5 products each (about 3,500) fits, since a nested
// connection costs one statement per level whatever its parents.
const queryCostLimit = 10000

// shutdownGrace bounds the HTTP shutdown and, after it, the workers' stop.
const shutdownGrace = 15 * time.Second

// waitFor waits for wg at most d, reporting whether it was done in time.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Close releases everything NewApp acquired, the embedded stack last.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Warn("close", "err", err)
		}
	}
	a.closers = nil
	if a.stack != nil {
		if err := a.stack.Close(); err != nil {
			a.Log.Warn("stopping embedded services", "err", err)
		}
		a.stack = nil
	}
}

// playgroundURL turns a bound address into a URL a browser can open,
// naming localhost when the configured address did or listens everywhere.
func playgroundURL(addr, configured string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	configuredHost, _, _ := net.SplitHostPort(configured)
	if host == "" || host == "::" || host == "0.0.0.0" || configuredHost == "localhost" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// playground is the GraphiQL page at / with its assets, wired to /query.
func playground() http.Handler { return web.Handler(web.Options{Endpoint: "/query"}) }

// Consumer groups of the shared consumers: one copy of each sees every event.
const (
	notifierGroup = "livedrops-notifier"
	cacheGroup    = "livedrops-cache"
	// defaultTopic is KAFKA_TOPIC's default; see consumerGroup.
	defaultTopic = "livedrops.events"
	// recentEvents is how many event ids a shared consumer remembers to skip
	// a redelivery without work.
	recentEvents = 4096
)

// consumerGroup names a shared consumer's group for topic: the group itself
// on the default topic, suffixed with any other topic, so deployments (or
// tests) with topics of their own on one broker never share a group, whose
// members would rebalance together.
func consumerGroup(group, topic string) string {
	if topic == defaultTopic {
		return group
	}
	return group + "." + topic
}

// startLive creates the live hub and the consumers around it: a tail
// consumer feeding the revoked sessions, the hub, the near cache and the
// response cache (nil: off) in this instance, and the notifier and Redis
// invalidator in their shared groups. They run with the workers; Close
// closes the consumers first, then the hub.
func (a *App) startLive(kv *cache.Cache, near *cache.Near, responses *respcache.Cache, sessions events.Handler) (*live.Hub, error) {
	cfg := a.Config
	hub := live.NewHub(a.Log, live.Options{
		DropSnapshot:   dropSnapshot(a.DB),
		OrderSnapshot:  orderSnapshot(a.DB),
		OnSlowConsumer: resolvers.EndStream,
	})
	a.closers = append(a.closers, func() error { hub.Close(); return nil })

	// Every instance hears every event. The response cache comes after any
	// cache tier its responses are read through, so a refill reads fresh data.
	handlers := []events.Handler{sessions, hub.Handle}
	if near != nil {
		handlers = append(handlers, near.Handle)
	}
	if responses != nil {
		handlers = append(handlers, responses.Handle)
	}
	tail, err := events.NewTailConsumer(cfg.KafkaBrokers, cfg.KafkaTopic, events.Fanout(handlers...), a.Log)
	if err != nil {
		return nil, err
	}
	a.addConsumer(tail)
	notifier, err := events.NewGroupConsumer(cfg.KafkaBrokers, consumerGroup(notifierGroup, cfg.KafkaTopic), cfg.KafkaTopic,
		events.Dedupe(notify.New(a.DB, a.Log).Handle, recentEvents), a.Log)
	if err != nil {
		return nil, err
	}
	a.addConsumer(notifier)
	invalidator, err := events.NewGroupConsumer(cfg.KafkaBrokers, consumerGroup(cacheGroup, cfg.KafkaTopic), cfg.KafkaTopic,
		events.Dedupe(cache.NewInvalidator(kv).Handle, recentEvents), a.Log)
	if err != nil {
		return nil, err
	}
	a.addConsumer(invalidator)
	return hub, nil
}

// addConsumer runs c with the workers, keeping its poison messages in
// dead_letters, and closes it on Close.
func (a *App) addConsumer(c *events.Consumer) {
	c.DeadLetters = a.DB
	a.workers = append(a.workers, c.Run)
	a.closers = append(a.closers, func() error { c.Close(); return nil })
}

// dropSnapshot reads a drop's state for the first message of dropUpdated.
// The stock carries its version, so the hub ignores stock events older than
// the snapshot. The status is read before the stock: a sale that flips the
// status between the two reads publishes, after the hub registered the
// subscription, the event that brings the status along.
func dropSnapshot(db *store.DB) func(context.Context, int64) (live.DropUpdate, error) {
	return func(ctx context.Context, dropID int64) (live.DropUpdate, error) {
		ds, err := db.DropsByIDs(ctx, []int64{dropID})
		if err != nil {
			return live.DropUpdate{}, err
		}
		if len(ds) == 0 {
			return live.DropUpdate{}, domain.Errorf(domain.NotFound, "drop not found")
		}
		stocks, err := db.StocksByDropIDs(ctx, []int64{dropID})
		if err != nil {
			return live.DropUpdate{}, err
		}
		if len(stocks) == 0 {
			return live.DropUpdate{}, fmt.Errorf("read stock of drop #%d: no inventory row", dropID)
		}
		return live.DropUpdate{DropID: dropID, Status: ds[0].Status, Stock: stocks[0], Version: stocks[0].Version, At: time.Now()}, nil
	}
}

// orderSnapshot reads an order for the first message of orderUpdated.
func orderSnapshot(db *store.DB) func(context.Context, int64) (domain.Order, error) {
	return func(ctx context.Context, orderID int64) (domain.Order, error) {
		os, err := db.OrdersByIDs(ctx, []int64{orderID})
		if err != nil {
			return domain.Order{}, err
		}
		if len(os) == 0 {
			return domain.Order{}, domain.Errorf(domain.NotFound, "order not found")
		}
		return os[0], nil
	}
}
