package orders_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/domain"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
)

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := domain.ErrorCode(err); err == nil || got != code {
		t.Fatalf("want %s, got %v (%s)", code, err, got)
	}
}

// selling is one test's orders service with its gate on the test's Redis prefix.
type selling struct {
	*orderstest.World
	svc  *orders.Service
	gate *orders.Gate
}

func newSelling(t testing.TB) *selling {
	w := orderstest.New(t)
	gate := orders.NewGate(w.Redis, w.Prefix)
	t.Cleanup(func() { gate.Close() })
	return &selling{World: w, svc: orders.New(w.DB, gate, payments.NewSimulated(), w.Redis, w.Config), gate: gate}
}

// liveDrop starts a drop and loads its gate counter, as the drops service does.
func (s *selling) liveDrop(t testing.TB, stock, limit int) *domain.Drop {
	t.Helper()
	d := s.LiveDrop(t, stock, limit)
	if err := s.gate.Load(context.Background(), d.ID, stock); err != nil {
		t.Fatal(err)
	}
	return d
}

func (s *selling) counter(t testing.TB, dropID int64) int {
	t.Helper()
	n, ok, err := s.gate.Counter(context.Background(), dropID)
	if err != nil || !ok {
		t.Fatalf("gate counter of drop %d: %d %v %v", dropID, n, ok, err)
	}
	return n
}

func (s *selling) place(t testing.TB, buyer, drop int64, q int, key string) *domain.Order {
	t.Helper()
	o, err := s.svc.PlaceOrder(context.Background(), buyer, drop, q, key)
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	return o
}

// result is one placeOrder answer in a stampede.
type result struct {
	buyer int64
	order *domain.Order
	err   error
}

// stampede sends every buyer's order at once (copies times each, with the same key).
func stampede(t *testing.T, svc *orders.Service, dropID int64, buyers []int64, copies int) []result {
	t.Helper()
	out := make([]result, len(buyers)*copies)
	orderstest.Concurrently(len(out), func(i int) {
		b := buyers[i/copies]
		o, err := svc.PlaceOrder(context.Background(), b, dropID, 1, fmt.Sprintf("key-%d", b))
		out[i] = result{buyer: b, order: o, err: err}
	})
	return out
}

// tally checks a stampede's answers: only accepted or SOLD_OUT, and returns
// the distinct orders by buyer and the count of SOLD_OUT answers.
func tally(t *testing.T, rs []result) (map[int64]map[int64]bool, int) {
	t.Helper()
	byBuyer := map[int64]map[int64]bool{}
	soldOut := 0
	for _, r := range rs {
		switch {
		case r.err == nil:
			if byBuyer[r.buyer] == nil {
				byBuyer[r.buyer] = map[int64]bool{}
			}
			byBuyer[r.buyer][r.order.ID] = true
		case domain.ErrorCode(r.err) == domain.SoldOut:
			soldOut++
		default:
			t.Fatalf("buyer %d: unexpected answer %v", r.buyer, r.err)
		}
	}
	return byBuyer, soldOut
}

func TestStampedeSellsExactlyTheStock(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 50, 1)
	buyers := s.Buyers(t, 500)

	byBuyer, soldOut := tally(t, stampede(t, s.svc, d.ID, buyers, 1))
	if len(byBuyer) != 50 || soldOut != 450 {
		t.Fatalf("%d buyers got orders and %d heard SOLD_OUT; want 50 and 450", len(byBuyer), soldOut)
	}
	st := s.CheckBalance(t, d.ID)
	if st.Available != 0 || st.Reserved != 50 {
		t.Fatalf("stock %+v", st)
	}
	var over int
	if err := s.DB.GetContext(context.Background(), &over, `SELECT count(*) FROM (SELECT buyer_id FROM orders
		WHERE drop_id = $1 GROUP BY buyer_id HAVING sum(quantity) > 1) x`, d.ID); err != nil || over != 0 {
		t.Fatalf("%d buyers over the limit (%v)", over, err)
	}
	if got := s.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("drop is %s, want SOLD_OUT", got)
	}
	key := orderstest.DropKey(d.ID)
	if n := s.CountEvents(t, key, domain.EventSoldOut); n != 1 {
		t.Fatalf("%d SoldOut events", n)
	}
	if n := s.CountEvents(t, key, domain.EventOrderPlaced); n != 50 {
		t.Fatalf("%d OrderPlaced events", n)
	}
	if n := s.CountEvents(t, key, domain.EventStockLow); n != 1 {
		t.Fatalf("%d StockLow events", n)
	}
	s.checkCounter(t, d.ID)
}

