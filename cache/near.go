package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
)

// KindDrop is a drop with its stock (*domain.DropState) by drop id. It lives
// only in the near cache: its stock changes with every sale, and events keep
// each instance's copy exact.
const KindDrop = "drop"

// Kinds of lists' first pages ("heads"), held only in the near cache: the
// events of their items evict them. A creator's drops are kept per status
// filter (KindCreatorDrops + ":" + status, "" for all); the live drops under
// id 0.
const (
	KindCreatorProducts  = "creator_products"
	KindCreatorDrops     = "creator_drops"
	KindCreatorFollowers = "creator_followers"
	KindLiveDrops        = "live_drops"
)

// dropFilters are the status filters a creator's drops may be listed by.
var dropFilters = []domain.DropStatus{"", domain.DropScheduled, domain.DropLive, domain.DropSoldOut, domain.DropEnded, domain.DropCancelled}

// NearTTL is how long a near-cache value lives at most: a safety net only,
// since events update or evict every value that changes.
const NearTTL = time.Minute

var (
	nearHits = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_near_cache_hits_total",
		Help: "By-id reads answered from this instance's memory, by kind.",
	}, []string{"kind"})
	nearMisses = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_near_cache_misses_total",
		Help: "By-id reads this instance's memory did not have, by kind.",
	}, []string{"kind"})
	nearFills = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_near_cache_fills_total",
		Help: "Reads of missing values from Redis or the database (concurrent misses of the same keys share one), by kind.",
	}, []string{"kind"})
)

// Version orders the states of one cached value: its row's version and, for
// a drop, its stock's. A state is older than another when either is lower.
type Version struct{ Row, Stock int64 }

func (v Version) Before(o Version) bool { return v.Row < o.Row || v.Stock < o.Stock }

func (v Version) max(o Version) Version {
	return Version{Row: max(v.Row, o.Row), Stock: max(v.Stock, o.Stock)}
}

// Shape says how the near cache versions and weighs values of one kind.
type Shape[T any] struct {
	Kind string
	// Version is nil for a kind whose events carry no version: a fill that
	// an event of its key overtook is then not stored.
	Version func(*T) Version
	// Size is the bytes a value holds beyond its struct (its strings, its slices).
	Size func(*T) int
}

type nearKey struct {
	kind string
	id   int64
}

// nearEntry is a value, or, when value is nil, a tombstone: what an event
// said of a key not held, so an older state read elsewhere is not stored.
type nearEntry struct {
	value   any
	version Version
	weight  uint32
}

// entryOverhead is what an entry costs beyond its value: the key, the entry,
// the value's box and otter's node and table slot (measured: see the tests).
const entryOverhead = 160

// stripes of the event stamps of unversioned kinds; a collision only makes a
// fill skip its store.
const stripes = 4096

// Near is this instance's cache of decoded values, bounded in bytes, in
// front of Redis and PostgreSQL. Events (Handle) update or evict what
// changed, by version, so a late or replayed event never brings an older
// state back, and a fill that raced an event never stores over it.
type Near struct {
	c    *otter.Cache[nearKey, nearEntry]
	seed maphash.Seed
	// mu guards flights, the keys being filled now.
	mu      sync.Mutex
	flights map[nearKey]*flight
	clock   atomic.Uint64
	// stamps holds, per stripe of keys, the clock at the last event of an
	// unversioned kind.
	stamps [stripes]atomic.Uint64
}

// NewNear returns a near cache holding at most maxBytes of values, each for
// at most ttl.
func NewNear(maxBytes int64, ttl time.Duration) (*Near, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("cache: near cache needs a positive size, got %d bytes", maxBytes)
	}
	c, err := otter.New(&otter.Options[nearKey, nearEntry]{
		MaximumWeight:    uint64(maxBytes),
		Weigher:          func(_ nearKey, e nearEntry) uint32 { return e.weight },
		ExpiryCalculator: otter.ExpiryCreating[nearKey, nearEntry](ttl),
	})
	if err != nil {
		return nil, fmt.Errorf("cache: near cache: %w", err)
	}
	return &Near{c: c, seed: maphash.MakeSeed(), flights: map[nearKey]*flight{}}, nil
}

// WeightedSize is the bytes the near cache counts as held.
func (n *Near) WeightedSize() uint64 { return n.c.WeightedSize() }

// Close stops the cache's goroutines.
func (n *Near) Close() { n.c.StopAllGoroutines() }

