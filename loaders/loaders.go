// Package loaders holds the per-request dataloaders: every by-id read of a
// GraphQL request is collected for a moment and answered from the nearest
// tier that has it: this instance's near cache, then Redis, then one
// `WHERE id = ANY($1)` query, so the number of SQL queries does not grow with
// a list's length.
package loaders

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/store"
)

// Batching: a loader waits Wait after its first key for more keys, and sends
// a batch at once when it holds MaxBatch keys.
const (
	Wait     = 2 * time.Millisecond
	MaxBatch = 100
)

// Option changes how New's loaders batch.
type Option func(*settings)

type settings struct {
	wait   time.Duration
	noMemo bool
	near   *cache.Near
}

// WithNear puts the near cache n in front of Redis and the database.
func WithNear(n *cache.Near) Option { return func(s *settings) { s.near = n } }

// WithWait makes the loaders wait d (instead of Wait) for more keys.
func WithWait(d time.Duration) Option { return func(s *settings) { s.wait = d } }

// NoMemo makes the loaders remember nothing between loads: each Load reads
// Redis or the database again. Loaders of a context that outlives one answer
// (a subscription over WebSocket or SSE) need it, or every event after the
// first would show the state of the first.
func NoMemo() Option { return func(s *settings) { s.noMemo = true } }

// Loaders are one request's (or one subscription's) dataloaders. A missing
// row loads as nil without error, so node(id) of an unknown id is null.
type Loaders struct {
	Users          *dataloader.Loader[int64, *domain.User]
	Creators       *dataloader.Loader[int64, *domain.Creator]
	CreatorByUser  *dataloader.Loader[int64, *domain.Creator] // by user id
	Products       *dataloader.Loader[int64, *domain.Product]
	Media          *dataloader.Loader[int64, *domain.Media]
	MediaByProduct *dataloader.Loader[int64, []*domain.Media] // oldest first
	// Drops and Stocks are read together (one statement) and cached only in
	// the near cache, which events keep exact; never in Redis.
	Drops  *dataloader.Loader[int64, *domain.Drop]
	Stocks *dataloader.Loader[int64, *domain.Stock] // by drop id
	// PaymentByOrder is batched but never cached.
	PaymentByOrder *dataloader.Loader[int64, *domain.Payment]
	// Notifications are read by id whoever owns them: callers check the owner.
	Notifications *dataloader.Loader[int64, *domain.Notification]
	// ViewerFollows says whether the context's viewer follows each creator id
	// (false for an anonymous viewer).
	ViewerFollows *dataloader.Loader[int64, bool]
	// Orders are read by id with their seller, whoever asks: callers check
	// that the viewer may see them.
	Orders *dataloader.Loader[int64, *store.OrderWithSeller]
	// Connections are the pages of nested lists (pages.go).
	Connections

	db   *store.DB
	near *cache.Near
}

