package orders

import (
	"sync"
	"testing"

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