// Load returns the values of ids of one kind: hits from memory; the misses
// from next, to which it says, for a key an event was about, the oldest
// state worth taking (a lower tier may still hold an older one; for an
// unversioned kind, any it holds may be).
// A missing key is filled by one call of next at a time, however many loads
// ask for it: a load fills the keys no other is filling and waits for the
// rest. With a nil n every id goes to next.
func Load[T any](ctx context.Context, n *Near, s Shape[T], ids []int64,
	next func(ctx context.Context, missing []int64, floor map[int64]Version) (map[int64]T, error)) (map[int64]T, error) {
	ids = unique(ids)
	if n == nil {
		return next(ctx, ids, nil)
	}
	out := make(map[int64]T, len(ids))
	var missing []int64
	var floor map[int64]Version
	for _, id := range ids {
		e, ok := n.c.GetIfPresent(nearKey{s.Kind, id})
		switch {
		case ok && e.value != nil:
			out[id] = e.value.(T)
		case ok:
			if floor == nil {
				floor = map[int64]Version{}
			}
			floor[id] = e.version
			missing = append(missing, id)
		default:
			missing = append(missing, id)
		}
	}
	nearHits.WithLabelValues(s.Kind).Add(float64(len(ids) - len(missing)))
	if len(missing) == 0 {
		return out, nil
	}
	nearMisses.WithLabelValues(s.Kind).Add(float64(len(missing)))
	// Each missing key is filled by one load at a time: this one fills the
	// keys no other load is filling, and waits for the others'.
	mine, theirs := n.claim(s.Kind, missing)
	if len(mine) > 0 {
		stamp := n.clock.Load()
		nearFills.WithLabelValues(s.Kind).Inc()
		// The fill outlives a caller that gives up: the others waiting on it
		// still want its answer.
		var filled map[int64]T
		var err error
		func() {
			// A fill that panics still lands its keys, so no waiter hangs.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("cache: filling %d %s: panic: %v", len(mine), s.Kind, p)
				}
			}()
			filled, err = next(context.WithoutCancel(ctx), mine, floor)
		}()
		for _, id := range mine {
			val, ok := filled[id]
			if ok && err == nil {
				store(n, s, id, val, stamp)
				out[id] = val
			}
			n.land(nearKey{s.Kind, id}, val, ok, err)
		}
		if err != nil {
			return nil, err
		}
	}
	for id, f := range theirs {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		if f.ok {
			out[id] = f.val.(T)
		}
	}
	return out, nil
}

// flight is one key's fill under way; done closes when val, ok and err are set.
type flight struct {
	done chan struct{}
	val  any
	ok   bool // the fill found the key
	err  error
}

// claim splits ids into those this caller fills (now registered as in
// flight) and those another load is filling.
func (n *Near) claim(kind string, ids []int64) (mine []int64, theirs map[int64]*flight) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		k := nearKey{kind, id}
		if f, ok := n.flights[k]; ok {
			if theirs == nil {
				theirs = map[int64]*flight{}
			}
			theirs[id] = f
			continue
		}
		n.flights[k] = &flight{done: make(chan struct{})}
		mine = append(mine, id)
	}
	return mine, theirs
}

// land ends k's flight with what its fill found.
func (n *Near) land(k nearKey, val any, ok bool, err error) {
	n.mu.Lock()
	f := n.flights[k]
	delete(n.flights, k)
	n.mu.Unlock()
	f.val, f.ok, f.err = val, ok, err
	close(f.done)
}

