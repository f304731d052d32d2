package orders_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/payments"
	"livedrops/store"
)

func mustPage(t testing.TB) store.PageArgs {
	t.Helper()
	p, err := store.NewPageArgs(nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *selling) payments(t testing.TB, orderID int64) []domain.Payment {
	t.Helper()
	var ps []domain.Payment
	if err := s.DB.SelectContext(context.Background(), &ps, `SELECT id, order_id, provider, provider_ref, status,
		amount_cents, created_at, updated_at FROM payments WHERE order_id = $1`, orderID); err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestPayConfirms(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 5, 2)
	buyer, stranger := s.User(t, "buyer"), s.User(t, "stranger")
	o := s.place(t, buyer.ID, d.ID, 2, "k")

	_, err := s.svc.PayOrder(ctx, stranger.ID, o.ID, payments.MethodSucceeds)
	wantCode(t, err, domain.Forbidden)
	_, err = s.svc.PayOrder(ctx, buyer.ID, o.ID, "pm_card_bitcoin")
	wantCode(t, err, domain.BadUserInput)
	_, err = s.svc.PayOrder(ctx, buyer.ID, 999999, payments.MethodSucceeds)
	wantCode(t, err, domain.NotFound)

	paid, err := s.svc.PayOrder(ctx, buyer.ID, o.ID, payments.MethodSucceeds)
	if err != nil || paid.Status != domain.OrderConfirmed {
		t.Fatalf("pay: %+v %v", paid, err)
	}
	if st := s.CheckBalance(t, d.ID); st.Sold != 2 || st.Reserved != 0 || st.Available != 3 {
		t.Fatalf("stock %+v", st)
	}
	again, err := s.svc.PayOrder(ctx, buyer.ID, o.ID, payments.MethodSucceeds)
	if err != nil || again.ID != o.ID || again.Status != domain.OrderConfirmed {
		t.Fatalf("paying again: %+v %v", again, err)
	}
	ps := s.payments(t, o.ID)
	if len(ps) != 1 || ps[0].Status != domain.PaymentStatusSucceeded || ps[0].AmountCents != 2500 ||
		ps[0].ProviderRef != payments.SimulatedRef(o.ID) {
		t.Fatalf("payments %+v", ps)
	}
	latest, err := s.svc.PaymentsByOrderIDs(ctx, []int64{o.ID, 12345})
	if err != nil || len(latest) != 1 || latest[0].ID != ps[0].ID {
		t.Fatalf("latest payments %+v %v", latest, err)
	}
	if n := s.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderConfirmed); n != 1 {
		t.Fatalf("%d OrderConfirmed events", n)
	}
	_, err = s.svc.CancelOrder(ctx, buyer.ID, o.ID)
	wantCode(t, err, domain.Conflict)
}

func TestConcurrentPaysChargeOnce(t *testing.T) {
	s := newSelling(t)
	d := s.liveDrop(t, 5, 1)
	buyer := s.User(t, "buyer")
	o := s.place(t, buyer.ID, d.ID, 1, "k")
	orderstest.Concurrently(6, func(int) {
		got, err := s.svc.PayOrder(context.Background(), buyer.ID, o.ID, payments.MethodSucceeds)
		if err != nil || got.Status != domain.OrderConfirmed {
			t.Errorf("pay: %+v %v", got, err)
		}
	})
	if ps := s.payments(t, o.ID); len(ps) != 1 {
		t.Fatalf("%d payment rows", len(ps))
	}
	if st := s.CheckBalance(t, d.ID); st.Sold != 1 {
		t.Fatalf("stock %+v", st)
	}
	if n := s.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderConfirmed); n != 1 {
		t.Fatalf("%d OrderConfirmed events", n)
	}
}

func TestDeclineReturnsStockOnce(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 1, 1)
	buyer := s.User(t, "buyer")
	o := s.place(t, buyer.ID, d.ID, 1, "k")
	if got := s.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("drop is %s", got)
	}
	var mu sync.Mutex
	codes := map[string]int{}
	orderstest.Concurrently(4, func(int) {
		_, err := s.svc.PayOrder(ctx, buyer.ID, o.ID, payments.MethodDeclines)
		mu.Lock()
		codes[domain.ErrorCode(err)]++
		mu.Unlock()
	})
	// One charge is declined; twins that came later find the order cancelled.
	if codes[domain.PaymentDeclined] < 1 || codes[domain.PaymentDeclined]+codes[domain.Conflict] != 4 {
		t.Fatalf("answers %v", codes)
	}
	st := s.CheckBalance(t, d.ID)
	if st.Available != 1 || st.Reserved != 0 {
		t.Fatalf("stock %+v", st)
	}
	if n := s.counter(t, d.ID); n != 1 {
		t.Fatalf("gate counter %d, want 1", n)
	}
	if got := s.DropNow(t, d.ID); got.Status != domain.DropLive {
		t.Fatalf("returned stock left the drop %s", got.Status)
	}
	key := orderstest.DropKey(d.ID)
	if n := s.CountEvents(t, key, domain.EventOrderCancelled); n != 1 {
		t.Fatalf("%d OrderCancelled events", n)
	}
	ps := s.payments(t, o.ID)
	if len(ps) != 1 || ps[0].Status != domain.PaymentStatusDeclined {
		t.Fatalf("payments %+v", ps)
	}
	// Back on sale: someone else can buy it.
	other := s.User(t, "other")
	s.place(t, other.ID, d.ID, 1, "k")
}

