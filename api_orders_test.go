package main

// End-to-end tests of selling through the real server: stampedes (with
// retried requests, without Redis, behind a gate counter that is wrong), a
// broker outage, the ways reserved stock comes back, the payment webhook, a
// drop's life, who sees which order, the order rate limit and the internal
// API. Every test boots its own App (main_test.go) on the real services.
//
// The stampede tests do not call t.Parallel: they run alone, so their timing
// is their own and the process-wide gate metrics they read count only their
// own Redis failures. The others run in parallel with each other.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"livedrops/config"
	"livedrops/domain"
	"livedrops/events"
	"livedrops/internal/testenv"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
)

// salePlaceOrder is the placeOrder mutation every test here sends.
const salePlaceOrder = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id status quantity } }`

// dropSale is one creator's drop on a running app.
type dropSale struct {
	app *testApp
	// pg reads and checks the app's database (inventory balance, outbox).
	pg           *orderstest.World
	creatorToken string
	productID    string
	dropID       string // the global id
	id           int64  // the database key
}

// saleBuyer is a user provisioned straight in the database, with a token.
type saleBuyer struct {
	user  *domain.User
	token string
}

// newDropSale makes a creator with a product and schedules a drop of it,
// starting in an hour and lasting two, through the API.
func newDropSale(t testing.TB, app *testApp, stock, perUserLimit int) *dropSale {
	t.Helper()
	token, _, _ := app.makeCreatorNamed(t, uniqueHandle("seller"))
	s := &dropSale{app: app, pg: &orderstest.World{DB: app.DB}, creatorToken: token}
	s.productID = app.createProduct(t, token, "Sneaker")
	now := time.Now()
	s.dropID = saleSchedule(t, app, token, s.productID, now.Add(time.Hour), now.Add(3*time.Hour), stock, perUserLimit)
	s.id = mustKey(t, s.dropID)
	return s
}

// newLiveSale is newDropSale followed by the owner's startDrop.
func newLiveSale(t testing.TB, app *testApp, stock, perUserLimit int) *dropSale {
	t.Helper()
	s := newDropSale(t, app, stock, perUserLimit)
	if got := s.mutateDrop(t, s.creatorToken, "startDrop"); got != string(domain.DropLive) {
		t.Fatalf("startDrop answered status %s", got)
	}
	return s
}

// saleSchedule schedules a drop of the product through the API and returns its id.
func saleSchedule(t testing.TB, app *testApp, token, productID string, startsAt, endsAt time.Time, stock, perUserLimit int) string {
	t.Helper()
	var out struct{ ScheduleDrop struct{ ID, Status string } }
	app.mustGQL(t, token, `mutation($in: ScheduleDropInput!) { scheduleDrop(input: $in) { id status } }`,
		map[string]any{"in": map[string]any{
			"productId": productID, "startsAt": startsAt.UTC().Format(time.RFC3339Nano), "endsAt": endsAt.UTC().Format(time.RFC3339Nano),
			"stock": stock, "perUserLimit": perUserLimit,
		}}, &out)
	if out.ScheduleDrop.Status != string(domain.DropScheduled) {
		t.Fatalf("scheduleDrop answered %+v", out.ScheduleDrop)
	}
	return out.ScheduleDrop.ID
}

// mutateDrop runs startDrop, endDrop or cancelDrop on the drop as token,
// which must succeed, and returns the drop's status it answered.
func (s *dropSale) mutateDrop(t testing.TB, token, mutation string) string {
	t.Helper()
	data, errs := s.app.gql(t, token, `mutation($id: ID!) { `+mutation+`(id: $id) { status } }`, map[string]any{"id": s.dropID})
	if len(errs) > 0 {
		t.Fatalf("%s: %s", mutation, describeErrors(errs))
	}
	var out map[string]struct{ Status string }
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s answer %s: %v", mutation, data, err)
	}
	return out[mutation].Status
}

// wantDropError runs startDrop, endDrop or cancelDrop on the drop as token,
// which must fail with code.
func (s *dropSale) wantDropError(t testing.TB, token, mutation, code string) {
	t.Helper()
	s.app.wantError(t, token, `mutation($id: ID!) { `+mutation+`(id: $id) { status } }`, map[string]any{"id": s.dropID}, code, "")
}

// saleDrop is a drop as the API shows it.
type saleDrop struct {
	Status string
	Stock  domain.Stock
}

// view reads the drop through the API.
func (s *dropSale) view(t testing.TB) saleDrop {
	t.Helper()
	var out struct{ Drop saleDrop }
	s.app.mustGQL(t, "", `query($id: ID!) { drop(id: $id) { status stock { available reserved sold total } } }`,
		map[string]any{"id": s.dropID}, &out)
	return out.Drop
}

// place sends one placeOrder for the drop. Safe from any goroutine.
func (s *dropSale) place(token, key string, quantity int) (*gqlResponse, error) {
	return s.app.exec(token, salePlaceOrder, map[string]any{"in": map[string]any{
		"dropId": s.dropID, "quantity": quantity, "idempotencyKey": key,
	}})
}

// saleOrder is an order as placeOrder, payOrder and cancelOrder answer it.
type saleOrder struct {
	ID       string
	Status   string
	Quantity int
}

// mustPlace places an order that must be accepted.
func (s *dropSale) mustPlace(t testing.TB, token, key string, quantity int) saleOrder {
	t.Helper()
	a := s.answer(t, token, key, quantity)
	if a.code != "" || a.order.Status != string(domain.OrderPendingPayment) || a.order.Quantity != quantity {
		t.Fatalf("placeOrder answered %+v, want a PENDING_PAYMENT order of %d", a, quantity)
	}
	return a.order
}

// wantPlaceError places an order that must be refused with code.
func (s *dropSale) wantPlaceError(t testing.TB, token, key string, code string) gqlError {
	t.Helper()
	resp, err := s.place(token, key, 1)
	if err != nil {
		t.Fatal(err)
	}
	return requireError(t, resp.Errors, code, "")
}

// saleAnswer is one placeOrder answer: the order, or the error code.
type saleAnswer struct {
	buyer int // index of the buyer in the stampede
	order saleOrder
	code  string
}

func (s *dropSale) answer(t testing.TB, token, key string, quantity int) saleAnswer {
	t.Helper()
	resp, err := s.place(token, key, quantity)
	if err != nil {
		t.Fatal(err)
	}
	a, err := readAnswer(resp)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readAnswer reads a placeOrder answer: a 200 with the order, or with
// exactly one error and no order.
func readAnswer(resp *gqlResponse) (saleAnswer, error) {
	if resp.Status != http.StatusOK {
		return saleAnswer{}, fmt.Errorf("placeOrder answered HTTP %d: %s", resp.Status, resp.Body)
	}
	var data struct{ PlaceOrder *saleOrder }
	if len(resp.Data) > 0 {
		if err := json.Unmarshal(resp.Data, &data); err != nil {
			return saleAnswer{}, fmt.Errorf("decode placeOrder data %s: %w", resp.Data, err)
		}
	}
	switch {
	case len(resp.Errors) == 0 && data.PlaceOrder != nil:
		return saleAnswer{order: *data.PlaceOrder}, nil
	case len(resp.Errors) == 1 && data.PlaceOrder == nil && resp.Errors[0].Extensions.Code != "":
		return saleAnswer{code: resp.Errors[0].Extensions.Code}, nil
	}
	return saleAnswer{}, fmt.Errorf("placeOrder answered neither an order nor one coded error: %s", resp.Body)
}

// provisionBuyers creates n users straight in the database (signUp's argon2
// is too slow for hundreds) and mints their tokens.
func provisionBuyers(t testing.TB, app *testApp, n int) []saleBuyer {
	t.Helper()
	buyers := make([]saleBuyer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				u, token, err := app.newUser(uniqueHandle("buyer"))
				buyers[i], errs[i] = saleBuyer{user: u, token: token}, err
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return buyers
}

// rush sends every buyer's order for one unit at once, copies times each with
// the buyer's one idempotency key for this drop (a key is the buyer's across
// drops), and returns the answers in order (buyer
// i's copies at i*copies ...). A transport failure or an answer that is not a
// placeOrder answer fails the test.
func (s *dropSale) rush(t testing.TB, buyers []saleBuyer, copies int) []saleAnswer {
	t.Helper()
	out := make([]saleAnswer, len(buyers)*copies)
	errs := make([]error, len(out))
	orderstest.Concurrently(len(out), func(i int) {
		b := i / copies
		resp, err := s.place(buyers[b].token, fmt.Sprintf("stampede-%d-%d", s.id, b), 1)
		if err == nil {
			out[i], err = readAnswer(resp)
		}
		out[i].buyer, errs[i] = b, err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("order %d of %d: %v", i, len(out), err)
		}
	}
	return out
}

// tallySale checks that every answer is a PENDING_PAYMENT order of one unit or
// SOLD_OUT, and returns each buyer's distinct order ids and the number of
// SOLD_OUT answers.
func tallySale(t testing.TB, answers []saleAnswer) (byBuyer map[int]map[string]bool, soldOut int) {
	t.Helper()
	byBuyer = map[int]map[string]bool{}
	for _, a := range answers {
		switch {
		case a.code == "" && a.order.Status == string(domain.OrderPendingPayment) && a.order.Quantity == 1 && a.order.ID != "":
			if byBuyer[a.buyer] == nil {
				byBuyer[a.buyer] = map[string]bool{}
			}
			byBuyer[a.buyer][a.order.ID] = true
		case a.code == domain.SoldOut:
			soldOut++
		default:
			t.Fatalf("buyer %d: answer %+v, want a PENDING_PAYMENT order or SOLD_OUT", a.buyer, a)
		}
	}
	return byBuyer, soldOut
}

// checkSoldExactly checks PostgreSQL after a stampede on a drop of stock
// units with a per-user limit of one: the inventory balances with everything
// reserved, the orders are exactly stock, one per buyer at most, and the
// drop is SOLD_OUT through the API.
func (s *dropSale) checkSoldExactly(t testing.TB, stock int) {
	t.Helper()
	st := s.pg.CheckBalance(t, s.id)
	if st.Available != 0 || st.Reserved != stock || st.Sold != 0 || st.Total != stock {
		t.Fatalf("inventory after the stampede: %+v, want all %d reserved", st, stock)
	}
	if n := s.orderCount(t); n != stock {
		t.Fatalf("%d orders of the drop in PostgreSQL, want %d", n, stock)
	}
	var over int
	if err := s.app.DB.GetContext(context.Background(), &over, `SELECT count(*) FROM (SELECT buyer_id FROM orders
		WHERE drop_id = $1 GROUP BY buyer_id HAVING sum(quantity) > 1 OR count(*) > 1) x`, s.id); err != nil || over != 0 {
		t.Fatalf("%d buyers hold more than the limit of one (%v)", over, err)
	}
	if v := s.view(t); v.Status != string(domain.DropSoldOut) || !sameStock(v.Stock, st) {
		t.Fatalf("the API shows the drop %+v, PostgreSQL has %+v", v, st)
	}
}

// sameStock compares the four figures of two stocks.
func sameStock(a, b domain.Stock) bool {
	return a.Available == b.Available && a.Reserved == b.Reserved && a.Sold == b.Sold && a.Total == b.Total
}

// orderCount counts the drop's orders in PostgreSQL, whatever their status.
func (s *dropSale) orderCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.app.DB.GetContext(context.Background(), &n, `SELECT count(*) FROM orders WHERE drop_id = $1`, s.id); err != nil {
		t.Fatal(err)
	}
	return n
}

// gateRedisErrors reads livedrops_gate_redis_errors_total (every label) from
// the app's /metrics.
func gateRedisErrors(t testing.TB, app *testApp) float64 {
	t.Helper()
	resp, err := app.HTTP.Get(app.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	sum := 0.0
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "livedrops_gate_redis_errors_total") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// gateCounter returns the drop's admission counter in the app's Redis.
func (s *dropSale) gateCounter(t testing.TB, gate *orders.Gate) int {
	t.Helper()
	n, ok, err := gate.Counter(context.Background(), s.id)
	if err != nil || !ok {
		t.Fatalf("gate counter of drop %d: %d, exists %v, %v", s.id, n, ok, err)
	}
	return n
}

// checkCounter checks that the drop's gate counter equals PostgreSQL's
// available stock. When gate calls to Redis failed meanwhile (failures > 0:
// a loaded machine times them out and the gate steps aside, safely), only the
// reconciler settles the counter, so it is checked after a reconcile.
func (s *dropSale) checkCounter(t testing.TB, gate *orders.Gate, failures float64) {
	t.Helper()
	if failures > 0 {
		t.Logf("%v gate calls to Redis failed under load; checking the counter after a reconcile", failures)
		if _, err := orders.NewReconciler(s.app.DB, gate, nil).Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n, want := s.gateCounter(t, gate), s.pg.Stock(t, s.id).Available; n != want {
		t.Fatalf("gate counter %d, PostgreSQL has %d available", n, want)
	}
}

// appGate is a gate on the app's Redis and key prefix: the same counters the
// app's own gate reads and writes.
func appGate(t testing.TB, app *testApp) *orders.Gate {
	t.Helper()
	gate := orders.NewGate(app.App.Redis, app.Config.RedisPrefix)
	t.Cleanup(func() { gate.Close() })
	return gate
}

// --- stampedes ---------------------------------------------------------------

func TestAPIOrdersStampede(t *testing.T) {
	app := startApp(t)
	s := newLiveSale(t, app, 50, 1)
	buyers := provisionBuyers(t, app, 500)

	redisErrors := gateRedisErrors(t, app)
	start := time.Now()
	byBuyer, soldOut := tallySale(t, s.rush(t, buyers, 1))
	t.Logf("500 orders through the API in %s", time.Since(start))
	if len(byBuyer) != 50 || soldOut != 450 {
		t.Fatalf("%d buyers got an order and %d heard SOLD_OUT; want 50 and 450", len(byBuyer), soldOut)
	}
	s.checkSoldExactly(t, 50)
	s.checkCounter(t, appGate(t, app), gateRedisErrors(t, app)-redisErrors)
	key := orderstest.DropKey(s.id)
	if n := s.pg.CountEvents(t, key, domain.EventOrderPlaced); n != 50 {
		t.Fatalf("%d OrderPlaced events in the outbox, want 50", n)
	}
	if n := s.pg.CountEvents(t, key, domain.EventSoldOut); n != 1 {
		t.Fatalf("%d SoldOut events in the outbox, want 1", n)
	}
}

func TestAPIOrdersStampedeOfRetries(t *testing.T) {
	app := startApp(t)
	s := newLiveSale(t, app, 50, 1)
	buyers := provisionBuyers(t, app, 500)

	// A server that has been serving holds open connections to Redis; a cold
	// one dials them all in the first second of the stampede, and on a loaded
	// machine those dials time out.
	warm := newLiveSale(t, app, 64, 1)
	tallySale(t, warm.rush(t, buyers[:64], 1))

	redisErrors := gateRedisErrors(t, app)
	answers := s.rush(t, buyers, 2)
	redisErrors = gateRedisErrors(t, app) - redisErrors
	byBuyer, soldOut := tallySale(t, answers)
	if len(byBuyer) != 50 {
		t.Fatalf("%d buyers got an order, want 50", len(byBuyer))
	}
	for b, ids := range byBuyer {
		if len(ids) != 1 {
			t.Fatalf("buyer %d got %d different orders for one idempotency key", b, len(ids))
		}
	}
	// Twins share their fate: the same order, or SOLD_OUT both. That holds as
	// long as the gate counted every request: a Redis call that timed out on
	// a loaded machine leaves the gate unsure, and PostgreSQL decides that
	// twin alone (safely, but maybe differently from its sibling).
	if redisErrors == 0 {
		for i := 0; i < len(answers); i += 2 {
			a, b := answers[i], answers[i+1]
			if a.code != b.code || a.order.ID != b.order.ID {
				t.Fatalf("the two requests of buyer %d were answered differently: %+v and %+v", a.buyer, a, b)
			}
		}
		if soldOut != 900 {
			t.Fatalf("%d SOLD_OUT answers, want 900", soldOut)
		}
	} else {
		t.Logf("%v gate calls to Redis failed under load; twins' fates not compared", redisErrors)
	}
	s.checkSoldExactly(t, 50)
	s.checkCounter(t, appGate(t, app), redisErrors)
}

func TestAPIOrdersStampedeWithoutRedis(t *testing.T) {
	redisSrv := testenv.PrivateRedis(t)
	app := startApp(t, func(c *config.Config) { c.RedisURL = redisSrv.URL() })
	s := newLiveSale(t, app, 50, 1)
	buyers := provisionBuyers(t, app, 500)
	if n := s.gateCounter(t, appGate(t, app)); n != 50 {
		t.Fatalf("gate counter %d before the stampede, want 50", n)
	}

	redisSrv.Kill()
	start := time.Now()
	byBuyer, soldOut := tallySale(t, s.rush(t, buyers, 1))
	took := time.Since(start)
	t.Logf("500 orders without Redis in %s", took)
	if len(byBuyer) != 50 || soldOut != 450 {
		t.Fatalf("%d buyers got an order and %d heard SOLD_OUT; want 50 and 450", len(byBuyer), soldOut)
	}
	s.checkSoldExactly(t, 50)
	if took > 30*time.Second {
		t.Fatalf("500 orders without Redis took %s", took)
	}
	// One order alone does not wait on Redis either.
	late := newLiveSale(t, app, 5, 1)
	t0 := time.Now()
	late.mustPlace(t, buyers[0].token, "late", 1)
	if took := time.Since(t0); took > 2*time.Second {
		t.Fatalf("one order without Redis took %s", took)
	}
}

func TestAPIOrdersGateCounterTooHigh(t *testing.T) {
	app := startApp(t)
	ctx := context.Background()
	s := newLiveSale(t, app, 50, 1)
	buyers := provisionBuyers(t, app, 300)
	gate := appGate(t, app)
	if err := gate.Load(ctx, s.id, 500); err != nil {
		t.Fatal(err)
	}

	byBuyer, soldOut := tallySale(t, s.rush(t, buyers, 1))
	if len(byBuyer) != 50 || soldOut != 250 {
		t.Fatalf("%d buyers got an order and %d heard SOLD_OUT; want 50 and 250", len(byBuyer), soldOut)
	}
	s.checkSoldExactly(t, 50)
	t.Logf("gate counter %d after the stampede", s.gateCounter(t, gate))

	// Wrong again, the reconciler the app runs (on the app's database and
	// Redis) sets it to what PostgreSQL has.
	if err := gate.Load(ctx, s.id, 77); err != nil {
		t.Fatal(err)
	}
	if n, err := orders.NewReconciler(app.DB, gate, nil).Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("reconciled %d drops: %v", n, err)
	}
	if n, want := s.gateCounter(t, gate), s.pg.Stock(t, s.id).Available; n != want {
		t.Fatalf("gate counter %d after reconciling, PostgreSQL has %d available", n, want)
	}
	// The counter now answers alone: a late buyer hears SOLD_OUT.
	late := provisionBuyers(t, app, 1)[0]
	s.wantPlaceError(t, late.token, "late", domain.SoldOut)
}

// --- broker outage -----------------------------------------------------------

// brokerProcess is a Kafka-protocol broker (cmd/kafka-broker) run as a
// process of the test's own, so the test can kill it and start it again.
type brokerProcess struct {
	bin, addr string
	cmd       *exec.Cmd
}

// startBrokerProcess builds cmd/kafka-broker and runs it on a free loopback
// port until kill or the end of the test.
func startBrokerProcess(t testing.TB) *brokerProcess {
	t.Helper()
	b := &brokerProcess{
		bin:  filepath.Join(t.TempDir(), "kafka-broker"),
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
	}
	if out, err := exec.Command("go", "build", "-o", b.bin, "livedrops/cmd/kafka-broker").CombinedOutput(); err != nil {
		t.Fatalf("build kafka-broker: %v\n%s", err, out)
	}
	t.Cleanup(b.kill)
	b.start(t)
	return b
}

// start runs the broker with topics created up front, and returns once it
// accepts connections.
func (b *brokerProcess) start(t testing.TB, topics ...string) {
	t.Helper()
	b.cmd = exec.Command(b.bin, "-addr", b.addr, "-partitions", "6", "-topics", strings.Join(topics, ","))
	b.cmd.Stderr = os.Stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start kafka-broker: %v", err)
	}
	eventually(t, 10*time.Second, func() string {
		c, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
		if err != nil {
			return "kafka-broker not listening on " + b.addr + ": " + err.Error()
		}
		c.Close()
		return ""
	})
}

// kill stops the broker at once, as a crash would; its records are gone.
func (b *brokerProcess) kill() {
	if b.cmd == nil || b.cmd.Process == nil || b.cmd.ProcessState != nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}

// outboxRow is one outbox event with its row id and publication state.
type outboxRow struct {
	ID        int64
	Published bool
	Event     domain.Event
}

// outboxAfter returns the outbox rows after row id, in order.
func outboxAfter(t testing.TB, app *testApp, after int64) []outboxRow {
	t.Helper()
	var rows []struct {
		ID        int64  `db:"id"`
		Payload   []byte `db:"payload"`
		Published bool   `db:"published"`
	}
	if err := app.DB.SelectContext(context.Background(), &rows,
		`SELECT id, payload, published_at IS NOT NULL AS published FROM outbox WHERE id > $1 ORDER BY id`, after); err != nil {
		t.Fatal(err)
	}
	out := make([]outboxRow, len(rows))
	for i, r := range rows {
		out[i] = outboxRow{ID: r.ID, Published: r.Published}
		if err := json.Unmarshal(r.Payload, &out[i].Event); err != nil {
			t.Fatalf("outbox row %d: %v", r.ID, err)
		}
	}
	return out
}

// unpublishedEvents counts the outbox rows not yet published.
func unpublishedEvents(t testing.TB, app *testApp) int {
	t.Helper()
	var n int
	if err := app.DB.GetContext(context.Background(), &n, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventLog records what a consumer hands it.
type eventLog struct {
	mu  sync.Mutex
	evs []domain.Event
}

func (l *eventLog) handle(_ context.Context, ev domain.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	return nil
}

func (l *eventLog) snapshot() []domain.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func TestAPIOrdersBrokerOutage(t *testing.T) {
	t.Parallel()
	broker := startBrokerProcess(t)
	app := startApp(t, func(c *config.Config) { c.KafkaBrokers = broker.addr })
	topic := app.Config.KafkaTopic
	sales := []*dropSale{newLiveSale(t, app, 8, 1), newLiveSale(t, app, 8, 1)}
	buyers := provisionBuyers(t, app, 20)
	// What happened so far reached the broker (and dies with it).
	eventually(t, 20*time.Second, func() string {
		if n := unpublishedEvents(t, app); n > 0 {
			return fmt.Sprintf("%d outbox events still unpublished with the broker up", n)
		}
		return ""
	})
	var lastBefore int64
	if err := app.DB.GetContext(context.Background(), &lastBefore, `SELECT COALESCE(max(id), 0) FROM outbox`); err != nil {
		t.Fatal(err)
	}

	broker.kill()
	// Orders still commit, and answer at once: Kafka is not on their path.
	start := time.Now()
	answers := make([]saleAnswer, len(buyers))
	errs := make([]error, len(buyers))
	orderstest.Concurrently(len(buyers), func(i int) {
		resp, err := sales[i%2].place(buyers[i].token, "outage", 1)
		if err == nil {
			answers[i], err = readAnswer(resp)
		}
		errs[i] = err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("20 orders with the broker down took %s", took)
	}
	var placed []saleOrder
	for i, a := range answers {
		if a.code == "" {
			placed = append(placed, a.order)
		} else if a.code != domain.SoldOut {
			t.Fatalf("buyer %d: %+v", i, a)
		}
	}
	if len(placed) != 16 {
		t.Fatalf("%d orders placed with the broker down, want 16", len(placed))
	}
	// A cancel gives stock back: the drop's stock moves both ways in the backlog.
	for i, a := range answers {
		if a.code == "" {
			cancelled, errs := orderMutation(t, app, buyers[i].token, saleCancelOrder, map[string]any{"id": a.order.ID})
			if len(errs) > 0 || cancelled.Status != string(domain.OrderCancelled) {
				t.Fatalf("cancelOrder with the broker down: %+v %s", cancelled, describeErrors(errs))
			}
			break
		}
	}
	for _, s := range sales {
		s.pg.CheckBalance(t, s.id)
	}

	// The events wait in the outbox, unpublished, while the broker is away.
	time.Sleep(time.Second)
	backlog := outboxAfter(t, app, lastBefore)
	counts := map[string]int{}
	for _, r := range backlog {
		if r.Published {
			t.Fatalf("outbox event %d (%s) marked published with the broker down", r.ID, r.Event.Type)
		}
		counts[r.Event.Type]++
	}
	if n := unpublishedEvents(t, app); n != len(backlog) {
		t.Fatalf("%d outbox events unpublished, want the %d written since the broker died", n, len(backlog))
	}
	// Orders that arrive together share a transaction, and each transaction
	// moves its drop's stock once: 2 to 16 moves for the orders, 1 for the cancel.
	if counts[domain.EventOrderPlaced] != 16 || counts[domain.EventOrderCancelled] != 1 ||
		counts[domain.EventStockChanged] < 3 || counts[domain.EventStockChanged] > 17 || counts[domain.EventSoldOut] != 2 {
		t.Fatalf("outbox backlog %v, want 16 OrderPlaced, 3 to 17 StockChanged, 1 OrderCancelled and 2 SoldOut", counts)
	}

	// The broker comes back empty, with the topic: the relay publishes the backlog.
	broker.start(t, topic)
	eventually(t, 60*time.Second, func() string {
		if n := unpublishedEvents(t, app); n > 0 {
			return fmt.Sprintf("%d outbox events still unpublished after the broker came back", n)
		}
		return ""
	})
	got := &eventLog{}
	consumer, err := events.NewGroupConsumer(broker.addr, "orders-test-"+topic, topic, got.handle, app.App.Log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- consumer.Run(context.Background()) }()
	defer func() {
		consumer.Close()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	want := map[string]bool{}
	for _, r := range backlog {
		want[r.Event.ID] = true
	}
	eventually(t, 60*time.Second, func() string {
		missing := len(want)
		seen := map[string]bool{}
		for _, ev := range got.snapshot() {
			if want[ev.ID] && !seen[ev.ID] {
				seen[ev.ID] = true
				missing--
			}
		}
		if missing > 0 {
			return fmt.Sprintf("%d of %d backlog events not consumed", missing, len(want))
		}
		return ""
	})
	checkPerDropOrder(t, backlog, got.snapshot())
}

// checkPerDropOrder checks that the consumed events, first deliveries only
// (a redelivery is deduplicated by id, as the app's consumers do), hold every
// backlog event in the outbox's order within each drop, with strictly
// increasing stock versions.
func checkPerDropOrder(t testing.TB, backlog []outboxRow, consumed []domain.Event) {
	t.Helper()
	wantOrder := map[string][]string{} // key -> event ids in outbox order
	for _, r := range backlog {
		wantOrder[r.Event.Key] = append(wantOrder[r.Event.Key], r.Event.ID)
	}
	gotOrder := map[string][]string{}
	versions := map[string]int64{}
	seen := map[string]bool{}
	for _, ev := range consumed {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		gotOrder[ev.Key] = append(gotOrder[ev.Key], ev.ID)
		if ev.Type != domain.EventStockChanged {
			continue
		}
		var p domain.StockPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("StockChanged payload %s: %v", ev.Payload, err)
		}
		if last, ok := versions[ev.Key]; ok && p.Version <= last {
			t.Fatalf("%s: StockChanged version %d consumed after version %d", ev.Key, p.Version, last)
		}
		versions[ev.Key] = p.Version
	}
	for key, ids := range wantOrder {
		var got []string
		for _, id := range gotOrder[key] {
			if slices.Contains(ids, id) {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("%s: consumed events %v, want the outbox's order %v", key, got, ids)
		}
	}
}

// --- stock coming back -------------------------------------------------------

// orderMutation runs payOrder or cancelOrder as token and returns the order
// and the errors.
func orderMutation(t testing.TB, app *testApp, token, query string, vars map[string]any) (saleOrder, []gqlError) {
	t.Helper()
	data, errs := app.gql(t, token, query, vars)
	var out map[string]*saleOrder
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
	}
	for _, o := range out {
		if o != nil {
			return *o, errs
		}
	}
	return saleOrder{}, errs
}

const (
	salePayOrder    = `mutation($id: ID!, $pm: String!) { payOrder(input: {orderId: $id, paymentMethod: $pm}) { id status quantity } }`
	saleCancelOrder = `mutation($id: ID!) { cancelOrder(id: $id) { id status quantity } }`
	saleOrderStatus = `query($id: ID!) { node(id: $id) { ... on Order { id status quantity } } }`
)

// orderStatus reads the order's status through node(id) as token.
func orderStatus(t testing.TB, app *testApp, token, orderID string) string {
	t.Helper()
	var out struct{ Node *saleOrder }
	app.mustGQL(t, token, saleOrderStatus, map[string]any{"id": orderID}, &out)
	if out.Node == nil {
		t.Fatalf("node(%s) is null for its buyer", orderID)
	}
	return out.Node.Status
}

// wantStock checks the drop's inventory in PostgreSQL (which must balance
// with its orders) and through the API.
func (s *dropSale) wantStock(t testing.TB, available, reserved, sold int) {
	t.Helper()
	st := s.pg.CheckBalance(t, s.id)
	if st.Available != available || st.Reserved != reserved || st.Sold != sold {
		t.Fatalf("stock %+v, want available %d reserved %d sold %d", st, available, reserved, sold)
	}
	if v := s.view(t); !sameStock(v.Stock, st) {
		t.Fatalf("the API shows stock %+v, PostgreSQL has %+v", v.Stock, st)
	}
}

func TestAPIOrdersStockComesBackOnce(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	s := newLiveSale(t, app, 5, 2)
	b := provisionBuyers(t, app, 3)
	key := orderstest.DropKey(s.id)

	t.Run("cancel twice at once", func(t *testing.T) {
		o := s.mustPlace(t, b[0].token, "cancel", 1)
		s.wantStock(t, 4, 1, 0)
		var answers [2]saleOrder
		var errs [2][]gqlError
		orderstest.Concurrently(2, func(i int) {
			resp, err := app.exec(b[0].token, saleCancelOrder, map[string]any{"id": o.ID})
			if err != nil {
				errs[i] = []gqlError{{Message: err.Error()}}
				return
			}
			var out struct{ CancelOrder *saleOrder }
			if err := json.Unmarshal(resp.Data, &out); err == nil && out.CancelOrder != nil {
				answers[i] = *out.CancelOrder
			}
			errs[i] = resp.Errors
		})
		for i := range answers {
			if len(errs[i]) > 0 || answers[i].ID != o.ID || answers[i].Status != string(domain.OrderCancelled) {
				t.Fatalf("cancel %d answered %+v %s, want the CANCELLED order", i, answers[i], describeErrors(errs[i]))
			}
		}
		s.wantStock(t, 5, 0, 0)
		if n := s.pg.CountEvents(t, key, domain.EventOrderCancelled); n != 1 {
			t.Fatalf("%d OrderCancelled events, want 1", n)
		}
		// A cancelled order can no longer be paid.
		_, errs2 := orderMutation(t, app, b[0].token, salePayOrder, map[string]any{"id": o.ID, "pm": payments.MethodSucceeds})
		requireError(t, errs2, domain.Conflict, "")
		s.wantStock(t, 5, 0, 0)
	})

	t.Run("payment declined", func(t *testing.T) {
		o := s.mustPlace(t, b[1].token, "decline", 2)
		s.wantStock(t, 3, 2, 0)
		_, errs := orderMutation(t, app, b[1].token, salePayOrder, map[string]any{"id": o.ID, "pm": payments.MethodDeclines})
		requireError(t, errs, domain.PaymentDeclined, "")
		if got := orderStatus(t, app, b[1].token, o.ID); got != string(domain.OrderCancelled) {
			t.Fatalf("declined order is %s, want CANCELLED", got)
		}
		s.wantStock(t, 5, 0, 0)
		// Declined again: the order is no longer payable, and nothing returns twice.
		_, errs = orderMutation(t, app, b[1].token, salePayOrder, map[string]any{"id": o.ID, "pm": payments.MethodDeclines})
		requireError(t, errs, domain.Conflict, "")
		s.wantStock(t, 5, 0, 0)
	})

	t.Run("payment accepted", func(t *testing.T) {
		o := s.mustPlace(t, b[2].token, "pay", 2)
		for range 2 { // paying a confirmed order again changes nothing
			paid, errs := orderMutation(t, app, b[2].token, salePayOrder, map[string]any{"id": o.ID, "pm": payments.MethodSucceeds})
			if len(errs) > 0 || paid.ID != o.ID || paid.Status != string(domain.OrderConfirmed) {
				t.Fatalf("payOrder answered %+v %s, want CONFIRMED", paid, describeErrors(errs))
			}
			s.wantStock(t, 3, 0, 2)
		}
		_, errs := orderMutation(t, app, b[2].token, saleCancelOrder, map[string]any{"id": o.ID})
		requireError(t, errs, domain.Conflict, "")
		s.wantStock(t, 3, 0, 2)
		if n := s.pg.CountEvents(t, key, domain.EventOrderConfirmed); n != 1 {
			t.Fatalf("%d OrderConfirmed events, want 1", n)
		}
	})
}

func TestAPIOrdersReservationsExpire(t *testing.T) {
	t.Parallel()
	app := startApp(t, func(c *config.Config) { c.ReservationTTL = time.Second })
	s := newLiveSale(t, app, 3, 1)
	b := provisionBuyers(t, app, 2)
	// Placed PENDING_PAYMENT; the stock is not checked here, as the
	// reservation may already be gone by then.
	o := s.mustPlace(t, b[0].token, "expires", 1)

	// The app's sweeper (every second) expires it.
	eventually(t, 15*time.Second, func() string {
		if got := orderStatus(t, app, b[0].token, o.ID); got != string(domain.OrderExpired) {
			return "order is " + got + ", want EXPIRED"
		}
		return ""
	})
	s.wantStock(t, 3, 0, 0)
	// Later sweeps find nothing more to return.
	time.Sleep(1500 * time.Millisecond)
	s.wantStock(t, 3, 0, 0)
	if n := s.pg.CountEvents(t, orderstest.DropKey(s.id), domain.EventOrderExpired); n != 1 {
		t.Fatalf("%d OrderExpired events, want 1", n)
	}
	// An expired reservation is neither paid nor cancelled, and its stock sells again.
	_, errs := orderMutation(t, app, b[0].token, salePayOrder, map[string]any{"id": o.ID, "pm": payments.MethodSucceeds})
	requireError(t, errs, domain.Conflict, "")
	_, errs = orderMutation(t, app, b[0].token, saleCancelOrder, map[string]any{"id": o.ID})
	requireError(t, errs, domain.Conflict, "")
	s.mustPlace(t, b[1].token, "after", 1)
	s.wantStock(t, 2, 1, 0)
}

// --- payment webhook ---------------------------------------------------------

// sendWebhook posts a payment event with the given signature header value
// and returns the status code and the answer's status field.
func sendWebhook(t testing.TB, app *testApp, body []byte, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, app.URL+"/internal/payments/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(payments.SignatureHeader, signature)
	}
	resp, err := app.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Status string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Status
}

func TestAPIOrdersPaymentWebhook(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	s := newLiveSale(t, app, 5, 1)
	b := provisionBuyers(t, app, 2)
	secret := []byte(app.Config.PaymentWebhookSecret)
	key := orderstest.DropKey(s.id)

	paid := s.mustPlace(t, b[0].token, "hook", 1)
	body, err := json.Marshal(payments.Event{
		ID: "evt_" + paid.ID, Type: payments.EventSucceeded, ProviderRef: "ch_hook", OrderID: mustKey(t, paid.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Refused: no signature, a forged one, a stale one. Nothing changes.
	forged := payments.Sign([]byte("not-the-webhook-secret-at-all"), time.Now(), body)
	stale := payments.Sign(secret, time.Now().Add(-payments.MaxSkew-time.Minute), body)
	tampered := payments.Sign(secret, time.Now(), append(slices.Clone(body[:len(body)-1]), ' ', '}'))
	for name, sig := range map[string]string{"missing": "", "forged": forged, "stale": stale, "for another body": tampered} {
		if code, _ := sendWebhook(t, app, body, sig); code != http.StatusUnauthorized {
			t.Fatalf("%s signature: %d, want 401", name, code)
		}
	}
	if got := orderStatus(t, app, b[0].token, paid.ID); got != string(domain.OrderPendingPayment) {
		t.Fatalf("a refused webhook changed the order to %s", got)
	}
	s.wantStock(t, 4, 1, 0)

	// Signed: applied once; replays answer 200 and change nothing.
	if code, msg := sendWebhook(t, app, body, payments.Sign(secret, time.Now(), body)); code != http.StatusOK || msg != "applied" {
		t.Fatalf("signed webhook: %d %q, want 200 applied", code, msg)
	}
	if got := orderStatus(t, app, b[0].token, paid.ID); got != string(domain.OrderConfirmed) {
		t.Fatalf("order %s after payment.succeeded, want CONFIRMED", got)
	}
	s.wantStock(t, 4, 0, 1)
	for range 2 {
		if code, msg := sendWebhook(t, app, body, payments.Sign(secret, time.Now(), body)); code != http.StatusOK || msg != "duplicate" {
			t.Fatalf("replayed webhook: %d %q, want 200 duplicate", code, msg)
		}
	}
	s.wantStock(t, 4, 0, 1)
	if n := s.pg.CountEvents(t, key, domain.EventOrderConfirmed); n != 1 {
		t.Fatalf("%d OrderConfirmed events, want 1", n)
	}

	// A failed payment cancels the order and returns its stock, once.
	failed := s.mustPlace(t, b[1].token, "hook", 1)
	body, err = json.Marshal(payments.Event{
		ID: "evt_" + failed.ID, Type: payments.EventFailed, ProviderRef: "ch_fail", OrderID: mustKey(t, failed.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"applied", "duplicate", "duplicate"} {
		if code, msg := sendWebhook(t, app, body, payments.Sign(secret, time.Now(), body)); code != http.StatusOK || msg != want {
			t.Fatalf("payment.failed delivery %d: %d %q, want 200 %s", i, code, msg, want)
		}
	}
	if got := orderStatus(t, app, b[1].token, failed.ID); got != string(domain.OrderCancelled) {
		t.Fatalf("order %s after payment.failed, want CANCELLED", got)
	}
	s.wantStock(t, 4, 0, 1)
	if n := s.pg.CountEvents(t, key, domain.EventOrderCancelled); n != 1 {
		t.Fatalf("%d OrderCancelled events, want 1", n)
	}
}

// --- a drop's life -----------------------------------------------------------

func TestAPIOrdersDropLifecycle(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	s := newDropSale(t, app, 5, 1)
	b := provisionBuyers(t, app, 4)

	// Before its start, a drop does not sell.
	s.wantPlaceError(t, b[0].token, "early", domain.DropNotLive)

	// Only the owner changes a drop or sells its product.
	otherCreator, _ := app.makeCreator(t)
	for name, token := range map[string]string{"another creator": otherCreator, "a buyer": b[0].token} {
		for _, m := range []string{"startDrop", "endDrop", "cancelDrop"} {
			_, errs := app.gql(t, token, `mutation($id: ID!) { `+m+`(id: $id) { status } }`, map[string]any{"id": s.dropID})
			if len(errs) != 1 || errs[0].Extensions.Code != domain.Forbidden {
				t.Fatalf("%s by %s: %s, want FORBIDDEN", m, name, describeErrors(errs))
			}
		}
		_, errs := app.gql(t, token, `mutation($id: ID!) { restock(input: {dropId: $id, quantity: 5}) { status } }`, map[string]any{"id": s.dropID})
		if len(errs) != 1 || errs[0].Extensions.Code != domain.Forbidden {
			t.Fatalf("restock by %s: %s, want FORBIDDEN", name, describeErrors(errs))
		}
		_, errs = app.gql(t, token, `mutation($in: ScheduleDropInput!) { scheduleDrop(input: $in) { id } }`, map[string]any{"in": map[string]any{
			"productId": s.productID, "startsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"endsAt": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339), "stock": 5, "perUserLimit": 1,
		}})
		if len(errs) != 1 || errs[0].Extensions.Code != domain.Forbidden {
			t.Fatalf("scheduleDrop of another's product by %s: %s, want FORBIDDEN", name, describeErrors(errs))
		}
	}
	if v := s.view(t); v.Status != string(domain.DropScheduled) || v.Stock.Total != 5 {
		t.Fatalf("refused mutations changed the drop: %+v", v)
	}

	// Moves the status machine does not allow are CONFLICT.
	s.wantDropError(t, s.creatorToken, "endDrop", domain.Conflict)
	if got := s.mutateDrop(t, s.creatorToken, "startDrop"); got != string(domain.DropLive) {
		t.Fatalf("startDrop: %s", got)
	}
	s.wantDropError(t, s.creatorToken, "startDrop", domain.Conflict)
	s.mustPlace(t, b[0].token, "live", 1)
	if got := s.mutateDrop(t, s.creatorToken, "endDrop"); got != string(domain.DropEnded) {
		t.Fatalf("endDrop: %s", got)
	}
	s.wantDropError(t, s.creatorToken, "endDrop", domain.Conflict)
	s.wantDropError(t, s.creatorToken, "startDrop", domain.Conflict)
	s.wantDropError(t, s.creatorToken, "cancelDrop", domain.Conflict)
	// After its end, a drop does not sell.
	s.wantPlaceError(t, b[1].token, "late", domain.DropNotLive)

	// A cancelled drop does not sell either.
	c := newLiveSale(t, app, 5, 1)
	if got := c.mutateDrop(t, c.creatorToken, "cancelDrop"); got != string(domain.DropCancelled) {
		t.Fatalf("cancelDrop: %s", got)
	}
	c.wantDropError(t, c.creatorToken, "cancelDrop", domain.Conflict)
	c.wantPlaceError(t, b[1].token, "cancelled", domain.DropNotLive)

	// The app's scheduler starts and ends a drop when its times come.
	now := time.Now()
	auto := &dropSale{app: app, pg: s.pg, creatorToken: s.creatorToken, productID: s.productID}
	auto.dropID = saleSchedule(t, app, s.creatorToken, s.productID, now.Add(1500*time.Millisecond), now.Add(6*time.Second), 5, 1)
	auto.id = mustKey(t, auto.dropID)
	auto.wantPlaceError(t, b[2].token, "early", domain.DropNotLive)
	waitStatus := func(want domain.DropStatus) {
		t.Helper()
		eventually(t, 15*time.Second, func() string {
			if got := auto.view(t).Status; got != string(want) {
				return "the scheduled drop is " + got + ", want " + string(want)
			}
			return ""
		})
	}
	waitStatus(domain.DropLive)
	auto.mustPlace(t, b[2].token, "on time", 1)
	waitStatus(domain.DropEnded)
	auto.wantPlaceError(t, b[3].token, "late", domain.DropNotLive)
	auto.wantStock(t, 4, 1, 0)
}

// --- who sees which order ----------------------------------------------------

func TestAPIOrdersVisibility(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	s := newLiveSale(t, app, 5, 1)
	b := provisionBuyers(t, app, 2)
	buyer, stranger := b[0], b[1]
	o := s.mustPlace(t, buyer.token, "mine", 1)

	seen := func(token string) *saleOrder {
		t.Helper()
		var out struct{ Node *saleOrder }
		app.mustGQL(t, token, saleOrderStatus, map[string]any{"id": o.ID}, &out)
		return out.Node
	}
	if n := seen(buyer.token); n == nil || n.ID != o.ID {
		t.Fatalf("the buyer sees node(order) = %+v", n)
	}
	if n := seen(s.creatorToken); n == nil || n.ID != o.ID {
		t.Fatalf("the drop's creator sees node(order) = %+v", n)
	}
	if n := seen(stranger.token); n != nil {
		t.Fatalf("another user sees node(order) = %+v, want null", n)
	}
	if n := seen(""); n != nil {
		t.Fatalf("an anonymous request sees node(order) = %+v, want null", n)
	}

	// viewer.orders is a connection of the viewer's own orders.
	const mine = `{ viewer { orders(first: 10) { edges { cursor node { id status } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`
	type ordersPage struct {
		Viewer struct {
			Orders struct {
				Edges []struct {
					Cursor string
					Node   saleOrder
				}
				PageInfo pageInfo
			}
		}
	}
	var page ordersPage
	app.mustGQL(t, buyer.token, mine, nil, &page)
	edges := page.Viewer.Orders.Edges
	if len(edges) != 1 || edges[0].Node.ID != o.ID || edges[0].Cursor == "" ||
		page.Viewer.Orders.PageInfo.HasNextPage || page.Viewer.Orders.PageInfo.EndCursor == nil || *page.Viewer.Orders.PageInfo.EndCursor != edges[0].Cursor {
		t.Fatalf("the buyer's viewer.orders = %+v", page.Viewer.Orders)
	}
	page = ordersPage{}
	app.mustGQL(t, stranger.token, mine, nil, &page)
	if len(page.Viewer.Orders.Edges) != 0 {
		t.Fatalf("another user's viewer.orders = %+v, want none", page.Viewer.Orders)
	}

	// Someone else's orders, reached through a User, are FORBIDDEN.
	const theirs = `query($id: ID!) { node(id: $id) { ... on User { handle orders(first: 5) { edges { node { id } } } } } }`
	buyerID := domain.GlobalID(domain.TypeUser, buyer.user.ID)
	app.mustGQL(t, buyer.token, theirs, map[string]any{"id": buyerID}, nil)
	for name, token := range map[string]string{"another user": stranger.token, "the seller": s.creatorToken} {
		_, errs := app.gql(t, token, theirs, map[string]any{"id": buyerID})
		if len(errs) != 1 || errs[0].Extensions.Code != domain.Forbidden {
			t.Fatalf("user(buyer).orders read by %s: %s, want FORBIDDEN", name, describeErrors(errs))
		}
	}
	// Even when the seller reaches the buyer through the order it may see.
	_, errs := app.gql(t, s.creatorToken, `query($id: ID!) { node(id: $id) { ... on Order { buyer { orders(first: 5) { edges { node { id } } } } } } }`,
		map[string]any{"id": o.ID})
	if len(errs) != 1 || errs[0].Extensions.Code != domain.Forbidden {
		t.Fatalf("order.buyer.orders read by the seller: %s, want FORBIDDEN", describeErrors(errs))
	}
}

// --- rate limit ----------------------------------------------------------------

func TestAPIOrdersRateLimited(t *testing.T) {
	t.Parallel()
	app := startApp(t, func(c *config.Config) { c.OrderRatePerMinute = 3 })
	s := newLiveSale(t, app, 20, 10)
	b := provisionBuyers(t, app, 2)
	for i := range 3 {
		s.mustPlace(t, b[0].token, "burst-"+strconv.Itoa(i), 1)
	}
	e := s.wantPlaceError(t, b[0].token, "burst-3", domain.RateLimited)
	retry, ok := e.Extensions.All["retryAfter"].(float64)
	if !ok || retry <= 0 || retry > 60 {
		t.Fatalf("RATE_LIMITED extensions %v, want retryAfter a number of seconds in (0, 60]", e.Extensions.All)
	}
	// The limit is the buyer's own, and a refused order took nothing.
	s.mustPlace(t, b[1].token, "other", 1)
	s.wantStock(t, 16, 4, 0)
}

// --- internal API --------------------------------------------------------------

// internalPost posts a JSON body to an internal endpoint with a bearer token
// ("" for none) and returns the status and decoded answer.
func internalPost(t testing.TB, app *testApp, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, app.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := app.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAPIOrdersInternalAPI(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	s := newLiveSale(t, app, 5, 1)
	token := app.Config.InternalToken

	// Inventory adjustment needs the service token.
	adjust := map[string]any{"dropId": s.dropID, "delta": 3}
	for name, tok := range map[string]string{"no token": "", "a wrong token": token + "x", "a user's token": s.creatorToken} {
		if code, _ := internalPost(t, app, "/internal/inventory/adjust", tok, adjust); code != http.StatusUnauthorized {
			t.Fatalf("adjust with %s: %d, want 401", name, code)
		}
	}
	s.wantStock(t, 5, 0, 0)
	code, out := internalPost(t, app, "/internal/inventory/adjust", token, adjust)
	if code != http.StatusOK {
		t.Fatalf("adjust: %d %v", code, out)
	}
	s.wantStock(t, 8, 0, 0)
	if v := s.view(t); v.Stock.Total != 8 {
		t.Fatalf("the API shows %+v after adding 3", v)
	}
	if code, _ := internalPost(t, app, "/internal/inventory/adjust", token, map[string]any{"dropId": s.id, "delta": -2}); code != http.StatusOK {
		t.Fatalf("adjust by -2 with a numeric id: %d", code)
	}
	s.wantStock(t, 6, 0, 0)
	if n := s.gateCounter(t, appGate(t, app)); n != 6 {
		t.Fatalf("gate counter %d after adjustments, want 6", n)
	}

	// Cache invalidation: a product changed behind the app's back is served
	// from the cache until it is invalidated.
	const read = `query($id: ID!) { product(id: $id) { title } }`
	var prod struct{ Product struct{ Title string } }
	app.mustGQL(t, "", read, map[string]any{"id": s.productID}, &prod)
	if _, err := app.DB.ExecContext(context.Background(), `UPDATE products SET title = 'Boot' WHERE id = $1`, mustKey(t, s.productID)); err != nil {
		t.Fatal(err)
	}
	app.mustGQL(t, "", read, map[string]any{"id": s.productID}, &prod)
	if prod.Product.Title != "Sneaker" {
		t.Fatalf("the product read %q before invalidation: it is not served from the cache", prod.Product.Title)
	}
	evict := map[string]any{"kind": "product", "ids": []int64{mustKey(t, s.productID)}}
	if code, _ := internalPost(t, app, "/internal/cache/invalidate", "", evict); code != http.StatusUnauthorized {
		t.Fatalf("invalidate without a token: %d, want 401", code)
	}
	if code, out := internalPost(t, app, "/internal/cache/invalidate", token, evict); code != http.StatusOK {
		t.Fatalf("invalidate: %d %v", code, out)
	}
	app.mustGQL(t, "", read, map[string]any{"id": s.productID}, &prod)
	if prod.Product.Title != "Boot" {
		t.Fatalf("the product reads %q after invalidation, want Boot", prod.Product.Title)
	}

	// None of it is in the public schema.
	var schema struct {
		Schema struct {
			Types []struct {
				Name   string
				Fields []struct{ Name string }
			}
		} `json:"__schema"`
	}
	app.mustGQL(t, "", `{ __schema { types { name fields { name } } } }`, nil, &schema)
	if len(schema.Schema.Types) == 0 {
		t.Fatal("introspection returned no types")
	}
	for _, typ := range schema.Schema.Types {
		names := []string{typ.Name}
		for _, f := range typ.Fields {
			names = append(names, typ.Name+"."+f.Name)
		}
		for _, n := range names {
			l := strings.ToLower(n)
			for _, word := range []string{"internal", "adjust", "invalidat", "webhook", "servicetoken"} {
				if strings.Contains(l, word) {
					t.Fatalf("the public schema has %s", n)
				}
			}
		}
	}
	resp, err := app.exec(token, `mutation { adjustInventory(dropId: "x", delta: 1) }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status == http.StatusOK && len(resp.Errors) == 0 {
		t.Fatalf("a made-up internal mutation was accepted: %s", resp.Body)
	}
	s.wantStock(t, 6, 0, 0)
}
