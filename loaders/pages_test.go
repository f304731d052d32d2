package loaders_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"livedrops/domain"
	"livedrops/loaders"
	"livedrops/store"
)

// TestPageLoadersOneStatementPerDistinctPage loads the products of 5 and of
// 40 creators at once, as GraphQL does for a list's items: each costs one
// statement, two distinct page arguments cost two, and every page is the one
// the creator's own read gives.
func TestPageLoadersOneStatementPerDistinctPage(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var creators []int64
	for i := range 40 {
		_, c := e.creator(t, fmt.Sprint("maker", i))
		creators = append(creators, c.ID)
		for k := range i % 6 {
			p := &domain.Product{CreatorID: c.ID, Title: fmt.Sprintf("p%d.%d", i, k), PriceCents: 100, Currency: "USD"}
			if err := e.db.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	first3 := store.PageArgs{Limit: 3}
	last2 := store.PageArgs{Limit: 2, Back: true}

	// load asks every creator's page at once, each in its own goroutine, and
	// returns the statements sent and the pages.
	load := func(ids []int64, args func(i int) store.PageArgs) (int64, []store.Page[domain.Product]) {
		t.Helper()
		l := loaders.New(e.db, e.cache, loaders.WithWait(proofWait))
		before := e.db.Statements.Load()
		pages := make([]store.Page[domain.Product], len(ids))
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { pages[i], errs[i] = l.CreatorProducts.Load(ctx, id, args(i), loaders.All{}) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return e.db.Statements.Load() - before, pages
	}
	same := func(int) store.PageArgs { return first3 }
	if n, _ := load(creators[:5], same); n != 1 {
		t.Fatalf("5 creators' products took %d statements, want 1", n)
	}
	n, pages := load(creators, same)
	if n != 1 {
		t.Fatalf("40 creators' products took %d statements, want 1", n)
	}
	mixed := func(i int) store.PageArgs {
		if i%2 == 0 {
			return first3
		}
		return last2
	}
	n, mixedPages := load(creators, mixed)
	if n != 2 {
		t.Fatalf("40 creators' products with two page arguments took %d statements, want 2", n)
	}
	for i, id := range creators {
		for _, got := range []struct {
			page store.Page[domain.Product]
			args store.PageArgs
		}{{pages[i], first3}, {mixedPages[i], mixed(i)}} {
			want, err := e.db.ProductsByCreator(ctx, id, got.args)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := fmt.Sprint(got.page.Cursors, got.page.HasNext, got.page.HasPrev), fmt.Sprint(want.Cursors, want.HasNext, want.HasPrev); g != w {
				t.Fatalf("creator %d, %+v: loaded %s, alone %s", i, got.args, g, w)
			}
		}
	}
}

// TestOrdersLoaderReadsSellers loads orders by id with the seller who may see
// them; unknown ids load as nil.
func TestOrdersLoaderReadsSellers(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	seller, c := e.creator(t, "seller")
	buyer, _ := e.creator(t, "buyer")
	var orderID int64
	err := e.db.GetContext(ctx, &orderID, `WITH p AS (
			INSERT INTO products (creator_id, title, price_cents, currency) VALUES ($1, 'Item', 100, 'EUR') RETURNING id),
		d AS (INSERT INTO drops (product_id, creator_id, title, starts_at, ends_at, per_user_limit)
			SELECT p.id, $1, 'Drop', now(), now() + interval '1 hour', 1 FROM p RETURNING id)
		INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency, idempotency_key, request_hash, expires_at)
		SELECT d.id, $2, 1, 100, 'EUR', 'k', 'h', now() FROM d RETURNING id`, c.ID, buyer.ID)
	if err != nil {
		t.Fatal(err)
	}
	l := loaders.New(e.db, e.cache)
	o, err := l.Orders.Load(ctx, orderID)()
	if err != nil || o == nil || o.BuyerID != buyer.ID || o.SellerUserID != seller.ID {
		t.Fatalf("order = %+v, %v; want buyer %d, seller %d", o, err, buyer.ID, seller.ID)
	}
	if o, err := l.Orders.Load(ctx, orderID+1000)(); o != nil || err != nil {
		t.Fatalf("unknown order = %+v, %v", o, err)
	}
}