// New returns fresh loaders reading db through c (nil c: no Redis) and,
// WithNear, through a near cache in front of it.
//
// To add a loader: a field above, then one line here: cached(...) for a row
// whose changes are announced by events (add its kind and shape to package
// cache and its events to the invalidators), direct(...) for one read
// straight from the store.
func New(db *store.DB, c *cache.Cache, opts ...Option) *Loaders {
	set := settings{wait: Wait}
	for _, o := range opts {
		o(&set)
	}
	l := &Loaders{
		Users:          cached(set, c, userShape, db.UsersByIDs, func(u *domain.User) int64 { return u.ID }),
		Creators:       cached(set, c, creatorShape, db.CreatorsByIDs, func(c *domain.Creator) int64 { return c.ID }),
		Products:       cached(set, c, productShape, db.ProductsByIDs, func(p *domain.Product) int64 { return p.ID }),
		Media:          cached(set, c, mediaShape, db.MediaByIDs, func(m *domain.Media) int64 { return m.ID }),
		PaymentByOrder: direct(set, db.PaymentsByOrderIDs, func(p *domain.Payment) int64 { return p.OrderID }),
		Notifications:  direct(set, db.NotificationsByIDs, func(n *domain.Notification) int64 { return n.ID }),
		Orders:         direct(set, db.OrdersWithSellers, func(o *store.OrderWithSeller) int64 { return o.ID }),
		Connections:    newConnections(set, db),
		db:             db,
		near:           set.near,
	}
	states := func(ctx context.Context, ids []int64) (map[int64]domain.DropState, error) {
		return cache.Load(ctx, set.near, dropShape, ids, func(ctx context.Context, missing []int64, _ map[int64]cache.Version) (map[int64]domain.DropState, error) {
			rows, err := db.DropStatesByIDs(ctx, missing)
			if err != nil {
				return nil, err
			}
			out := make(map[int64]domain.DropState, len(rows))
			for _, r := range rows {
				out[r.Drop.ID] = r
			}
			return out, nil
		})
	}
	l.Drops = newLoader(set, func(ctx context.Context, ids []int64) (map[int64]*domain.Drop, error) {
		found, err := states(ctx, ids)
		return pick(found, err, func(s *domain.DropState) *domain.Drop { return &s.Drop })
	}, peekPart(set.near, dropShape, func(s *domain.DropState) *domain.Drop { return &s.Drop }))
	l.Stocks = newLoader(set, func(ctx context.Context, ids []int64) (map[int64]*domain.Stock, error) {
		found, err := states(ctx, ids)
		return pick(found, err, func(s *domain.DropState) *domain.Stock { return &s.Stock })
	}, peekPart(set.near, dropShape, func(s *domain.DropState) *domain.Stock { return &s.Stock }))
	l.CreatorByUser = newLoader(set, func(ctx context.Context, userIDs []int64) (map[int64]*domain.Creator, error) {
		return creatorsByUser(ctx, db, c, set.near, l.Creators, userIDs)
	}, nil)
	l.MediaByProduct = newLoader(set, func(ctx context.Context, productIDs []int64) (map[int64][]*domain.Media, error) {
		lists, err := tiered(ctx, set.near, c, mediaListShape, productIDs, func(ctx context.Context, missing []int64) (map[int64][]domain.Media, error) {
			found, err := db.MediaByProducts(ctx, missing)
			if err != nil {
				return nil, err
			}
			// A product without media is cached too: its list is known to be empty.
			for _, id := range missing {
				if found[id] == nil {
					found[id] = []domain.Media{}
				}
			}
			return found, nil
		})
		if err != nil {
			return nil, err
		}
		out := make(map[int64][]*domain.Media, len(lists))
		for id, list := range lists {
			out[id] = pointers(list)
		}
		return out, nil
	}, func(id int64) ([]*domain.Media, bool) {
		list, ok := cache.Peek[[]domain.Media](set.near, mediaListShape.Kind, id)
		return pointers(list), ok
	})
	l.ViewerFollows = newLoader(set, func(ctx context.Context, creatorIDs []int64) (map[int64]bool, error) {
		v := domain.ViewerFrom(ctx)
		if v == nil {
			return map[int64]bool{}, nil
		}
		return db.FollowsOf(ctx, v.UserID, creatorIDs)
	}, nil)
	return l
}

