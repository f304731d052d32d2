package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/orders/orderstest"
	"livedrops/store"
)

func salesOrder(t *testing.T, w *orderstest.World, buyer, drop int64, q int, key string) *store.Placed {
	t.Helper()
	p, err := w.DB.PlaceOrder(context.Background(), store.NewOrder{
		DropID: drop, BuyerID: buyer, Quantity: q, IdempotencyKey: key, RequestHash: key, TTL: time.Minute,
	}, func(store.OrderSale) error { return nil })
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	return p
}

func TestInventoryCheckIsTheLastWord(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 3, 3)
	// Whatever code runs, PostgreSQL refuses a row that does not balance.
	for _, q := range []string{
		`UPDATE inventory SET available = available - 4, reserved = reserved + 4 WHERE drop_id = $1`,
		`UPDATE inventory SET available = available - 1 WHERE drop_id = $1`,
		`UPDATE inventory SET sold = sold + 1 WHERE drop_id = $1`,
	} {
		if _, err := w.DB.ExecContext(context.Background(), q, d.ID); err == nil {
			t.Fatalf("%s was accepted", q)
		}
	}
	// The conditional take refuses more than is left, and says so.
	buyer := w.User(t, "buyer")
	_, err := w.DB.PlaceOrder(context.Background(), store.NewOrder{
		DropID: d.ID, BuyerID: buyer.ID, Quantity: 4, IdempotencyKey: "k", RequestHash: "h", TTL: time.Minute,
	}, func(store.OrderSale) error { return nil })
	if domain.ErrorCode(err) != domain.SoldOut {
		t.Fatalf("taking 4 of 3: %v", err)
	}
	w.CheckBalance(t, d.ID)
}

func TestPlaceOrderEventsAndSale(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 10, 10)
	buyer := w.User(t, "buyer")
	var seen store.OrderSale
	_, err := w.DB.PlaceOrder(context.Background(), store.NewOrder{
		DropID: d.ID, BuyerID: buyer.ID, Quantity: 2, IdempotencyKey: "a", RequestHash: "a", TTL: time.Minute,
	}, func(s store.OrderSale) error { seen = s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if seen.Drop.ID != d.ID || seen.PriceCents != 1250 || seen.Currency != "EUR" || seen.Held != 0 {
		t.Fatalf("sale %+v", seen)
	}
	p := salesOrder(t, w, buyer.ID, d.ID, 7, "b") // 10 → 1 available: low, not out
	if p.Order.TotalCents != 7*1250 || p.Stock.Available != 1 || p.Drop.Status != domain.DropLive {
		t.Fatalf("placed %+v", p)
	}
	_, err = w.DB.PlaceOrder(context.Background(), store.NewOrder{
		DropID: d.ID, BuyerID: buyer.ID, Quantity: 1, IdempotencyKey: "c", RequestHash: "c", TTL: time.Minute,
	}, func(s store.OrderSale) error { seen = s; return nil })
	if err != nil || seen.Held != 9 {
		t.Fatalf("held %d (%v), want 9", seen.Held, err)
	}

	var rows []struct {
		Type    string `db:"type"`
		Payload []byte `db:"payload"`
	}
	if err := w.DB.SelectContext(context.Background(), &rows, `SELECT type, payload FROM outbox
		WHERE key = $1 AND type <> 'DropScheduled' AND type <> 'DropStarted' ORDER BY id`, orderstest.DropKey(d.ID)); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	want := []string{"OrderPlaced", "StockChanged", "OrderPlaced", "StockChanged", "StockLow", "OrderPlaced", "StockChanged", "SoldOut"}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	var last domain.Event
	if err := json.Unmarshal(rows[len(rows)-1].Payload, &last); err != nil {
		t.Fatal(err)
	}
	var sp domain.StockPayload
	if err := json.Unmarshal(last.Payload, &sp); err != nil {
		t.Fatal(err)
	}
	stocks, err := w.DB.StocksByDropIDs(context.Background(), []int64{d.ID})
	if err != nil || len(stocks) != 1 || stocks[0].Version == 0 {
		t.Fatalf("stock %+v, %v: want one with a version", stocks, err)
	}
	if sp != (domain.StockPayload{DropID: d.ID, CreatorID: w.Creator.ID, Total: 10, Available: 0, Reserved: 10,
		Version: stocks[0].Version, Status: domain.DropSoldOut, DropVersion: w.DropNow(t, d.ID).Version}) || last.Key != orderstest.DropKey(d.ID) {
		t.Fatalf("SoldOut event %+v, payload %+v", last, sp)
	}
	if got := w.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("status %s", got)
	}
}