// checkCounter fails unless the drop's gate counter equals PostgreSQL's
// available stock. When Redis calls failed meanwhile (a loaded machine times
// them out and the gate is bypassed, safely), the counter is only settled by
// the reconciler, so it is checked after a reconcile.
func (s *selling) checkCounter(t *testing.T, dropID int64) {
	t.Helper()
	if f := orders.RedisFailures(s.gate); f > 0 {
		t.Logf("%d gate calls to Redis failed under load; checking the counter after a reconcile", f)
		if _, err := orders.NewReconciler(s.DB, s.gate, nil).Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n, want := s.counter(t, dropID), s.Stock(t, dropID).Available; n != want {
		t.Fatalf("gate counter %d, PostgreSQL has %d available", n, want)
	}
}

func TestStampedeOfTwinsMakesOneOrderPerKey(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 50, 1)
	buyers := s.Buyers(t, 500)

	rs := stampede(t, s.svc, d.ID, buyers, 2)
	byBuyer, soldOut := tally(t, rs)
	if len(byBuyer) != 50 {
		t.Fatalf("%d buyers got orders, want 50", len(byBuyer))
	}
	for b, ids := range byBuyer {
		if len(ids) != 1 {
			t.Fatalf("buyer %d got %d different orders for one key", b, len(ids))
		}
	}
	// Twins share their fate: both the same order, or both SOLD_OUT (as long
	// as the gate counted every request; see checkCounter).
	for i := 0; i < len(rs) && orders.RedisFailures(s.gate) == 0; i += 2 {
		a, b := rs[i], rs[i+1]
		if (a.err == nil) != (b.err == nil) || (a.err == nil && a.order.ID != b.order.ID) {
			t.Fatalf("twins of buyer %d differ: %v/%v and %v/%v", a.buyer, a.order, a.err, b.order, b.err)
		}
	}
	if soldOut != 900 {
		t.Fatalf("%d SOLD_OUT answers, want 900", soldOut)
	}
	var orders int
	if err := s.DB.GetContext(context.Background(), &orders, `SELECT count(*) FROM orders WHERE drop_id = $1`, d.ID); err != nil || orders != 50 {
		t.Fatalf("%d orders in the database (%v)", orders, err)
	}
	s.CheckBalance(t, d.ID)
	s.checkCounter(t, d.ID)
}

func TestRedisUnreachableStillSellsExactly(t *testing.T) {
	w := orderstest.New(t)
	// Nothing listens on port 1: every Redis call fails at once.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer dead.Close()
	gate := orders.NewGate(dead, w.Prefix)
	defer gate.Close()
	svc := orders.New(w.DB, gate, payments.NewSimulated(), dead, w.Config)
	d := w.LiveDrop(t, 50, 1)
	buyers := w.Buyers(t, 500)

	start := time.Now()
	byBuyer, soldOut := tally(t, stampede(t, svc, d.ID, buyers, 1))
	if len(byBuyer) != 50 || soldOut != 450 {
		t.Fatalf("%d orders and %d SOLD_OUT, want 50 and 450", len(byBuyer), soldOut)
	}
	w.CheckBalance(t, d.ID)
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("500 orders without Redis took %v", took)
	}
	// One order alone does not wait on Redis either.
	one := w.User(t, "late")
	d2 := w.LiveDrop(t, 5, 1)
	t0 := time.Now()
	if _, err := svc.PlaceOrder(context.Background(), one.ID, d2.ID, 1, "k"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("an order without Redis took %v", took)
	}
}

