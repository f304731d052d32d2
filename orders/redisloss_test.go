package orders_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
)

// instance is one app instance's orders service, gate and running reconciler.
type instance struct {
	svc  *orders.Service
	gate *orders.Gate
}

// instances starts n orders services sharing the world's database and the
// Redis of rdb, each with its own gate and a running reconciler whose
// periodic pass never comes during the test: what converges, converges
// through restores and recoveries.
func instances(t *testing.T, w *orderstest.World, rdb redis.UniversalClient, n int) []instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait() })
	out := make([]instance, n)
	for i := range out {
		g := orders.NewGate(rdb, w.Prefix)
		t.Cleanup(func() { g.Close() })
		r := orders.NewReconciler(w.DB, g, nil)
		r.Interval = time.Hour
		running.Add(1)
		go func() { defer running.Done(); r.Run(ctx) }()
		out[i] = instance{svc: orders.New(w.DB, g, payments.NewSimulated(), rdb, w.Config), gate: g}
	}
	return out
}

func buyerKey(b int64) string { return fmt.Sprintf("key-%d", b) }

// placeAll places one order per buyer at once, spread over the instances,
// and returns the answers in buyers' order.
func placeAll(insts []instance, dropID int64, buyers []int64, key func(int64) string) []result {
	out := make([]result, len(buyers))
	orderstest.Concurrently(len(buyers), func(i int) {
		b := buyers[i]
		o, err := insts[i%len(insts)].svc.PlaceOrder(context.Background(), b, dropID, 1, key(b))
		out[i] = result{buyer: b, order: o, err: err}
	})
	return out
}

// wantOwnOrders fails unless every buyer of held got its own order back.
func wantOwnOrders(t *testing.T, rs []result, held map[int64]int64) {
	t.Helper()
	for _, r := range rs {
		if r.err != nil || r.order.ID != held[r.buyer] {
			t.Fatalf("buyer %d retried its key: got %v (%s), want its order %d", r.buyer, r.order, domain.ErrorCode(r.err), held[r.buyer])
		}
	}
}