func TestPlaceOrderRefusesEndedDropAfterTakingTheLock(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 5, 5)
	buyer := w.User(t, "buyer")
	// The sale was judged on a LIVE drop, but the drop ended before the insert.
	_, err := w.DB.PlaceOrder(context.Background(), store.NewOrder{
		DropID: d.ID, BuyerID: buyer.ID, Quantity: 1, IdempotencyKey: "k", RequestHash: "h", TTL: time.Minute,
	}, func(store.OrderSale) error {
		_, err := w.DB.TransitionDrop(context.Background(), store.DropTransition{
			DropID: d.ID, From: []domain.DropStatus{domain.DropLive}, To: domain.DropEnded,
			Event: domain.EventDropEnded, Action: "drop.end", Refusal: "not live",
		})
		return err
	})
	if domain.ErrorCode(err) != domain.DropNotLive {
		t.Fatalf("order in a drop that ended meanwhile: %v", err)
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 5 {
		t.Fatalf("stock %+v", s)
	}
}

func TestOrdersOfBuyerPagesNewestFirst(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 100, 100)
	buyer, other := w.User(t, "buyer"), w.User(t, "other")
	var ids []int64
	for i := 0; i < 7; i++ {
		ids = append(ids, salesOrder(t, w, buyer.ID, d.ID, 1, string(rune('a'+i))).Order.ID)
		w.Clock.Advance(time.Second)
	}
	salesOrder(t, w, other.ID, d.ID, 1, "x")
	var got []int64
	var after *string
	three := 3
	for {
		p, err := store.NewPageArgs(&three, nil, after, nil)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := w.DB.OrdersOfBuyer(context.Background(), buyer.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range pg.Items {
			got = append(got, o.ID)
		}
		if !pg.HasNext {
			break
		}
		after = &pg.Cursors[len(pg.Cursors)-1]
	}
	if len(got) != len(ids) {
		t.Fatalf("orders %v", got)
	}
	for i := range got {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("orders %v, want newest first of %v", got, ids)
		}
	}
	os, err := w.DB.OrdersByIDs(context.Background(), append(ids[:2:2], 999999))
	if err != nil || len(os) != 2 {
		t.Fatalf("orders by ids: %v %v", os, err)
	}
}