func TestGateTooHighNeverOversellsAndReconcilerFixesIt(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.LiveDrop(t, 50, 1)
	if err := s.gate.Load(ctx, d.ID, 500); err != nil {
		t.Fatal(err)
	}
	byBuyer, soldOut := tally(t, stampede(t, s.svc, d.ID, s.Buyers(t, 300), 1))
	if len(byBuyer) != 50 || soldOut != 250 {
		t.Fatalf("%d orders and %d SOLD_OUT, want 50 and 250", len(byBuyer), soldOut)
	}
	s.CheckBalance(t, d.ID)
	// Orders PostgreSQL refused gave back no more than it had left, so the
	// counter drained instead of staying at 500 - 50 (a few stragglers that
	// read the stock early may leave it slightly high).
	if n := s.counter(t, d.ID); n > 10 && orders.RedisFailures(s.gate) == 0 {
		t.Fatalf("gate counter %d after the stampede, want it drained", n)
	}
	_, err := s.svc.PlaceOrder(ctx, s.User(t, "late").ID, d.ID, 1, "k")
	wantCode(t, err, domain.SoldOut)
	if n := s.counter(t, d.ID); n != 0 && orders.RedisFailures(s.gate) == 0 {
		t.Fatalf("gate counter %d after PostgreSQL said sold out, want 0", n)
	}
	later := s.User(t, "later")
	before := s.DB.Statements.Load()
	_, err = s.svc.PlaceOrder(ctx, later.ID, d.ID, 1, "k")
	wantCode(t, err, domain.SoldOut)
	if after := s.DB.Statements.Load(); after != before && orders.RedisFailures(s.gate) == 0 {
		t.Fatalf("once drained, a SOLD_OUT still sent %d statements to PostgreSQL", after-before)
	}
	n, err := orders.NewReconciler(s.DB, s.gate, nil).Reconcile(ctx)
	if err != nil || n != 1 {
		t.Fatalf("reconciled %d drops: %v", n, err)
	}
	if n := s.counter(t, d.ID); n != 0 {
		t.Fatalf("gate counter %d after reconcile, want 0", n)
	}
}

func TestSoldOutGateAnswersWithoutPostgres(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 1, 1)
	a, b := s.User(t, "a"), s.User(t, "b")
	s.place(t, a.ID, d.ID, 1, "k")
	before := s.DB.Statements.Load()
	_, err := s.svc.PlaceOrder(context.Background(), b.ID, d.ID, 1, "k")
	wantCode(t, err, domain.SoldOut)
	if after := s.DB.Statements.Load(); after != before {
		t.Fatalf("a SOLD_OUT from the gate sent %d statements to PostgreSQL", after-before)
	}
}

func TestMissingCounterFallsThroughToPostgres(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.LiveDrop(t, 3, 3) // no counter loaded
	buyer := s.User(t, "buyer")
	if _, err := s.svc.PlaceOrder(ctx, buyer.ID, d.ID, 2, "k1"); err != nil {
		t.Fatalf("order with no gate counter: %v", err)
	}
	if _, ok, _ := s.gate.Counter(ctx, d.ID); ok {
		t.Fatal("the gate invented a counter")
	}
	if _, err := orders.NewReconciler(s.DB, s.gate, nil).Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.counter(t, d.ID); n != 1 {
		t.Fatalf("reconciled counter %d, want 1", n)
	}
	// Counters live only as long as the reconciler keeps renewing them.
	if ttl, err := s.Redis.TTL(ctx, s.gate.StockKey(d.ID)).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("counter TTL %v %v", ttl, err)
	}
}

