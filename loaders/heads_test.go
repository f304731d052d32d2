package loaders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/loaders"
	"livedrops/store"
)

// TestListHeadsFromTheNearCache reads 12 creators' first products twice: the
// second time, from fresh loaders, sends no statement and gives the same
// pages for every first page up to HeadSize, while later pages still go to
// PostgreSQL. A ProductUpdated of one creator evicts that creator's head
// only, so its next read sees the new product.
func TestListHeadsFromTheNearCache(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	near, err := cache.NewNear(1<<22, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(near.Close)
	var creators []int64
	for i := range 12 {
		_, c := e.creator(t, fmt.Sprint("headmaker", i))
		creators = append(creators, c.ID)
		for k := range i % 7 {
			p := &domain.Product{CreatorID: c.ID, Title: fmt.Sprintf("h%d.%d", i, k), PriceCents: 100, Currency: "USD"}
			if err := e.db.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	load := func(ids []int64, p store.PageArgs) (int64, []store.Page[domain.Product]) {
		t.Helper()
		l := loaders.New(e.db, e.cache, loaders.WithNear(near), loaders.WithWait(proofWait))
		before := e.db.Statements.Load()
		pages := make([]store.Page[domain.Product], len(ids))
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { pages[i], errs[i] = l.CreatorProducts.Load(ctx, id, p, loaders.All{}) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return e.db.Statements.Load() - before, pages
	}
	if n, _ := load(creators, store.PageArgs{Limit: 3}); n != 1 {
		t.Fatalf("a cold read of 12 heads took %d statements, want 1", n)
	}
	for _, limit := range []int{0, 1, 3, 6, 20, loaders.HeadSize} {
		p := store.PageArgs{Limit: limit}
		n, pages := load(creators, p)
		if n != 0 {
			t.Fatalf("first %d: a warm read took %d statements, want 0", limit, n)
		}
		for i, id := range creators {
			want, err := e.db.ProductsByCreator(ctx, id, p)
			if err != nil {
				t.Fatal(err)
			}
			if !samePage(pages[i], want) {
				t.Fatalf("first %d of creator %d: %+v, want %+v", limit, i, pages[i], want)
			}
		}
	}
	if n, _ := load(creators, store.PageArgs{Limit: loaders.HeadSize + 1}); n != 1 {
		t.Fatalf("a first page longer than a head took %d statements, want 1", n)
	}
	second, err := e.db.ProductsByCreator(ctx, creators[6], store.PageArgs{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := store.DecodeCursor("after", second.Cursors[1])
	if n, _ := load(creators[6:7], store.PageArgs{Limit: 2, After: &after}); n != 1 {
		t.Fatalf("a page after a cursor took %d statements, want 1", n)
	}

	// A new product of creator 6: its event evicts that head only.
	p := &domain.Product{CreatorID: creators[6], Title: "fresh", PriceCents: 100, Currency: "USD"}
	if err := e.db.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(domain.ProductPayload{ProductID: p.ID, CreatorID: p.CreatorID, Version: p.Version})
	if err := near.Handle(ctx, domain.Event{ID: "e1", Type: domain.EventProductUpdated, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	n, pages := load(creators, store.PageArgs{Limit: 3})
	if n != 1 {
		t.Fatalf("after the event, 12 heads took %d statements, want 1 (creator 6's)", n)
	}
	if got := pages[6].Items[0].Title; got != "fresh" {
		t.Fatalf("creator 6's first product is %q after the event, want the new one", got)
	}
}

func samePage[T any](a, b store.Page[T]) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && slices.Equal(a.Cursors, b.Cursors)
}