func TestCancelReturnsStockOnce(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 2, 2)
	buyer, stranger := s.User(t, "buyer"), s.User(t, "stranger")
	o := s.place(t, buyer.ID, d.ID, 2, "k")

	_, err := s.svc.CancelOrder(ctx, stranger.ID, o.ID)
	wantCode(t, err, domain.Forbidden)
	orderstest.Concurrently(6, func(int) {
		got, err := s.svc.CancelOrder(ctx, buyer.ID, o.ID)
		if err != nil || got.Status != domain.OrderCancelled {
			t.Errorf("cancel: %+v %v", got, err)
		}
	})
	st := s.CheckBalance(t, d.ID)
	if st.Available != 2 || st.Reserved != 0 || s.counter(t, d.ID) != 2 {
		t.Fatalf("stock %+v, counter %d", st, s.counter(t, d.ID))
	}
	if n := s.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderCancelled); n != 1 {
		t.Fatalf("%d OrderCancelled events", n)
	}
	if got := s.DropNow(t, d.ID).Status; got != domain.DropLive {
		t.Fatalf("drop is %s", got)
	}
	_, err = s.svc.PayOrder(ctx, buyer.ID, o.ID, payments.MethodSucceeds)
	wantCode(t, err, domain.Conflict)
}

func TestSweeperExpiresOnce(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 30, 1)
	d2 := s.liveDrop(t, 30, 1)
	buyers := s.Buyers(t, 30)
	for i, b := range buyers {
		drop := d.ID
		if i%3 == 0 {
			drop = d2.ID
		}
		s.place(t, b, drop, 1, "k")
	}
	paid, err := s.svc.PayOrder(ctx, buyers[1], 2, payments.MethodSucceeds)
	if err != nil {
		t.Fatal(err)
	}

	sweeper := orders.NewSweeper(s.DB, s.svc, nil)
	if n, err := sweeper.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep expired %d: %v", n, err)
	}
	s.Clock.Advance(s.Config.ReservationTTL)

	// A pay at the last moment is refused: the reservation is over.
	_, err = s.svc.PayOrder(ctx, buyers[2], 3, payments.MethodSucceeds)
	wantCode(t, err, domain.Conflict)

	var mu sync.Mutex
	total := 0
	orderstest.Concurrently(3, func(int) {
		sw := orders.NewSweeper(s.DB, s.svc, nil)
		sw.Batch = 4
		n, err := sw.Sweep(ctx)
		if err != nil {
			t.Errorf("sweep: %v", err)
		}
		mu.Lock()
		total += n
		mu.Unlock()
	})
	if total != 29 {
		t.Fatalf("sweepers expired %d orders, want 29", total)
	}
	for _, id := range []int64{d.ID, d2.ID} {
		st := s.CheckBalance(t, id)
		if st.Reserved != 0 || s.counter(t, id) != st.Available {
			t.Fatalf("drop %d: stock %+v, counter %d", id, st, s.counter(t, id))
		}
	}
	expired := s.CountEvents(t, orderstest.DropKey(d.ID), domain.EventOrderExpired) +
		s.CountEvents(t, orderstest.DropKey(d2.ID), domain.EventOrderExpired)
	if expired != 29 {
		t.Fatalf("%d OrderExpired events", expired)
	}
	if got, err := s.svc.OrderFor(ctx, buyers[1], paid.ID); err != nil || got.Status != domain.OrderConfirmed {
		t.Fatalf("paid order after sweep: %+v %v", got, err)
	}
	if n, err := sweeper.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep expired %d: %v", n, err)
	}
}

func TestExpiryFlipsSoldOutBackToLive(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 1, 1)
	a, b := s.User(t, "a"), s.User(t, "b")
	s.place(t, a.ID, d.ID, 1, "k")
	_, err := s.svc.PlaceOrder(ctx, b.ID, d.ID, 1, "k")
	wantCode(t, err, domain.SoldOut)
	s.Clock.Advance(s.Config.ReservationTTL + time.Second)
	if n, err := orders.NewSweeper(s.DB, s.svc, nil).Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep %d %v", n, err)
	}
	if got := s.DropNow(t, d.ID).Status; got != domain.DropLive {
		t.Fatalf("drop is %s after its stock came back", got)
	}
	if o, err := s.svc.PlaceOrder(ctx, b.ID, d.ID, 1, "k2"); err != nil || o.Status != domain.OrderPendingPayment {
		t.Fatalf("order after expiry: %+v %v", o, err)
	}
}

func TestPayRefusedOnceTheDropIsCancelled(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 5, 1)
	buyer := s.User(t, "buyer")
	o := s.place(t, buyer.ID, d.ID, 1, "k")
	if _, err := s.DB.TransitionDrop(ctx, store.DropTransition{DropID: d.ID, From: []domain.DropStatus{domain.DropLive},
		To: domain.DropCancelled, Event: domain.EventDropCancelled, Action: "drop.cancel", Refusal: "no"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.svc.PayOrder(ctx, buyer.ID, o.ID, payments.MethodSucceeds)
	wantCode(t, err, domain.Conflict)
	if ps := s.payments(t, o.ID); len(ps) != 0 {
		t.Fatalf("charged a cancelled drop's order: %+v", ps)
	}
	// Its reservation still expires and gives the stock back.
	s.Clock.Advance(s.Config.ReservationTTL)
	if n, err := orders.NewSweeper(s.DB, s.svc, nil).Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep %d %v", n, err)
	}
	s.CheckBalance(t, d.ID)
}