func TestApplyPaymentRecordsLatestAttempt(t *testing.T) {
	w := orderstest.New(t)
	ctx := context.Background()
	d := w.LiveDrop(t, 5, 5)
	buyer := w.User(t, "buyer")
	o := salesOrder(t, w, buyer.ID, d.ID, 2, "k").Order
	pending, err := w.DB.ApplyPayment(ctx, store.PaymentResult{OrderID: o.ID, Provider: "p", ProviderRef: "r1", Status: domain.PaymentStatusPending})
	if err != nil || pending.Changed || pending.Order.Status != domain.OrderPendingPayment {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	// The webhook turns the pending attempt into a success: same row, order confirmed.
	done, err := w.DB.ApplyPayment(ctx, store.PaymentResult{OrderID: o.ID, Provider: "p", ProviderRef: "r1",
		Status: domain.PaymentStatusSucceeded, EventID: "e1"})
	if err != nil || !done.Changed || done.Order.Status != domain.OrderConfirmed || done.Payment.ID != pending.Payment.ID {
		t.Fatalf("succeeded: %+v %v", done, err)
	}
	dup, err := w.DB.ApplyPayment(ctx, store.PaymentResult{OrderID: o.ID, Provider: "p", ProviderRef: "r1",
		Status: domain.PaymentStatusSucceeded, EventID: "e1"})
	if err != nil || !dup.Duplicate {
		t.Fatalf("duplicate: %+v %v", dup, err)
	}
	// A later attempt under another reference is recorded; the order stays confirmed.
	later, err := w.DB.ApplyPayment(ctx, store.PaymentResult{OrderID: o.ID, Provider: "p", ProviderRef: "r2", Status: domain.PaymentStatusDeclined})
	if err != nil || later.Changed || later.Order.Status != domain.OrderConfirmed {
		t.Fatalf("late decline: %+v %v", later, err)
	}
	ps, err := w.DB.PaymentsByOrderIDs(ctx, []int64{o.ID})
	if err != nil || len(ps) != 1 || ps[0].ProviderRef != "r2" {
		t.Fatalf("latest payment %+v %v", ps, err)
	}
	if s := w.CheckBalance(t, d.ID); s.Sold != 2 {
		t.Fatalf("stock %+v", s)
	}
}

func TestAdjustStockBounds(t *testing.T) {
	w := orderstest.New(t)
	ctx := context.Background()
	d := w.ScheduledDrop(t, 10, 1)
	if _, _, err := w.DB.AdjustStock(ctx, d.ID, 91, 100, 0); domain.ErrorCode(err) != domain.BadUserInput {
		t.Fatalf("over the cap: %v", err)
	}
	_, s, err := w.DB.AdjustStock(ctx, d.ID, 90, 100, 0)
	if err != nil || s.Total != 100 {
		t.Fatalf("up to the cap: %+v %v", s, err)
	}
	// A scheduled drop emptied stays SCHEDULED, and starts straight into SOLD_OUT.
	if _, _, err := w.DB.AdjustStock(ctx, d.ID, -100, 100, 0); err != nil {
		t.Fatal(err)
	}
	started, err := w.DB.TransitionDrop(ctx, store.DropTransition{DropID: d.ID, From: []domain.DropStatus{domain.DropScheduled},
		To: domain.DropLive, Event: domain.EventDropStarted, Action: "drop.start", Refusal: "no"})
	if err != nil || started.Status != domain.DropSoldOut {
		t.Fatalf("start with nothing available: %+v %v", started, err)
	}
	evs := w.Events(t, orderstest.DropKey(d.ID))
	if n := len(evs); n < 2 || evs[n-2] != domain.EventDropStarted || evs[n-1] != domain.EventSoldOut {
		t.Fatalf("events %v: want DropStarted then SoldOut last", evs)
	}
	// The same when the scheduler starts it.
	e := w.ScheduledDrop(t, 10, 1)
	if _, _, err := w.DB.AdjustStock(ctx, e.ID, -10, 100, 0); err != nil {
		t.Fatal(err)
	}
	w.Clock.Advance(time.Hour)
	if ds, err := w.DB.StartDueDrops(ctx, 10); err != nil || len(ds) != 1 || ds[0].Status != domain.DropSoldOut {
		t.Fatalf("scheduled start with nothing available: %+v %v", ds, err)
	}
	evs = w.Events(t, orderstest.DropKey(e.ID))
	if n := len(evs); n < 2 || evs[n-2] != domain.EventDropStarted || evs[n-1] != domain.EventSoldOut {
		t.Fatalf("events %v: want DropStarted then SoldOut last", evs)
	}
	gs, err := w.DB.GateStocks(ctx, 0, 10)
	if err != nil || len(gs) != 2 || gs[0].Available != 0 || gs[0].Status != domain.DropSoldOut {
		t.Fatalf("gate stocks %+v %v", gs, err)
	}
}
