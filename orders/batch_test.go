package orders

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"livedrops/domain"
	"livedrops/orders/orderstest"
	"livedrops/store"
)

func TestBatchThatPanicsAnswersEveryOrder(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 10, 10)
	buyers := w.Buyers(t, 20)
	b := newBatcher(w.DB)
	errs := make([]error, len(buyers))
	var wg sync.WaitGroup
	for i, buyer := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.Do(d.ID, pending{
				in:    store.NewOrder{DropID: d.ID, BuyerID: buyer, Quantity: 1, IdempotencyKey: "k", RequestHash: "h"},
				admit: func(store.OrderSale) error { panic("judging went wrong") },
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || domain.ErrorCode(err) != domain.Internal {
			t.Fatalf("order %d: %v, want an internal error", i, err)
		}
	}
	// The batcher goes on: the next order is placed.
	res, err := b.Do(d.ID, pending{
		in:    store.NewOrder{DropID: d.ID, BuyerID: buyers[0], Quantity: 1, IdempotencyKey: "k", RequestHash: "h"},
		admit: func(store.OrderSale) error { return nil },
	})
	if err != nil || res.Err != nil || res.Placed == nil {
		t.Fatalf("after the panic: %+v %v", res, err)
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 9 {
		t.Fatalf("stock %+v", s)
	}
}

// orderOf is a pending order of one unit that passes judging.
func orderOf(dropID, buyer int64, key, requestID string) pending {
	return pending{
		in: store.NewOrder{DropID: dropID, BuyerID: buyer, Quantity: 1, IdempotencyKey: key, RequestHash: "h",
			TTL: time.Minute, RequestID: requestID},
		admit: func(store.OrderSale) error { return nil },
	}
}

func TestBatchWithAnOrderPostgresRefusesPlacesTheOthers(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 10, 1)
	buyers := w.Buyers(t, 8)
	ps := make([]pending, len(buyers))
	for i, b := range buyers {
		ps[i] = orderOf(d.ID, b, "k", "req")
	}
	ps[5].in.RequestID = "bad\x00" // its audit row is refused: PostgreSQL text holds no NUL
	res := placeBatch(context.Background(), w.DB, d.ID, ps)
	for i, r := range res {
		switch {
		case i == 5 && (r.Err == nil || r.Placed != nil):
			t.Fatalf("the refused order: %+v", r)
		case i != 5 && (r.Err != nil || r.Placed == nil):
			t.Fatalf("order %d failed with the refused one: %v", i, r.Err)
		}
	}
	if s := w.CheckBalance(t, d.ID); s.Available != 3 || s.Reserved != 7 {
		t.Fatalf("stock %+v, want 7 reserved", s)
	}
}

func TestBatchRetriesALostConnection(t *testing.T) {
	w := orderstest.New(t)
	d := w.LiveDrop(t, 10, 1)
	buyers := w.Buyers(t, 5)
	ps := make([]pending, len(buyers))
	for i, b := range buyers {
		ps[i] = orderOf(d.ID, b, "k", "req")
	}
	// After the transaction's second statement its connection is cut, as a
	// PostgreSQL restart or a network cut would.
	var statements, cut atomic.Int32
	w.DB.OnQuery = func() {
		if statements.Add(1) != 2 || !cut.CompareAndSwap(0, 1) {
			return
		}
		ctx := context.Background()
		conn, err := w.DB.Conn(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("cut %d connections in a transaction (%v), want 1", n, err)
		}
	}
	before := testutil.ToFloat64(batchRetries)
	res := placeBatch(context.Background(), w.DB, d.ID, ps)
	w.DB.OnQuery = nil
	if cut.Load() != 1 {
		t.Fatal("the connection was never cut")
	}
	for i, r := range res {
		if r.Err != nil || r.Placed == nil {
			t.Fatalf("order %d after a lost connection: %v", i, r.Err)
		}
	}
	if n := testutil.ToFloat64(batchRetries) - before; n != 1 {
		t.Fatalf("%v retries, want 1", n)
	}
	if s := w.CheckBalance(t, d.ID); s.Reserved != 5 {
		t.Fatalf("stock %+v, want 5 reserved", s)
	}
}
