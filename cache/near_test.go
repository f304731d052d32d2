package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"livedrops/domain"
)

func newNear(t *testing.T, maxBytes int64) *Near {
	t.Helper()
	n, err := NewNear(maxBytes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

var (
	testDropShape = Shape[domain.DropState]{Kind: KindDrop,
		Version: func(s *domain.DropState) Version { return Version{Row: s.Drop.Version, Stock: s.Stock.Version} }}
	testCreatorShape = Shape[domain.Creator]{Kind: KindCreator,
		Version: func(c *domain.Creator) Version { return Version{Row: c.Version} }}
	testListShape = Shape[[]domain.Media]{Kind: KindProductMedia}
)

// from answers every load with the values of db (nil: nothing), counting calls.
func from[T any](calls *atomic.Int64, db map[int64]T) func(context.Context, []int64, map[int64]Version) (map[int64]T, error) {
	return func(_ context.Context, ids []int64, _ map[int64]Version) (map[int64]T, error) {
		calls.Add(1)
		out := map[int64]T{}
		for _, id := range ids {
			if v, ok := db[id]; ok {
				out[id] = v
			}
		}
		return out, nil
	}
}

func event(t *testing.T, typ string, payload any) domain.Event {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return domain.Event{ID: typ + string(raw), Type: typ, Payload: raw}
}

func loadOne[T any](t *testing.T, n *Near, s Shape[T], id int64, next func(context.Context, []int64, map[int64]Version) (map[int64]T, error)) T {
	t.Helper()
	got, err := Load(context.Background(), n, s, []int64{id}, next)
	if err != nil {
		t.Fatal(err)
	}
	return got[id]
}

// Many requests missing one key at once fill it once; later ones are hits.
func TestNearFillsAMissOnce(t *testing.T) {
	n := newNear(t, 1<<20)
	var calls atomic.Int64
	release := make(chan struct{})
	next := func(_ context.Context, ids []int64, _ map[int64]Version) (map[int64]domain.Creator, error) {
		calls.Add(1)
		<-release
		return map[int64]domain.Creator{7: {ID: 7, Handle: "ada"}}, nil
	}
	const askers = 64
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(askers)
	for range askers {
		wg.Go(func() {
			started.Done()
			got, err := Load(context.Background(), n, testCreatorShape, []int64{7}, next)
			if err != nil || got[7].Handle != "ada" {
				t.Errorf("Load = %+v, %v", got, err)
			}
		})
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // every asker is waiting on the one fill
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d concurrent misses of one key made %d fills, want 1", askers, c)
	}
	loadOne(t, n, testCreatorShape, 7, next)
	if c := calls.Load(); c != 1 {
		t.Fatalf("a warm key was filled again (%d fills)", c)
	}
}

// Loads missing different sets of keys that overlap fill each key once: the
// second waits for the first's fill of the key they share and fills only
// its own.
func TestNearOverlappingMissesFillEachKeyOnce(t *testing.T) {
	n := newNear(t, 1<<20)
	var mu sync.Mutex
	filled := map[int64]int{}
	release := make(chan struct{})
	next := func(_ context.Context, ids []int64, _ map[int64]Version) (map[int64]domain.Creator, error) {
		mu.Lock()
		for _, id := range ids {
			filled[id]++
		}
		first := filled[1] == 1 && slices.Contains(ids, 1)
		mu.Unlock()
		if first {
			<-release
		}
		out := map[int64]domain.Creator{}
		for _, id := range ids {
			out[id] = domain.Creator{ID: id, Handle: fmt.Sprint("c", id)}
		}
		return out, nil
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if got, err := Load(context.Background(), n, testCreatorShape, []int64{1, 2}, next); err != nil || len(got) != 2 {
			t.Errorf("Load(1, 2) = %+v, %v", got, err)
		}
	})
	for {
		mu.Lock()
		started := filled[1] == 1
		mu.Unlock()
		if started {
			break
		}
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() {
		got, err := Load(context.Background(), n, testCreatorShape, []int64{2, 3}, next)
		if err != nil || got[2].Handle != "c2" || got[3].Handle != "c3" {
			t.Errorf("Load(2, 3) = %+v, %v", got, err)
		}
	})
	time.Sleep(50 * time.Millisecond) // the second load waits on key 2
	close(release)
	wg.Wait()
	for id, times := range filled {
		if times != 1 {
			t.Fatalf("key %d was filled %d times, want once (fills: %v)", id, times, filled)
		}
	}
}

// A fill that panics fails its load and every load waiting on its keys,
// instead of leaving them waiting.
func TestNearPanickingFillReleasesWaiters(t *testing.T) {
	n := newNear(t, 1<<20)
	release := make(chan struct{})
	var calls atomic.Int64
	next := func(_ context.Context, ids []int64, _ map[int64]Version) (map[int64]domain.Creator, error) {
		if calls.Add(1) == 1 {
			<-release
			panic("boom")
		}
		return map[int64]domain.Creator{}, nil
	}
	errs := make(chan error, 2)
	go func() { _, err := Load(context.Background(), n, testCreatorShape, []int64{9}, next); errs <- err }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := Load(context.Background(), n, testCreatorShape, []int64{9}, next); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a load of a panicking fill answered no error")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a load waited on a fill that panicked")
		}
	}
}