func TestIdempotency(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 3, 3)
	other := s.liveDrop(t, 3, 3)
	buyer, rival := s.User(t, "buyer"), s.User(t, "rival")

	first := s.place(t, buyer.ID, d.ID, 1, "same")
	again := s.place(t, buyer.ID, d.ID, 1, "same")
	if again.ID != first.ID || again.Status != first.Status || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("retry gave %+v, want %+v", again, first)
	}
	_, err := s.svc.PlaceOrder(ctx, buyer.ID, d.ID, 2, "same")
	wantCode(t, err, domain.IdempotencyKeyReused)
	_, err = s.svc.PlaceOrder(ctx, buyer.ID, other.ID, 1, "same")
	wantCode(t, err, domain.IdempotencyKeyReused)
	// Keys are the buyer's own: another buyer may use the same string.
	s.place(t, rival.ID, d.ID, 2, "same")

	// Sold out now; the retry still answers the original order, unchanged.
	if got := s.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("drop is %s", got)
	}
	retry := s.place(t, buyer.ID, d.ID, 1, "same")
	if retry.ID != first.ID {
		t.Fatalf("retry after sell-out gave order %d, want %d", retry.ID, first.ID)
	}
	s.CheckBalance(t, d.ID)
	if n := s.counter(t, d.ID); n != 0 {
		t.Fatalf("gate counter %d, want 0", n)
	}
	if n := s.counter(t, other.ID); n != 3 {
		t.Fatalf("the refused order kept gate units: counter %d, want 3", n)
	}
}

func TestValidation(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 5, 2)
	buyer := s.User(t, "buyer")
	for _, tc := range []struct {
		q     int
		key   string
		field string
	}{
		{0, "k", "quantity"},
		{-1, "k", "quantity"},
		{1001, "k", "quantity"},
		{1, "", "idempotencyKey"},
		{1, strings.Repeat("k", 101), "idempotencyKey"},
		{1, "clé", "idempotencyKey"},
		{1, "tab\tkey", "idempotencyKey"},
		{3, "over-limit", "quantity"}, // more than the drop's per-user limit at once
	} {
		_, err := s.svc.PlaceOrder(context.Background(), buyer.ID, d.ID, tc.q, tc.key)
		wantCode(t, err, domain.BadUserInput)
		if f := err.(*domain.Error).Field; f != tc.field {
			t.Fatalf("q=%d key=%q: field %q, want %q", tc.q, tc.key, f, tc.field)
		}
	}
	s.place(t, buyer.ID, d.ID, 1, strings.Repeat("k", 100))
	if n := s.counter(t, d.ID); n != 4 {
		t.Fatalf("gate counter %d, want 4", n)
	}
}

func TestPerUserLimitIsExactUnderConcurrency(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 100, 3)
	buyer := s.User(t, "greedy")
	var mu sync.Mutex
	codes := map[string]int{}
	orderstest.Concurrently(12, func(i int) {
		_, err := s.svc.PlaceOrder(context.Background(), buyer.ID, d.ID, 1, fmt.Sprintf("k%d", i))
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			codes["accepted"]++
		} else {
			codes[domain.ErrorCode(err)]++
		}
	})
	if codes["accepted"] != 3 || codes[domain.LimitExceeded] != 9 {
		t.Fatalf("answers %v, want 3 accepted and 9 LIMIT_EXCEEDED", codes)
	}
	st := s.CheckBalance(t, d.ID)
	if st.Available != 97 || s.counter(t, d.ID) != 97 {
		t.Fatalf("stock %+v, counter %d", st, s.counter(t, d.ID))
	}
	// Cancelled orders stop counting against the limit.
	var first int64
	if err := s.DB.GetContext(context.Background(), &first, `SELECT min(id) FROM orders WHERE buyer_id = $1`, buyer.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.CancelOrder(context.Background(), buyer.ID, first); err != nil {
		t.Fatal(err)
	}
	s.place(t, buyer.ID, d.ID, 1, "after-cancel")
}