// creatorsByUser maps user ids to creator ids through Redis (the mapping
// never changes once made), then loads the creators through their loader.
func creatorsByUser(ctx context.Context, db *store.DB, c *cache.Cache, near *cache.Near, creators *dataloader.Loader[int64, *domain.Creator], userIDs []int64) (map[int64]*domain.Creator, error) {
	fresh := map[int64]*domain.Creator{}
	ids, err := tiered(ctx, near, c, creatorOfUserShape, userIDs, func(ctx context.Context, missing []int64) (map[int64]int64, error) {
		found, err := db.CreatorByUserID(ctx, missing)
		if err != nil {
			return nil, err
		}
		out := make(map[int64]int64, len(found))
		for i := range found {
			out[found[i].UserID] = found[i].ID
			fresh[found[i].UserID] = &found[i]
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*domain.Creator, len(ids))
	var userOf = map[int64]int64{}
	var creatorIDs []int64
	for userID, creatorID := range ids {
		if cr, ok := fresh[userID]; ok {
			// Read just now: prime the loader instead of reading it again.
			creators.Prime(ctx, creatorID, cr)
			out[userID] = cr
			continue
		}
		userOf[creatorID] = userID
		creatorIDs = append(creatorIDs, creatorID)
	}
	if len(creatorIDs) == 0 {
		return out, nil
	}
	found, errs := creators.LoadMany(ctx, creatorIDs)()
	for i, cr := range found {
		if len(errs) > i && errs[i] != nil {
			return nil, errs[i]
		}
		if cr != nil {
			out[userOf[creatorIDs[i]]] = cr
		}
	}
	return out, nil
}

// tiered reads ids of one kind from the near cache, then Redis, then fill.
// A Redis value older than what an event announced counts as missing, as
// does any of an unversioned kind an event was about.
func tiered[T any](ctx context.Context, near *cache.Near, c *cache.Cache, s cache.Shape[T], ids []int64,
	fill func(ctx context.Context, missing []int64) (map[int64]T, error)) (map[int64]T, error) {
	return cache.Load(ctx, near, s, ids, func(ctx context.Context, missing []int64, floor map[int64]cache.Version) (map[int64]T, error) {
		var stale func(int64, *T) bool
		if len(floor) > 0 {
			stale = func(id int64, v *T) bool {
				f, ok := floor[id]
				return ok && (s.Version == nil || s.Version(v).Before(f))
			}
		}
		return cache.GetNewer(ctx, c, s.Kind, missing, stale, fill)
	})
}

// pointers points at each item of list.
func pointers[T any](list []T) []*T {
	ptrs := make([]*T, len(list))
	for i := range list {
		ptrs[i] = &list[i]
	}
	return ptrs
}

// peekPart answers a loader's key at once from the near cache, when held.
func peekPart[T, P any](near *cache.Near, s cache.Shape[T], part func(*T) *P) func(int64) (*P, bool) {
	if near == nil {
		return nil
	}
	return func(id int64) (*P, bool) {
		v, ok := cache.Peek[T](near, s.Kind, id)
		if !ok {
			return nil, false
		}
		return part(&v), true
	}
}

// pick points at one part of each found value.
func pick[T, P any](found map[int64]T, err error, part func(*T) *P) (map[int64]*P, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*P, len(found))
	for id, v := range found {
		out[id] = part(&v)
	}
	return out, nil
}

// cached returns a loader of rows by id that reads the near cache and Redis
// first and fills the misses with one call of fetch.
func cached[T any](set settings, c *cache.Cache, s cache.Shape[T], fetch func(context.Context, []int64) ([]T, error), id func(*T) int64) *dataloader.Loader[int64, *T] {
	return newLoader(set, func(ctx context.Context, ids []int64) (map[int64]*T, error) {
		values, err := tiered(ctx, set.near, c, s, ids, func(ctx context.Context, missing []int64) (map[int64]T, error) {
			rows, err := fetch(ctx, missing)
			if err != nil {
				return nil, err
			}
			out := make(map[int64]T, len(rows))
			for i := range rows {
				out[id(&rows[i])] = rows[i]
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		out := make(map[int64]*T, len(values))
		for k, v := range values {
			out[k] = &v
		}
		return out, nil
	}, peekPart(set.near, s, func(v *T) *T { return v }))
}

// direct returns a loader of rows by id read with one call of fetch per batch.
func direct[T any](set settings, fetch func(context.Context, []int64) ([]T, error), id func(*T) int64) *dataloader.Loader[int64, *T] {
	return newLoader(set, func(ctx context.Context, ids []int64) (map[int64]*T, error) {
		rows, err := fetch(ctx, ids)
		if err != nil {
			return nil, err
		}
		out := make(map[int64]*T, len(rows))
		for i := range rows {
			out[id(&rows[i])] = &rows[i]
		}
		return out, nil
	}, nil)
}

// newLoader turns a read of many keys into a dataloader: results in the
// order of the keys, the zero value for a key the read did not return, and
// the read's error for every key when it fails. A key peek answers (a near
// cache hit) is answered at once, without waiting for a batch.
func newLoader[V any](set settings, read func(context.Context, []int64) (map[int64]V, error), peek func(int64) (V, bool)) *dataloader.Loader[int64, V] {
	batch := func(ctx context.Context, keys []int64) []*dataloader.Result[V] {
		found, err := read(ctx, keys)
		out := make([]*dataloader.Result[V], len(keys))
		for i, k := range keys {
			if err != nil {
				out[i] = &dataloader.Result[V]{Error: err}
				continue
			}
			out[i] = &dataloader.Result[V]{Data: found[k]}
		}
		return out
	}
	opts := []dataloader.Option[int64, V]{
		dataloader.WithWait[int64, V](set.wait),
		dataloader.WithBatchCapacity[int64, V](MaxBatch),
	}
	var memo dataloader.Cache[int64, V] = dataloader.NewCache[int64, V]()
	if set.noMemo {
		memo = &dataloader.NoCache[int64, V]{}
	}
	if peek != nil {
		memo = &peeking[V]{memo: memo, peek: peek}
	}
	opts = append(opts, dataloader.WithCache(memo))
	return dataloader.NewBatchedLoader(batch, opts...)
}

// peeking is a loader's memory of answered keys that also answers the keys
// the near cache holds.
type peeking[V any] struct {
	memo dataloader.Cache[int64, V]
	peek func(int64) (V, bool)
}

func (p *peeking[V]) Get(ctx context.Context, id int64) (dataloader.Thunk[V], bool) {
	if t, ok := p.memo.Get(ctx, id); ok {
		return t, true
	}
	v, ok := p.peek(id)
	if !ok {
		return nil, false
	}
	t := func() (V, error) { return v, nil }
	p.memo.Set(ctx, id, t)
	return t, true
}

func (p *peeking[V]) Set(ctx context.Context, id int64, t dataloader.Thunk[V]) {
	p.memo.Set(ctx, id, t)
}
func (p *peeking[V]) Delete(ctx context.Context, id int64) bool { return p.memo.Delete(ctx, id) }
func (p *peeking[V]) Clear()                                    { p.memo.Clear() }

type ctxKey struct{}

// lazy is a request's loaders, built on first use: most requests of a
// stream (an idle WebSocket watching stock) never load anything, and a set
// of loaders costs kilobytes per connection.
type lazy struct {
	once  sync.Once
	build func() *Loaders
	l     *Loaders
}

func (z *lazy) get() *Loaders {
	z.once.Do(func() { z.l = z.build() })
	return z.l
}

// WithLoaders returns ctx carrying l; a subscription's set is made with NoMemo.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, &lazy{build: func() *Loaders { return l }})
}

// For returns the loaders of ctx. A context without them is a wiring bug
// (the handler lacks Middleware), so it panics with a message saying so.
func For(ctx context.Context) *Loaders {
	z, ok := ctx.Value(ctxKey{}).(*lazy)
	if !ok {
		panic("loaders: no loaders in the context; wrap the handler with loaders.Middleware or use WithLoaders")
	}
	return z.get()
}

// Middleware gives every request fresh loaders, so nothing is shared (or
// held stale) between requests; a request that opens a subscription stream
// gets loaders that remember nothing (NoMemo).
func Middleware(db *store.DB, c *cache.Cache, base ...Option) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			opts := base
			if streams(r) {
				opts = append(opts[:len(opts):len(opts)], NoMemo())
			}
			z := &lazy{build: func() *Loaders { return New(db, c, opts...) }}
			// The loaders' Redis reads of one moment share a round trip.
			ctx := cache.WithWave(r.Context(), c)
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, z)))
		})
	}
}

// streams reports whether r opens a WebSocket or an SSE stream, which lives
// as long as its subscriptions.
func streams(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
		strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
