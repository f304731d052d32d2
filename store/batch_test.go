package store_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/orders/orderstest"
	"livedrops/store"
)

func newOrder(drop, buyer int64, q int, key string) store.NewOrder {
	return store.NewOrder{DropID: drop, BuyerID: buyer, Quantity: q, IdempotencyKey: key, RequestHash: key,
		TTL: time.Minute, RequestID: "req-" + key}
}

// limit refuses an order of a buyer who already holds the drop's per-user
// limit: enough of the orders service's rules to judge a batch here.
func limit(_ int, s store.OrderSale) error {
	if s.Held+1 > s.Drop.PerUserLimit {
		return domain.Errorf(domain.LimitExceeded, "over the limit")
	}
	return nil
}

func TestPlaceOrdersJudgesEachOrderInBatchOrder(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 4, 2)
	a, b, c := w.User(t, "a"), w.User(t, "b"), w.User(t, "c")
	batch := []store.NewOrder{
		newOrder(d.ID, a.ID, 2, "a1"), // granted: 4 → 2
		newOrder(d.ID, a.ID, 1, "a2"), // a holds 2 through the batch: over the limit
		newOrder(d.ID, b.ID, 1, "b1"), // granted: 2 → 1
		newOrder(d.ID, c.ID, 2, "c1"), // 2 do not fit in 1: SOLD_OUT
		newOrder(d.ID, c.ID, 1, "c2"), // 1 fits: 1 → 0
		newOrder(d.ID, a.ID, 2, "a1"), // a twin of the first: its order
	}
	res, err := w.DB.PlaceOrders(context.Background(), d.ID, batch, limit)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(i int) *domain.Order {
		t.Helper()
		if res[i].Err != nil || res[i].Placed == nil || res[i].Existing {
			t.Fatalf("order %d: %+v %v, want placed", i, res[i].Placed, res[i].Err)
		}
		return res[i].Order
	}
	first := ok(0)
	ok(2)
	ok(4)
	if code := domain.ErrorCode(res[1].Err); code != domain.LimitExceeded {
		t.Fatalf("order 1: %v, want LIMIT_EXCEEDED", res[1].Err)
	}
	if code := domain.ErrorCode(res[3].Err); code != domain.SoldOut || res[3].Available != 1 {
		t.Fatalf("order 3: %v with %d left, want SOLD_OUT with 1 left", res[3].Err, res[3].Available)
	}
	if res[5].Placed == nil || !res[5].Existing || res[5].Order.ID != first.ID {
		t.Fatalf("twin: %+v %v, want the first order as existing", res[5].Placed, res[5].Err)
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 0 || s.Reserved != 4 {
		t.Fatalf("stock %+v", s)
	}
	if res[4].Drop.Status != domain.DropSoldOut || res[4].Stock.Available != 0 {
		t.Fatalf("placed into %+v %+v, want the drop sold out", res[4].Drop, res[4].Stock)
	}
	// One transaction: one stock move, with StockLow and SoldOut once.
	want := []string{"OrderPlaced", "OrderPlaced", "OrderPlaced", "StockChanged", "StockLow", "SoldOut"}
	got := w.Events(t, orderstest.DropKey(d.ID))
	got = slices.DeleteFunc(got, func(s string) bool { return s == "DropScheduled" || s == "DropStarted" })
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	var audits []string
	if err := w.DB.SelectContext(context.Background(), &audits, `SELECT actor || ' ' || request_id FROM audit_log
		WHERE action = 'order.place' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	wantAudits := []string{"user:" + itoa(a.ID) + " req-a1", "user:" + itoa(b.ID) + " req-b1", "user:" + itoa(c.ID) + " req-c2"}
	if !slices.Equal(audits, wantAudits) {
		t.Fatalf("audit rows %v, want %v", audits, wantAudits)
	}
}

func TestPlaceOrdersAnswersKnownKeysWithTheirOrders(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 10, 1)
	a, b := w.User(t, "a"), w.User(t, "b")
	before := salesOrder(t, w, a.ID, d.ID, 1, "k")
	res, err := w.DB.PlaceOrders(context.Background(), d.ID, []store.NewOrder{
		newOrder(d.ID, a.ID, 1, "k"),
		newOrder(d.ID, b.ID, 5, "big"), // refused by admit: its twin gets the same answer
		newOrder(d.ID, b.ID, 5, "big"),
	}, func(i int, s store.OrderSale) error {
		if i == 0 {
			t.Errorf("an order whose key exists was judged")
		}
		return domain.InvalidInput("quantity", "too many")
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Placed == nil || !res[0].Existing || res[0].Order.ID != before.Order.ID {
		t.Fatalf("known key: %+v %v", res[0].Placed, res[0].Err)
	}
	for _, i := range []int{1, 2} {
		if domain.ErrorCode(res[i].Err) != domain.BadUserInput || res[i].Placed != nil {
			t.Fatalf("order %d: %+v %v, want BAD_USER_INPUT", i, res[i].Placed, res[i].Err)
		}
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 9 {
		t.Fatalf("stock %+v", s)
	}
}

func TestPlaceOrdersYieldsAKeyTakenMeanwhile(t *testing.T) {
	w := orderstest.New(t)
	d, other := w.LiveDrop(t, 5, 5), w.LiveDrop(t, 5, 5)
	a, b := w.User(t, "a"), w.User(t, "b")
	var theirs *store.Placed
	// While the batch holds its drop's lock, the same buyer's order with the
	// same key commits in another drop: the batch's insert finds the key taken.
	res, err := w.DB.PlaceOrders(context.Background(), d.ID, []store.NewOrder{
		newOrder(d.ID, a.ID, 1, "same"), newOrder(d.ID, b.ID, 1, "mine"),
	}, func(i int, _ store.OrderSale) error {
		if i == 0 {
			theirs = salesOrder(t, w, a.ID, other.ID, 1, "same")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Placed == nil || !res[0].Existing || res[0].Order.ID != theirs.Order.ID {
		t.Fatalf("taken key: %+v %v, want the other drop's order", res[0].Placed, res[0].Err)
	}
	if res[1].Err != nil || res[1].Existing {
		t.Fatalf("the other order: %+v %v", res[1].Placed, res[1].Err)
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 4 || s.Reserved != 1 {
		t.Fatalf("stock %+v: only the order placed takes a unit", s)
	}
	if n := w.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderPlaced); n != 1 {
		t.Fatalf("%d OrderPlaced events", n)
	}
}

func TestPlaceOrdersRefusesBadBatches(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 5, 5)
	for _, n := range []int{0, store.MaxBatch + 1} {
		batch := make([]store.NewOrder, n)
		for i := range batch {
			batch[i] = newOrder(d.ID, 1, 1, "k"+itoa(int64(i)))
		}
		if _, err := w.DB.PlaceOrders(context.Background(), d.ID, batch, limit); err == nil {
			t.Fatalf("a batch of %d was accepted", n)
		}
	}
	res, err := w.DB.PlaceOrders(context.Background(), 987654, []store.NewOrder{newOrder(987654, 1, 1, "k")}, limit)
	if domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("no such drop: %+v %v", res, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
