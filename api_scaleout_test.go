package main

// The scale-out promise, tested with real processes: two instances of the
// built server share nothing but PostgreSQL, Redis, Kafka and S3, and a
// client of one sees what is done through the other. The harness's client
// helpers (testApp, liveConn) talk to the processes over HTTP and WebSocket
// as they talk to an in-process App.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"livedrops/cache"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/serverproc"
	"livedrops/internal/testenv"
	"livedrops/orders"
	"livedrops/payments"
	"livedrops/store"
)

const (
	// scaleOutReadyWithin bounds a process's start until /readyz answers 200.
	scaleOutReadyWithin = 15 * time.Second
	// scaleOutStopWithin bounds a process's graceful shutdown after SIGTERM.
	scaleOutStopWithin = 20 * time.Second
)

// serverProcess is the server binary running as a process of the test's own;
// its testApp has URL, HTTP, Config and (once set) DB, not App; its log is
// the file at proc.LogPath.
type serverProcess struct {
	*testApp
	name string
	proc *serverproc.Server
}

// buildServer builds this package's binary into a temp dir and returns its path.
func buildServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "livedrops")
	began := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the server: %v\n%s", err, out)
	}
	t.Logf("server built in %v", time.Since(began).Round(time.Millisecond))
	return bin
}

// serverEnv is the environment of a server process serving on addr with
// cfg's services, the same for every instance but the address and data dir.
func serverEnv(cfg *config.Config, addr, dataDir string) []string {
	return []string{
		"APP_ENV=dev",
		"HTTP_ADDR=" + addr,
		"DATABASE_URL=" + cfg.DatabaseURL,
		"DB_MAX_CONNS=8",
		"REDIS_URL=" + cfg.RedisURL,
		"REDIS_PREFIX=" + cfg.RedisPrefix,
		"KAFKA_BROKERS=" + cfg.KafkaBrokers,
		"KAFKA_TOPIC=" + cfg.KafkaTopic,
		"S3_ENDPOINT=" + cfg.S3Endpoint,
		"S3_BUCKET=" + cfg.S3Bucket,
		"S3_REGION=" + cfg.S3Region,
		"S3_ACCESS_KEY=" + cfg.S3AccessKey,
		"S3_SECRET_KEY=" + cfg.S3SecretKey,
		"MEDIA_BASE_URL=" + cfg.MediaBaseURL,
		"JWT_SECRET=" + cfg.JWTSecret,
		"SEED=false",
		"LOG_LEVEL=warn",
		"DATA_DIR=" + dataDir,
	}
}

// startServer starts bin on a free loopback port with cfg's services and
// returns once its /readyz answers 200. A process still running when the
// test ends is killed, and its log is printed if the test failed.
func startServer(t *testing.T, name, bin string, cfg *config.Config) (*serverProcess, error) {
	addr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(t.TempDir(), "server-"+name+".log")
	proc, err := serverproc.Start(t.Context(), bin, addr, serverEnv(cfg, addr, t.TempDir()), logPath, scaleOutReadyWithin)
	if err != nil {
		return nil, fmt.Errorf("start server %s: %w", name, err)
	}
	p := &serverProcess{
		testApp: &testApp{
			URL:         proc.URL,
			InternalURL: proc.InternalURL,
			Config:      cfg,
			HTTP: &http.Client{
				Timeout:   30 * time.Second,
				Transport: &http.Transport{MaxIdleConns: 100, MaxIdleConnsPerHost: 100, IdleConnTimeout: 30 * time.Second},
			},
		},
		name: name,
		proc: proc,
	}
	t.Cleanup(func() {
		proc.Kill() // the test stopped before stopping it
		p.HTTP.CloseIdleConnections()
		if t.Failed() {
			logs, err := os.ReadFile(logPath)
			if err != nil {
				t.Logf("server %s: read its log: %v", name, err)
			}
			t.Logf("server %s (%s) logs:\n%s", name, p.URL, logs)
		}
	})
	return p, nil
}