// Events update held values in place by version: an older or replayed event
// changes nothing, whatever order events arrive in.
func TestNearEventsAreVersioned(t *testing.T) {
	ctx := context.Background()
	n := newNear(t, 1<<20)
	var calls atomic.Int64
	held := domain.DropState{
		Drop:  domain.Drop{ID: 1, Title: "Print", Status: domain.DropLive, Version: 2},
		Stock: domain.Stock{DropID: 1, Total: 10, Available: 10, Version: 5},
	}
	next := from(&calls, map[int64]domain.DropState{1: held})
	loadOne(t, n, testDropShape, 1, next)

	sold := func(available int, version, dropVersion int64, status domain.DropStatus) domain.Event {
		return event(t, domain.EventStockChanged, domain.StockPayload{DropID: 1, Total: 10, Available: available,
			Reserved: 10 - available, Version: version, Status: status, DropVersion: dropVersion})
	}
	newer := sold(0, 7, 3, domain.DropSoldOut)
	older := sold(4, 6, 2, domain.DropLive)
	for _, ev := range []domain.Event{newer, older, newer, sold(9, 4, 1, domain.DropLive)} {
		if err := n.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := loadOne(t, n, testDropShape, 1, next)
	if got.Stock.Available != 0 || got.Stock.Version != 7 || got.Drop.Status != domain.DropSoldOut || got.Drop.Version != 3 ||
		got.Drop.Title != "Print" {
		t.Fatalf("after a newer then older events: %+v", got)
	}
	// A lifecycle event moves the status by the row's version only.
	ended := event(t, domain.EventDropEnded, domain.DropPayload{DropID: 1, Status: domain.DropEnded, Version: 4})
	oldStart := event(t, domain.EventDropStarted, domain.DropPayload{DropID: 1, Status: domain.DropLive, Version: 1})
	for _, ev := range []domain.Event{ended, oldStart, sold(3, 8, 3, domain.DropLive)} {
		if err := n.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got = loadOne(t, n, testDropShape, 1, next)
	if got.Drop.Status != domain.DropEnded || got.Stock.Available != 3 || got.Stock.Version != 8 {
		t.Fatalf("after DropEnded, an old start and a newer stock event of an older row: %+v", got)
	}
	if calls.Load() != 1 {
		t.Fatalf("events made %d fills, want the first only", calls.Load())
	}

	// A follower count is replaced only by a newer one.
	loadOne(t, n, testCreatorShape, 9, from(&calls, map[int64]domain.Creator{9: {ID: 9, FollowerCount: 10, Version: 10}}))
	for _, ev := range []domain.Event{
		event(t, domain.EventCreatorUpdated, domain.CreatorPayload{CreatorID: 9, FollowerCount: 12, Version: 12}),
		event(t, domain.EventCreatorUpdated, domain.CreatorPayload{CreatorID: 9, FollowerCount: 11, Version: 11}),
	} {
		if err := n.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if c := loadOne(t, n, testCreatorShape, 9, nil); c.FollowerCount != 12 {
		t.Fatalf("follower count %d after events 12 then 11, want 12", c.FollowerCount)
	}
}

// An event about a key not held leaves a tombstone: an older state read
// from a lower tier is neither stored nor trusted over it.
func TestNearTombstoneRefusesOlderFills(t *testing.T) {
	ctx := context.Background()
	n := newNear(t, 1<<20)
	if err := n.Handle(ctx, event(t, domain.EventCreatorUpdated, domain.CreatorPayload{CreatorID: 3, FollowerCount: 5, Version: 5})); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var floors []map[int64]Version
	stale := func(_ context.Context, ids []int64, floor map[int64]Version) (map[int64]domain.Creator, error) {
		calls.Add(1)
		floors = append(floors, floor)
		return map[int64]domain.Creator{3: {ID: 3, FollowerCount: 4, Version: 4}}, nil
	}
	loadOne(t, n, testCreatorShape, 3, stale)
	loadOne(t, n, testCreatorShape, 3, stale)
	if calls.Load() != 2 {
		t.Fatalf("an older state was stored over a tombstone (%d fills, want 2)", calls.Load())
	}
	if floors[0][3] != (Version{Row: 5}) {
		t.Fatalf("the fill was told floor %+v, want version 5", floors[0])
	}
	got := loadOne(t, n, testCreatorShape, 3, from(&calls, map[int64]domain.Creator{3: {ID: 3, FollowerCount: 5, Version: 5}}))
	if got.FollowerCount != 5 || loadOne(t, n, testCreatorShape, 3, nil).FollowerCount != 5 {
		t.Fatalf("the current state was not stored: %+v", got)
	}
}

// A fill of an unversioned kind that an eviction overtook is not stored.
func TestNearFillOvertakenByAnEventIsNotStored(t *testing.T) {
	ctx := context.Background()
	n := newNear(t, 1<<20)
	var calls atomic.Int64
	next := func(_ context.Context, ids []int64, _ map[int64]Version) (map[int64][]domain.Media, error) {
		if calls.Add(1) == 1 {
			// The change commits and its event arrives while the old list is read.
			if err := n.Handle(ctx, event(t, domain.EventProductUpdated, domain.ProductPayload{ProductID: 4, Version: 2})); err != nil {
				t.Error(err)
			}
		}
		return map[int64][]domain.Media{4: {{ID: int64(calls.Load())}}}, nil
	}
	loadOne(t, n, testListShape, 4, next)
	if got := loadOne(t, n, testListShape, 4, next); calls.Load() != 2 || got[0].ID != 2 {
		t.Fatalf("after a fill overtaken by an event: %d fills, list %+v; want a second fill", calls.Load(), got)
	}
	if loadOne(t, n, testListShape, 4, next); calls.Load() != 2 {
		t.Fatalf("the second fill was not stored (%d fills)", calls.Load())
	}
}

// A million distinct keys never take the cache past its byte bound, as it
// counts them and as the heap measures them.
func TestNearStaysWithinItsBytes(t *testing.T) {
	const bound = 16 << 20
	const keys = 1_000_000
	n := newNear(t, bound)
	s := Shape[domain.Product]{Kind: KindProduct,
		Version: func(p *domain.Product) Version { return Version{Row: p.Version} },
		Size:    func(p *domain.Product) int { return len(p.Title) + len(p.Description) + len(p.Currency) }}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const batch = 1000
	ids := make([]int64, batch)
	for start := int64(1); start <= keys; start += batch {
		for i := range ids {
			ids[i] = start + int64(i)
		}
		_, err := Load(context.Background(), n, s, ids, func(_ context.Context, missing []int64, _ map[int64]Version) (map[int64]domain.Product, error) {
			out := make(map[int64]domain.Product, len(missing))
			for _, id := range missing {
				out[id] = domain.Product{ID: id, Title: "Product " + strconv.FormatInt(id, 10), Currency: "USD", Version: 1}
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n.c.CleanUp()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys into a %d-byte near cache: %d entries held, weighed %d bytes, heap grew %d bytes",
		keys, bound, n.c.EstimatedSize(), n.WeightedSize(), heap)
	if n.WeightedSize() > bound {
		t.Fatalf("the cache weighs %d bytes, over its bound of %d", n.WeightedSize(), bound)
	}
	if heap > bound*5/4 {
		t.Fatalf("the heap grew %d bytes for a cache bounded at %d", heap, bound)
	}
}