// untilCounter waits until the drop's counter exists and returns it and how long that took.
func untilCounter(t *testing.T, g *orders.Gate, dropID int64, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		n, ok, err := g.Counter(context.Background(), dropID)
		if err == nil && ok {
			return n, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("no gate counter for drop %d %v after Redis came back (%v)", dropID, within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The promise broken by a Redis restart: 400 buyers on 150 units, Redis
// killed mid-stampede and restarted empty. Every buyer holding an order gets
// it back with its key, the drop still sells out exactly, and once the gate
// has converged a sold-out stampede of new keys never reaches PostgreSQL.
func TestRedisLostMidStampedeKeepsEveryOrderAndConverges(t *testing.T) {
	w := orderstest.New(t)
	server := testenv.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: server.Addr})
	t.Cleanup(func() { rdb.Close() })
	insts := instances(t, w, rdb, 2)
	ctx := context.Background()
	d := w.LiveDrop(t, 150, 1)
	if err := insts[0].gate.Load(ctx, d.ID, 150); err != nil {
		t.Fatal(err)
	}
	buyers := w.Buyers(t, 400)
	held := map[int64]int64{} // buyer → its order
	keep := func(rs []result) {
		for _, r := range rs {
			if r.err != nil {
				t.Fatalf("buyer %d: %v", r.buyer, r.err)
			}
			held[r.buyer] = r.order.ID
		}
	}

	// 80 buyers with Redis up, then 40 more with Redis killed among them:
	// 120 ≤ 150, so every one of them gets an order whichever way it went.
	keep(placeAll(insts, d.ID, buyers[:80], buyerKey))
	var answered atomic.Int32
	killed := make(chan struct{})
	rs := make([]result, 40)
	orderstest.Concurrently(40, func(i int) {
		b := buyers[80+i]
		o, err := insts[i%2].svc.PlaceOrder(ctx, b, d.ID, 1, buyerKey(b))
		rs[i] = result{buyer: b, order: o, err: err}
		if answered.Add(1) == 10 {
			server.Kill()
			close(killed)
		}
	})
	<-killed
	keep(rs)
	server.Start() // empty: no counter, no known key
	restarted := time.Now()

	// Half the holders retry at once, on either instance: their own orders.
	var first, second []int64
	for b := range held {
		if len(first) <= len(second) {
			first = append(first, b)
		} else {
			second = append(second, b)
		}
	}
	wantOwnOrders(t, placeAll(insts, d.ID, first, buyerKey), held)

	// Once no instance is cooling down, their admissions find the counter
	// missing, and it is restored with every key PostgreSQL holds: the keys
	// of the half that did not retry too.
	time.Sleep(orders.Cooldown - time.Since(restarted))
	asked := time.Now()
	wantOwnOrders(t, placeAll(insts[:1], d.ID, first[:1], buyerKey), held)
	n, _ := untilCounter(t, insts[0].gate, d.ID, 5*time.Second)
	t.Logf("counter restored %v after the first admission that found it missing", time.Since(asked))
	if n != 30 {
		t.Fatalf("restored counter %d, want 30 (PostgreSQL's)", n)
	}
	wantOwnOrders(t, placeAll(insts, d.ID, first, buyerKey), held)
	for _, b := range second {
		if ok, err := orders.KnowsKey(ctx, insts[0].gate, d.ID, b, buyerKey(b)); err != nil || !ok {
			t.Fatalf("the restored gate does not know buyer %d's key (%v)", b, err)
		}
	}

	// The 280 others: exactly the 30 units left are sold, once each.
	rest := placeAll(insts, d.ID, buyers[120:], buyerKey)
	byBuyer, soldOut := tally(t, rest)
	if len(byBuyer) != 30 || soldOut != 250 {
		t.Fatalf("%d orders and %d SOLD_OUT after the restart, want 30 and 250", len(byBuyer), soldOut)
	}
	for _, r := range rest {
		if r.err == nil {
			held[r.buyer] = r.order.ID
		}
	}
	st := w.CheckBalance(t, d.ID)
	if st.Available != 0 || st.Reserved != 150 || len(held) != 150 {
		t.Fatalf("stock %+v with %d orders, want all 150 units reserved by 150 orders", st, len(held))
	}

	// Sold out, counter at zero: every holder still gets its order.
	holders := make([]int64, 0, len(held))
	for b := range held {
		holders = append(holders, b)
	}
	wantOwnOrders(t, placeAll(insts, d.ID, holders, buyerKey), held)
	for _, in := range insts {
		if n, ok, err := in.gate.Counter(ctx, d.ID); err != nil || !ok || n != 0 {
			t.Fatalf("counter %d (exists %v, %v) once sold out, want 0", n, ok, err)
		}
	}

	// New keys are answered SOLD_OUT by the gate alone.
	before := w.DB.Statements.Load()
	for i, b := range buyers[120:170] {
		_, err := insts[i%2].svc.PlaceOrder(ctx, b, d.ID, 1, "again-"+buyerKey(b))
		wantCode(t, err, domain.SoldOut)
	}
	if after := w.DB.Statements.Load(); after != before {
		t.Fatalf("50 new keys on the sold-out drop sent %d statements to PostgreSQL, want 0", after-before)
	}
}

// Redis that stops answering but keeps its data: orders placed and cancelled
// meanwhile go to PostgreSQL without the gate. Once Redis answers again the
// gate is told their keys, so their retries after the sell-out get their
// orders, and its counter is set again, so no unit is refused while left.
func TestOrdersPlacedWithoutRedisAreToldOnRecovery(t *testing.T) {
	w := orderstest.New(t)
	server := testenv.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: server.Addr})
	t.Cleanup(func() { rdb.Close() })
	in := instances(t, w, rdb, 1)[0]
	ctx := context.Background()
	d, other := w.LiveDrop(t, 10, 1), w.LiveDrop(t, 10, 1)
	if err := in.gate.LoadMany(ctx, map[int64]int{d.ID: 10, other.ID: 10}); err != nil {
		t.Fatal(err)
	}
	buyers := w.Buyers(t, 20)
	held := map[int64]int64{}
	for _, b := range buyers[:5] {
		if b == buyers[3] { // a paused Redis holds every command, as a hung one would
			if err := rdb.Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
				t.Fatal(err)
			}
			for _, c := range buyers[:3] {
				if _, err := in.svc.CancelOrder(ctx, c, held[c]); err != nil {
					t.Fatalf("cancel while Redis hangs: %v", err)
				}
			}
		}
		o, err := in.svc.PlaceOrder(ctx, b, d.ID, 1, buyerKey(b))
		if err != nil {
			t.Fatalf("order: %v", err)
		}
		held[b] = o.ID
	}
	if orders.RedisFailures(in.gate) == 0 {
		t.Fatal("no Redis call failed while Redis was paused")
	}
	if err := rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(orders.Cooldown)
	// The instance's next order, in another drop, finds Redis answering.
	if _, err := in.svc.PlaceOrder(ctx, buyers[19], other.ID, 1, "k"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b := range held {
		for {
			ok, err := orders.KnowsKey(ctx, in.gate, d.ID, b, buyerKey(b))
			if err == nil && ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("buyer %d's key, used while Redis hung, is still unknown to the gate (%v)", b, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for {
		n, _, err := in.gate.Counter(ctx, d.ID)
		if err == nil && n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate counter %d (%v) after the recovery, PostgreSQL has 8 available", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	byBuyer, soldOut := tally(t, placeAll([]instance{in}, d.ID, buyers[5:19], buyerKey))
	if len(byBuyer) != 8 || soldOut != 6 {
		t.Fatalf("%d orders and %d SOLD_OUT for the 8 units left, want 8 and 6", len(byBuyer), soldOut)
	}
	w.CheckBalance(t, d.ID)
	for b, id := range held { // the cancelled orders too: a key names its order, whatever became of it
		o, err := in.svc.PlaceOrder(ctx, b, d.ID, 1, buyerKey(b))
		if err != nil || o.ID != id {
			t.Fatalf("buyer %d retried after the sell-out: %v %v, want its order %d", b, o, err, id)
		}
	}
}