// startServers starts one process per name at once and fails the test
// unless every one is ready.
func startServers(t *testing.T, bin string, cfg *config.Config, names ...string) []*serverProcess {
	t.Helper()
	procs := make([]*serverProcess, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { procs[i], errs[i] = startServer(t, name, bin, cfg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return procs
}

// stopServers stops every process at once and fails the test for each that
// did not exit 0 within scaleOutStopWithin of SIGTERM.
func stopServers(t testing.TB, procs ...*serverProcess) {
	t.Helper()
	took := make([]time.Duration, len(procs))
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			began := time.Now()
			errs[i] = p.proc.Stop(scaleOutStopWithin)
			took[i] = time.Since(began)
		})
	}
	wg.Wait()
	for i, p := range procs {
		if errs[i] != nil {
			t.Errorf("server %s: %v", p.name, errs[i])
			continue
		}
		t.Logf("server %s exited 0, %v after SIGTERM", p.name, took[i].Round(time.Millisecond))
	}
}

// shareDB opens a handle of the test's own on the servers' database, of at
// most conns connections, for fixtures, and gives it to each server.
func shareDB(t *testing.T, cfg *config.Config, conns int, servers ...*serverProcess) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	t.Cleanup(func() { db.Close() })
	for _, s := range servers {
		s.DB = db
	}
	return db
}

// subscribers reads the process's gauge of open live subscriptions of kind
// (drop, creators, user, order) from its /metrics.
func (p *serverProcess) subscribers(t testing.TB, kind string) float64 {
	t.Helper()
	return p.metric(t, `livedrops_live_subscribers{kind="`+kind+`"}`)
}

// metric reads one series (name and labels, as /metrics prints them) from
// the process's /metrics; 0 when it is absent.
func (p *serverProcess) metric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := p.HTTP.Get(p.InternalURL + "/metrics")
	if err != nil {
		t.Fatalf("server %s: read /metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("server %s: /metrics answered %d: %v", p.name, resp.StatusCode, err)
	}
	prefix := series + " "
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("server %s: metric line %q: %v", p.name, line, err)
			}
			return n
		}
	}
	return 0
}

// untilAvailable reads a drop subscription until it shows want units
// available, checking on the way that every state adds up to total, that
// stock only falls, and that the drop stays LIVE.
func untilAvailable(t testing.TB, s *liveStream, total, want int) time.Time {
	t.Helper()
	last := total
	for {
		ev := s.next(t, liveWithin)
		if ev.Kind != "next" {
			t.Fatalf("%s: got %s %s, want stock %d", s.name, ev.Kind, ev.Payload, want)
		}
		u := decode[struct{ Data dropUpdateData }](t, ev.Payload).Data.DropUpdated
		st := u.Stock
		if st.Available+st.Reserved+st.Sold != st.Total || st.Total != total {
			t.Fatalf("%s: stock %+v does not add up to %d", s.name, st, total)
		}
		if st.Available > last || st.Available < want {
			t.Fatalf("%s: available %d after %d, want it to fall to %d", s.name, st.Available, last, want)
		}
		if u.Status != "LIVE" {
			t.Fatalf("%s: status %s with %d available", s.name, u.Status, st.Available)
		}
		if last = st.Available; last == want {
			return ev.At
		}
	}
}