func TestDropMustBeLive(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	buyer := s.User(t, "buyer")

	scheduled := s.ScheduledDrop(t, 5, 1)
	if err := s.gate.Load(ctx, scheduled.ID, 5); err != nil {
		t.Fatal(err)
	}
	_, err := s.svc.PlaceOrder(ctx, buyer.ID, scheduled.ID, 1, "early")
	wantCode(t, err, domain.DropNotLive)
	if n := s.counter(t, scheduled.ID); n != 5 {
		t.Fatalf("a refused order kept gate units: counter %d", n)
	}

	live := s.liveDrop(t, 5, 1)
	s.Clock.Advance(3 * time.Hour) // past endsAt, before any scheduler ran
	_, err = s.svc.PlaceOrder(ctx, buyer.ID, live.ID, 1, "late")
	wantCode(t, err, domain.DropNotLive)

	_, err = s.svc.PlaceOrder(ctx, buyer.ID, 987654, 1, "nowhere")
	wantCode(t, err, domain.NotFound)
	s.CheckBalance(t, live.ID)
}

func TestRateLimit(t *testing.T) {
	s := newSelling(t)
	s.Config.OrderRatePerMinute = 3
	svc := orders.New(s.DB, s.gate, payments.NewSimulated(), s.Redis, s.Config)
	d := s.liveDrop(t, 100, 100)
	buyer, other := s.User(t, "buyer"), s.User(t, "other")
	for i := 0; i < 3; i++ {
		if _, err := svc.PlaceOrder(context.Background(), buyer.ID, d.ID, 1, fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.PlaceOrder(context.Background(), buyer.ID, d.ID, 1, "k3")
	wantCode(t, err, domain.RateLimited)
	retry, ok := err.(*domain.Error).Extensions["retryAfter"].(int)
	if !ok || retry < 1 || retry > 60 {
		t.Fatalf("retryAfter %v", err.(*domain.Error).Extensions)
	}
	// The gate, asked first, got back the unit it took for the refused order.
	if n := s.counter(t, d.ID); n != 97 {
		t.Fatalf("gate counter %d after 3 orders and a refused one, want 97", n)
	}
	// A sold-out drop answers SOLD_OUT at the gate, before the limit is asked.
	gone := s.liveDrop(t, 0, 1)
	_, err = svc.PlaceOrder(context.Background(), buyer.ID, gone.ID, 1, "k4")
	wantCode(t, err, domain.SoldOut)
	if _, err := svc.PlaceOrder(context.Background(), other.ID, d.ID, 1, "k0"); err != nil {
		t.Fatalf("another buyer is limited too: %v", err)
	}
	keys, err := s.Redis.Keys(context.Background(), s.Prefix+"rate:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("rate keys under the prefix: %v %v", keys, err)
	}
}

func TestOrderVisibility(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 5, 1)
	buyer, stranger := s.User(t, "buyer"), s.User(t, "stranger")
	o := s.place(t, buyer.ID, d.ID, 1, "k")
	if got, err := s.svc.OrderFor(ctx, buyer.ID, o.ID); err != nil || got.ID != o.ID {
		t.Fatalf("buyer: %v %v", got, err)
	}
	if got, err := s.svc.OrderFor(ctx, s.Seller.ID, o.ID); err != nil || got.ID != o.ID {
		t.Fatalf("seller: %v %v", got, err)
	}
	_, err := s.svc.OrderFor(ctx, stranger.ID, o.ID)
	wantCode(t, err, domain.Forbidden)
	_, err = s.svc.OrderFor(ctx, buyer.ID, 999999)
	wantCode(t, err, domain.NotFound)

	page, err := s.svc.OrdersOfBuyer(ctx, buyer.ID, mustPage(t))
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != o.ID {
		t.Fatalf("orders of buyer: %+v %v", page, err)
	}
	if o.TotalCents != 1250 || o.Currency != "EUR" || o.Status != domain.OrderPendingPayment ||
		!o.ExpiresAt.Equal(s.Clock.Now().Add(s.Config.ReservationTTL)) {
		t.Fatalf("order %+v", o)
	}
}

func TestConcurrentOrdersShareTransactions(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 200, 1)
	buyers := s.Buyers(t, 200)
	byBuyer, soldOut := tally(t, stampede(t, s.svc, d.ID, buyers, 1))
	if len(byBuyer) != 200 || soldOut != 0 {
		t.Fatalf("%d buyers got orders and %d heard SOLD_OUT; want 200 and 0", len(byBuyer), soldOut)
	}
	// Each transaction moves the stock once: fewer moves than orders means
	// orders that arrived together were placed together.
	key := orderstest.DropKey(d.ID)
	moves, placed := s.CountEvents(t, key, domain.EventStockChanged), s.CountEvents(t, key, domain.EventOrderPlaced)
	if placed != 200 || moves >= placed/2 {
		t.Fatalf("%d orders placed in %d transactions; want 200 in fewer than 100", placed, moves)
	}
	s.CheckBalance(t, d.ID)
	s.checkCounter(t, d.ID)
}