// store keeps val unless an event made it stale meanwhile: a newer version
// held (a value or a tombstone), or, for an unversioned kind, an event of
// its stripe after stamp. The check and the write are one atomic step of
// the key, as are an event's (Handle).
func store[T any](n *Near, s Shape[T], id int64, val T, stamp uint64) {
	k := nearKey{s.Kind, id}
	var v Version
	if s.Version != nil {
		v = s.Version(&val)
	}
	w := entryOverhead + int(unsafe.Sizeof(val))
	if s.Size != nil {
		w += s.Size(&val)
	}
	e := nearEntry{value: val, version: v, weight: uint32(min(w, 1<<31))}
	n.c.Compute(k, func(old nearEntry, found bool) (nearEntry, otter.ComputeOp) {
		if s.Version == nil {
			if n.stripe(k).Load() > stamp {
				return old, otter.CancelOp
			}
		} else if found && v.Before(old.version) {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
}

func (n *Near) stripe(k nearKey) *atomic.Uint64 {
	return &n.stamps[maphash.Comparable(n.seed, k)%stripes]
}

// Handle updates or evicts what ev changed, on this instance: every
// instance's tail consumer hands it every event. A stock event sets the
// drop's stock and status in place, a lifecycle event its status and window,
// a CreatorUpdated the follower count, each only where it is newer than
// what is held; a ProductUpdated leaves a tombstone of its version. Each
// also evicts the heads of the lists its item sits in. An event
// whose payload cannot be read is skipped (no retry could help).
func (n *Near) Handle(ctx context.Context, ev domain.Event) error {
	switch ev.Type {
	case domain.EventStockChanged, domain.EventStockLow, domain.EventSoldOut:
		var p domain.StockPayload
		if !decodeEvent(ctx, ev, &p) || p.DropID == 0 {
			return nil
		}
		n.evictDropLists(p.CreatorID)
		n.apply(nearKey{KindDrop, p.DropID}, Version{Row: p.DropVersion, Stock: p.Version}, func(held any, v Version) any {
			st := held.(domain.DropState)
			if p.Version > v.Stock {
				st.Stock = domain.Stock{DropID: p.DropID, Total: p.Total, Available: p.Available,
					Reserved: p.Reserved, Sold: p.Sold, Version: p.Version}
			}
			if p.DropVersion > v.Row {
				st.Drop.Status, st.Drop.Version, st.Drop.UpdatedAt = p.Status, p.DropVersion, ev.OccurredAt
			}
			return st
		})
	case domain.EventDropScheduled, domain.EventDropStarted, domain.EventDropEnded, domain.EventDropCancelled:
		var p domain.DropPayload
		if !decodeEvent(ctx, ev, &p) || p.DropID == 0 {
			return nil
		}
		n.evictDropLists(p.CreatorID)
		n.apply(nearKey{KindDrop, p.DropID}, Version{Row: p.Version}, func(held any, v Version) any {
			st := held.(domain.DropState)
			if p.Version > v.Row {
				st.Drop.Status, st.Drop.StartsAt, st.Drop.EndsAt = p.Status, p.StartsAt, p.EndsAt
				st.Drop.Version, st.Drop.UpdatedAt = p.Version, ev.OccurredAt
			}
			return st
		})
	case domain.EventCreatorUpdated:
		var p domain.CreatorPayload
		if !decodeEvent(ctx, ev, &p) || p.CreatorID == 0 {
			return nil
		}
		n.evict(nearKey{KindCreatorFollowers, p.CreatorID})
		n.apply(nearKey{KindCreator, p.CreatorID}, Version{Row: p.Version}, func(held any, _ Version) any {
			c := held.(domain.Creator)
			c.FollowerCount, c.Version = p.FollowerCount, p.Version
			return c
		})
	case domain.EventProductUpdated:
		var p domain.ProductPayload
		if !decodeEvent(ctx, ev, &p) || p.ProductID == 0 {
			return nil
		}
		// The event does not carry the product's fields: a tombstone makes
		// the next read take a state at least this new.
		n.apply(nearKey{KindProduct, p.ProductID}, Version{Row: p.Version}, nil)
		n.evict(nearKey{KindProductMedia, p.ProductID})
		n.evict(nearKey{KindCreatorProducts, p.CreatorID})
	}
	return nil
}

// evictDropLists evicts the heads of the lists a drop of creatorID sits in:
// its status (or stock, which moves it between LIVE and SOLD_OUT) changed.
func (n *Near) evictDropLists(creatorID int64) {
	for _, f := range dropFilters {
		n.evict(nearKey{KindCreatorDrops + ":" + string(f), creatorID})
	}
	n.evict(nearKey{KindLiveDrops, 0})
}

// apply changes the held value of k with change (nil: replaces it by a
// tombstone) when v is newer than what is held in any part; change gets the
// held value and version and applies only the newer parts. A key not held
// gets a tombstone at v. An event without a version evicts.
func (n *Near) apply(k nearKey, v Version, change func(held any, v Version) any) {
	if v == (Version{}) {
		n.evict(k)
		return
	}
	n.c.Compute(k, func(old nearEntry, found bool) (nearEntry, otter.ComputeOp) {
		if found && !old.version.Before(v) {
			return old, otter.CancelOp
		}
		e := nearEntry{version: v.max(old.version), weight: entryOverhead}
		if found && old.value != nil && change != nil {
			e.value, e.weight = change(old.value, old.version), old.weight
		}
		return e, otter.WriteOp
	})
}

// evict replaces k's value by a tombstone, which keeps its version and
// tells the next read of an unversioned kind not to trust Redis (which may
// still hold the old value), and marks its stripe, so a fill of k in
// flight, which may have read the state before the change, is not stored.
func (n *Near) evict(k nearKey) {
	n.c.Compute(k, func(old nearEntry, _ bool) (nearEntry, otter.ComputeOp) {
		n.stripe(k).Store(n.clock.Add(1))
		return nearEntry{version: old.version, weight: entryOverhead}, otter.WriteOp
	})
}

// Evict removes the values of ids of one kind, so the next read goes to
// Redis or the database.
func (n *Near) Evict(kind string, ids ...int64) {
	for _, id := range ids {
		n.evict(nearKey{kind, id})
	}
}

// Clear empties the cache, as if nothing had been read yet.
func (n *Near) Clear() {
	stamp := n.clock.Add(1)
	for i := range n.stamps {
		n.stamps[i].Store(stamp)
	}
	n.c.InvalidateAll()
}

// decodeEvent reads ev's payload into p, logging and counting a payload it
// cannot read.
func decodeEvent(ctx context.Context, ev domain.Event, p any) bool {
	if err := json.Unmarshal(ev.Payload, p); err != nil {
		failures.WithLabelValues(ev.Type, "event").Inc()
		slog.ErrorContext(ctx, "near cache: skipping an event whose payload cannot be read", "component", "cache",
			"type", ev.Type, "id", ev.ID, "err", err)
		return false
	}
	return true
}

// Peek returns the value of id of one kind if this instance holds it, with
// no fill: a loader answers a hit at once instead of waiting for a batch.
func Peek[T any](n *Near, kind string, id int64) (T, bool) {
	var zero T
	if n == nil {
		return zero, false
	}
	e, ok := n.c.GetIfPresent(nearKey{kind, id})
	if !ok || e.value == nil {
		return zero, false
	}
	nearHits.WithLabelValues(kind).Inc()
	return e.value.(T), true
}
