package loaders_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/loaders"
	"livedrops/store"
)

// roundTrips counts what a Redis client sends: each command or pipeline is
// one round trip.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// dropFixture makes a creator, a product and a drop of it.
func (e *env) dropFixture(t *testing.T) *domain.Drop {
	t.Helper()
	ctx := context.Background()
	pid := e.products(t, "page", 1)[0]
	ps, err := e.db.ProductsByIDs(ctx, []int64{pid})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.db.CreateDrop(ctx, store.NewDrop{ProductID: pid, CreatorID: ps[0].CreatorID, Title: "page drop",
		StartsAt: time.Now().Add(time.Hour), EndsAt: time.Now().Add(2 * time.Hour), Stock: 7, PerUserLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dropPage loads what `drop(id) { title status stock product creator }`
// loads: the drop and its stock, then its product and creator together.
func dropPage(t *testing.T, ctx context.Context, l *loaders.Loaders, dropID int64) (*domain.Drop, *domain.Stock, *domain.Product, *domain.Creator) {
	t.Helper()
	d, err := l.Drops.Load(ctx, dropID)()
	if err != nil || d == nil {
		t.Fatalf("drop %d = %+v, %v", dropID, d, err)
	}
	var (
		wg   sync.WaitGroup
		s    *domain.Stock
		p    *domain.Product
		c    *domain.Creator
		errs [3]error
	)
	wg.Go(func() { s, errs[0] = l.Stocks.Load(ctx, dropID)() })
	wg.Go(func() { p, errs[1] = l.Products.Load(ctx, d.ProductID)() })
	wg.Go(func() { c, errs[2] = l.Creators.Load(ctx, d.CreatorID)() })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s == nil || p == nil || c == nil {
		t.Fatalf("drop page: stock %+v, product %+v, creator %+v", s, p, c)
	}
	return d, s, p, c
}

// A drop page's product and creator are read from Redis in one round trip;
// with the near cache warm, the page touches neither Redis nor PostgreSQL.
func TestDropPageTiers(t *testing.T) {
	e := setup(t)
	d := e.dropFixture(t)
	hook := &roundTrips{}
	e.rdb.AddHook(hook)
	// Redis holds the product and creator, as another instance left them.
	prime := loaders.New(e.db, e.cache)
	dropPage(t, context.Background(), prime, d.ID)
	time.Sleep(10 * time.Millisecond)

	near, err := cache.NewNear(1<<20, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer near.Close()
	for round, want := range []struct{ redis, sql int64 }{{1, 1}, {0, 0}} {
		ctx := cache.WithWave(context.Background(), e.cache)
		l := loaders.New(e.db, e.cache, loaders.WithNear(near))
		trips, stmts := hook.n.Load(), e.db.Statements.Load()
		gotD, s, p, c := dropPage(t, ctx, l, d.ID)
		trips, stmts = hook.n.Load()-trips, e.db.Statements.Load()-stmts
		if gotD.Title != "page drop" || s.Available != 7 || p.ID != d.ProductID || c.ID != d.CreatorID {
			t.Fatalf("round %d: drop page %+v %+v %+v %+v", round, gotD, s, p, c)
		}
		if trips != want.redis || stmts != want.sql {
			t.Fatalf("round %d: the drop page took %d Redis round trips and %d statements, want %d and %d",
				round, trips, stmts, want.redis, want.sql)
		}
	}
}

// A cache whose Redis cannot be reached still answers, from PostgreSQL.
func TestReadsWithRedisUnreachable(t *testing.T) {
	e := setup(t)
	d := e.dropFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	rdb, err := cache.Connect("redis://" + closed)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	down := cache.New(rdb, "unreachable:", time.Minute)
	near, err := cache.NewNear(1<<20, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer near.Close()
	began := time.Now()
	ctx := cache.WithWave(context.Background(), down)
	_, s, p, c := dropPage(t, ctx, loaders.New(e.db, down, loaders.WithNear(near)), d.ID)
	if s.Total != 7 || p.ID != d.ProductID || c.ID != d.CreatorID {
		t.Fatalf("drop page without Redis: %+v %+v %+v", s, p, c)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("the drop page without Redis took %v", took)
	}
}

// A key the near cache holds is answered at once, not after the batch wait.
func TestNearHitDoesNotWaitForABatch(t *testing.T) {
	e := setup(t)
	d := e.dropFixture(t)
	near, err := cache.NewNear(1<<20, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer near.Close()
	const wait = 300 * time.Millisecond
	ctx := context.Background()
	dropPage(t, ctx, loaders.New(e.db, e.cache, loaders.WithNear(near), loaders.WithWait(wait)), d.ID)
	began := time.Now()
	dropPage(t, ctx, loaders.New(e.db, e.cache, loaders.WithNear(near), loaders.WithWait(wait)), d.ID)
	if took := time.Since(began); took >= wait {
		t.Fatalf("a warm drop page took %v with a batch wait of %v: the hits waited for batches", took, wait)
	}
}