// TestScaleOutTwoProcesses runs the server as two processes, A and B, on one
// database, Redis prefix, Kafka topic and bucket. Everything is done through
// B and watched through A: a follower's dropEvents sees the drop scheduled
// and started, dropUpdated sees the stock fall order by order to SOLD_OUT
// within 2 s of the last order, a buyer's orderUpdated sees its payment
// confirmed, and a product changed through B is read fresh through A. Both
// processes then exit 0 on SIGTERM.
func TestScaleOutTwoProcesses(t *testing.T) {
	bin := buildServer(t)
	cfg := testenv.Config(t)
	// Not the dev default: tokens minted with it prove both read JWT_SECRET.
	cfg.JWTSecret = "scale-out-shared-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	began := time.Now()
	servers := startServers(t, bin, cfg, "A", "B")
	a, b := servers[0], servers[1]
	t.Logf("both servers ready %v after launch", time.Since(began).Round(time.Millisecond))
	// After the servers' cleanups, so it runs before them: stop both gracefully.
	t.Cleanup(func() { stopServers(t, a, b) })

	// Fixtures' users go straight into the shared database.
	shareDB(t, cfg, 2, a, b)
	rdb, err := cache.Connect(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })

	const stock = 3
	creatorToken, creatorID := b.makeCreator(t)
	productID := b.createProduct(t, creatorToken, "Original")
	_, fanToken := b.mustNewUser(t, uniqueHandle("fan"))
	b.mustGQL(t, fanToken, `mutation($id: ID!) { follow(creatorId: $id) { id } }`, map[string]any{"id": creatorID}, nil)
	buyerTokens := make([]string, stock)
	for i := range buyerTokens {
		_, buyerTokens[i] = b.mustNewUser(t, uniqueHandle("buyer"))
	}

	// The follower listens on A to the creators it follows; dropEvents sends
	// no first message, so wait until A's hub counts the subscription.
	fan := a.dialLive(t, protoTransportWS, fanToken)
	news := fan.subscribe(t, `subscription { dropEvents { kind drop { id } } }`, nil, 16)
	news.name = "dropEvents on A"
	eventually(t, liveWithin, func() string {
		if n := a.subscribers(t, "creators"); n != 1 {
			return fmt.Sprintf("server A has %v dropEvents subscriptions, want 1", n)
		}
		return ""
	})
	nextNews := func(kind, dropID string, skip ...string) time.Time {
		t.Helper()
		for {
			ev := news.next(t, liveWithin)
			if ev.Kind != "next" {
				t.Fatalf("dropEvents on A: got %s %s, want %s", ev.Kind, ev.Payload, kind)
			}
			e := decode[struct{ Data dropEventData }](t, ev.Payload).Data.DropEvents
			if e.Kind == kind && e.Drop.ID == dropID {
				return ev.At
			}
			if e.Drop.ID != dropID || !slices.Contains(skip, e.Kind) {
				t.Fatalf("dropEvents on A sent %+v, want %s of %s", e, kind, dropID)
			}
		}
	}

	scheduled := time.Now()
	dropID := b.scheduleLiveDrop(t, creatorToken, productID, stock)
	t.Logf("A: DROP_SCHEDULED %v after scheduleDrop on B", nextNews("DROP_SCHEDULED", dropID).Sub(scheduled).Round(time.Millisecond))

	// A drop page on A: its first message is the current state.
	drop := a.dialLive(t, protoTransportWS, "").subscribe(t, dropUpdatedQuery, map[string]any{"id": dropID}, 64)
	drop.name = "dropUpdated on A"
	var snap dropUpdateData
	drop.mustResult(t, &snap)
	if u := snap.DropUpdated; u.Drop.ID != dropID || u.Status != "SCHEDULED" || u.Stock.Available != stock || u.Stock.Total != stock {
		t.Fatalf("dropUpdated snapshot on A: %+v", u)
	}

	started := time.Now()
	b.dropMutation(t, creatorToken, "startDrop", dropID)
	t.Logf("A: DROP_STARTED %v after startDrop on B", nextNews("DROP_STARTED", dropID).Sub(started).Round(time.Millisecond))
	for snap.DropUpdated.Status != "LIVE" {
		drop.mustResult(t, &snap)
		if s := snap.DropUpdated.Status; s != "SCHEDULED" && s != "LIVE" {
			t.Fatalf("dropUpdated on A: status %s after startDrop", s)
		}
	}

	// Orders on B, one at a time: A sees each one's stock, then SOLD_OUT.
	orderIDs := make([]string, stock)
	for i, token := range buyerTokens {
		sent := time.Now()
		resp, err := b.placeOne(token, dropID, "scale-out-"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Errors) > 0 {
			t.Fatalf("order %d on B: %s", i+1, describeErrors(resp.Errors))
		}
		orderIDs[i] = decode[struct{ PlaceOrder struct{ ID string } }](t, resp.Data).PlaceOrder.ID
		if left := stock - i - 1; left > 0 {
			t.Logf("A: %d available %v after order %d was sent to B", left,
				untilAvailable(t, drop, stock, left).Sub(sent).Round(time.Millisecond), i+1)
			continue
		}
		at, _ := untilSoldOut(t, drop, stock)
		latency := at.Sub(sent)
		t.Logf("A: SOLD_OUT %v after the last order was sent to B", latency.Round(time.Millisecond))
		if latency > 2*time.Second {
			t.Fatalf("A saw SOLD_OUT %v after the last order was sent to B, want within 2s", latency)
		}
	}
	nextNews("SOLD_OUT", dropID, "STOCK_LOW")

	// A shares B's gate and inventory: a late buyer on A is refused.
	_, lateToken := a.mustNewUser(t, uniqueHandle("late"))
	late, err := a.placeOne(lateToken, dropID, "late")
	if err != nil {
		t.Fatal(err)
	}
	requireError(t, late.Errors, domain.SoldOut, "")

	// The first buyer watches its order on A and pays through B.
	order := a.dialLive(t, protoTransportWS, buyerTokens[0]).subscribe(t,
		`subscription($id: ID!) { orderUpdated(orderId: $id) { id status } }`, map[string]any{"id": orderIDs[0]}, 8)
	order.name = "orderUpdated on A"
	var o struct{ OrderUpdated struct{ ID, Status string } }
	order.mustResult(t, &o)
	if o.OrderUpdated.ID != orderIDs[0] || o.OrderUpdated.Status != string(domain.OrderPendingPayment) {
		t.Fatalf("orderUpdated snapshot on A: %+v", o.OrderUpdated)
	}
	paid := time.Now()
	if p, errs := orderMutation(t, b.testApp, buyerTokens[0], salePayOrder, map[string]any{"id": orderIDs[0], "pm": payments.MethodSucceeds}); len(errs) > 0 || p.Status != string(domain.OrderConfirmed) {
		t.Fatalf("payOrder on B: %+v %s", p, describeErrors(errs))
	}
	order.mustResult(t, &o)
	if o.OrderUpdated.Status != string(domain.OrderConfirmed) {
		t.Fatalf("orderUpdated on A after payment on B: %+v", o.OrderUpdated)
	}
	t.Logf("A: CONFIRMED %v after payOrder was sent to B", time.Since(paid).Round(time.Millisecond))
	order.ended(t)

	// A reads the product into the shared cache; B changes it; A reads the change.
	const productQuery = `query($id: ID!) { product(id: $id) { title } }`
	cacheKey := cfg.RedisPrefix + "product:" + strconv.FormatInt(mustKey(t, productID), 10)
	readA := func() string {
		var p struct{ Product struct{ Title string } }
		a.mustGQL(t, "", productQuery, map[string]any{"id": productID}, &p)
		return p.Product.Title
	}
	// The creation's own ProductUpdated may evict what A caches before it is
	// handled: read until A's copy stays.
	eventually(t, liveWithin, func() string {
		title := readA()
		n, err := rdb.Exists(context.Background(), cacheKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		if title != "Original" || n != 1 {
			return fmt.Sprintf("A read %q, cached %v", title, n == 1)
		}
		return ""
	})
	b.mustGQL(t, creatorToken, `mutation($in: UpdateProductInput!) { updateProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"id": productID, "title": "Renamed"}}, nil)
	// A's response cache drops its copy when the event arrives.
	renamed := time.Now()
	eventually(t, liveWithin, func() string {
		if title := readA(); title != "Renamed" {
			return fmt.Sprintf("A serves %q after B renamed the product", title)
		}
		return ""
	})
	t.Logf("A: renamed product served %v after B answered the update", time.Since(renamed).Round(time.Millisecond))
}

// The Redis-loss promise across processes: two servers share a Redis that is
// killed while buyers order and comes back empty. Every buyer holding an
// order gets it back with its key from either server, the drop sells out
// exactly, and then new keys are answered SOLD_OUT by the gate alone.
func TestScaleOutRedisLostKeepsEveryOrder(t *testing.T) {
	bin := buildServer(t)
	cfg := testenv.Config(t)
	redisSrv := testenv.PrivateRedis(t)
	cfg.RedisURL = redisSrv.URL()
	servers := startServers(t, bin, cfg, "A", "B")
	t.Cleanup(func() { stopServers(t, servers...) })
	db, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	for _, p := range servers {
		p.DB = db
	}
	a := servers[0]
	const stock = 30
	_, _, dropID := a.startLiveDrop(t, stock)
	dropKey := mustKey(t, dropID)
	buyers := provisionBuyers(t, a.testApp, 80)
	key := func(i int) string { return "redis-loss-" + strconv.Itoa(i) }
	held := map[int]string{} // buyer → its order's id
	// place sends buyers' orders at once, alternating the servers.
	place := func(idx []int, key func(int) string) []saleAnswer {
		out := make([]saleAnswer, len(idx))
		errs := make([]error, len(idx))
		var wg sync.WaitGroup
		for j, i := range idx {
			wg.Go(func() {
				resp, err := servers[j%2].placeOne(buyers[i].token, dropID, key(i))
				if err == nil {
					out[j], err = readAnswer(resp)
				}
				out[j].buyer, errs[j] = i, err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	keep := func(as []saleAnswer) {
		for _, an := range as {
			if an.code != "" {
				t.Fatalf("buyer %d: %s", an.buyer, an.code)
			}
			held[an.buyer] = an.order.ID
		}
	}
	wantOwn := func(as []saleAnswer) {
		for _, an := range as {
			if an.code != "" || an.order.ID != held[an.buyer] {
				t.Fatalf("buyer %d retried its key: %+v %s, want its order %s", an.buyer, an.order, an.code, held[an.buyer])
			}
		}
	}
	span := func(from, to int) []int {
		out := make([]int, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return out
	}
	holders := func() []int {
		out := make([]int, 0, len(held))
		for i := range held {
			out = append(out, i)
		}
		slices.Sort(out)
		return out
	}

	keep(place(span(0, 20), key))
	redisSrv.Kill()
	keep(place(span(20, 25), key)) // PostgreSQL alone
	redisSrv.Start()               // empty
	restarted := time.Now()
	wantOwn(place(holders()[:12], key))

	// Past the servers' cooldown their orders reach Redis again, find the
	// counter missing and have it restored with every key.
	time.Sleep(time.Until(restarted.Add(time.Second)))
	wantOwn(place(holders()[:12], key))
	rdb, err := cache.Connect(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	gate := orders.NewGate(rdb, cfg.RedisPrefix)
	t.Cleanup(func() { gate.Close() })
	eventually(t, 10*time.Second, func() string {
		if n, ok, err := gate.Counter(context.Background(), dropKey); err != nil || !ok || n != stock-25 {
			return fmt.Sprintf("gate counter %d (exists %v, %v), want %d", n, ok, err, stock-25)
		}
		return ""
	})
	if n := a.metric(t, "livedrops_gate_restored_total") + servers[1].metric(t, "livedrops_gate_restored_total"); n < 1 {
		t.Fatalf("livedrops_gate_restored_total is %v on both servers, want at least 1", n)
	}

	// The rest: exactly the 5 units left, then every holder its own order.
	soldOut := 0
	for _, an := range place(span(25, 80), key) {
		switch an.code {
		case "":
			held[an.buyer] = an.order.ID
		case string(domain.SoldOut):
			soldOut++
		default:
			t.Fatalf("buyer %d: %s", an.buyer, an.code)
		}
	}
	if len(held) != stock || soldOut != 80-stock {
		t.Fatalf("%d orders and %d SOLD_OUT, want %d and %d", len(held), soldOut, stock, 80-stock)
	}
	var st domain.Stock
	if err := db.GetContext(context.Background(), &st, `SELECT total, available, reserved, sold FROM inventory WHERE drop_id = $1`, dropKey); err != nil ||
		st.Available != 0 || st.Reserved != stock || st.Total != stock {
		t.Fatalf("inventory %+v (%v), want all %d reserved", st, err, stock)
	}
	wantOwn(place(holders(), key))

	// New keys: SOLD_OUT, every one answered by a gate.
	gateSoldOut := func() float64 {
		return a.metric(t, `livedrops_gate_total{result="sold_out"}`) + servers[1].metric(t, `livedrops_gate_total{result="sold_out"}`)
	}
	before := gateSoldOut()
	for _, an := range place(span(30, 70), func(i int) string { return "again-" + key(i) }) {
		if an.code != string(domain.SoldOut) {
			t.Fatalf("buyer %d with a new key: %+v %s, want SOLD_OUT", an.buyer, an.order, an.code)
		}
	}
	if n := gateSoldOut() - before; n != 40 {
		t.Fatalf("the gates answered %v of 40 new keys SOLD_OUT, want all", n)
	}
}