func TestGateAdmitsInPipelinesAndSurvivesAScriptFlush(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 100, 100)
	ctx := context.Background()
	if err := s.Redis.ScriptFlush(ctx).Err(); err != nil { // as a Redis restart would
		t.Fatal(err)
	}
	if a := s.gate.Admit(ctx, d.ID, 1, "first", 1); a != orders.Admitted {
		t.Fatalf("after SCRIPT FLUSH the gate answered %v, want Admitted", a)
	}
	// Concurrent admissions share pipelines and still count each unit once;
	// twins of one key are seen as such.
	got := make([]orders.Admission, 200)
	orderstest.Concurrently(len(got), func(i int) {
		got[i] = s.gate.Admit(ctx, d.ID, int64(2+i/2), "k", 1)
	})
	// 100 buyers send twins after the first unit went: 99 get a unit, each
	// of their twins is Seen, and the last buyer's two hear SOLD_OUT.
	admitted, seen, soldOut := 0, 0, 0
	for _, a := range got {
		switch a {
		case orders.Admitted:
			admitted++
		case orders.Seen:
			seen++
		case orders.SoldOut:
			soldOut++
		default:
			t.Fatalf("answer %v", a)
		}
	}
	if admitted != 99 || seen != 99 || soldOut != 2 || s.counter(t, d.ID) != 0 {
		t.Fatalf("%d admitted, %d seen, %d sold out, counter %d; want 99, 99, 2 and 0", admitted, seen, soldOut, s.counter(t, d.ID))
	}
}

// Every gate key lives for its retention after its last renewal: the
// counter for Retention, the known keys a minute longer.
func TestGateKeysExpireAfterTheirRetention(t *testing.T) {
	for _, tc := range []struct {
		retention, counter time.Duration
	}{
		{0, orders.DefaultRetention},
		{3 * time.Minute, 3 * time.Minute},
	} {
		t.Run(tc.counter.String(), func(t *testing.T) {
			s := newSelling(t)
			s.gate.Retention = tc.retention
			ctx := context.Background()
			d := s.liveDrop(t, 5, 2)
			s.place(t, s.User(t, "ttl").ID, d.ID, 1, "k1")
			counter, keys := s.Redis.TTL(ctx, s.gate.StockKey(d.ID)).Val(), s.Redis.TTL(ctx, s.gate.KeysKey(d.ID)).Val()
			if counter <= tc.counter-5*time.Second || counter > tc.counter {
				t.Errorf("counter TTL = %v, want about %v", counter, tc.counter)
			}
			if want := tc.counter + time.Minute; keys <= want-5*time.Second || keys > want {
				t.Errorf("known keys TTL = %v, want about %v", keys, want)
			}
		})
	}
}
