package loaders

import (
	"context"
	"time"
	"unsafe"

	"github.com/graph-gophers/dataloader/v7"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/store"
)

// MaxPageParents caps the parents of one batch of a connection's pages: a
// level of nested lists holds up to the product of the page sizes above it
// (the complexity limit bounds that), and each distinct page costs one
// statement, however many parents share it.
const MaxPageParents = 1000

// Connections load the pages of the lists nested under other objects, so a
// list of N parents costs one statement per level, not N.
type Connections struct {
	CreatorProducts  *PageLoader[domain.Product, All]
	CreatorDrops     *PageLoader[domain.Drop, domain.DropStatus] // "" for every status
	CreatorFollowers *PageLoader[domain.User, All]
	UserFollowing    *PageLoader[domain.Creator, All]
	// UserOrders and UserNotifications load whoever's list is asked: callers
	// check that the viewer is its owner.
	UserOrders        *PageLoader[domain.Order, All]
	UserNotifications *PageLoader[domain.Notification, bool] // true: unread first
	ProductDrops      *PageLoader[domain.Drop, All]
}

func newConnections(set settings, db *store.DB) Connections {
	return Connections{
		CreatorProducts: newPageLoader(set, unfiltered(db.ProductsByCreators)).withHeads(set.near, kindOf[All](cache.KindCreatorProducts)),
		CreatorDrops: newPageLoader(set, func(ctx context.Context, ids []int64, p store.PageArgs, status domain.DropStatus) (map[int64]store.Page[domain.Drop], error) {
			if status == "" {
				return db.DropsByCreators(ctx, ids, nil, p)
			}
			return db.DropsByCreators(ctx, ids, &status, p)
		}).withHeads(set.near, func(status domain.DropStatus) string { return cache.KindCreatorDrops + ":" + string(status) }),
		CreatorFollowers: newPageLoader(set, unfiltered(db.FollowersOf)).withHeads(set.near, kindOf[All](cache.KindCreatorFollowers)),
		UserFollowing:    newPageLoader(set, unfiltered(db.FollowingOf)),
		UserOrders:       newPageLoader(set, unfiltered(db.OrdersOfBuyers)),
		UserNotifications: newPageLoader(set, func(ctx context.Context, ids []int64, p store.PageArgs, unreadFirst bool) (map[int64]store.Page[domain.Notification], error) {
			return db.NotificationsOfUsers(ctx, ids, unreadFirst, p)
		}),
		ProductDrops: newPageLoader(set, unfiltered(db.DropsByProducts)),
	}
}

// HeadSize is how many items of a hot list's first page ("head") the near
// cache keeps: a first page of up to HeadSize items is cut from it. Events
// evict heads (cache.Near.Handle); lists whose items change without an event
// of their parent (a user's following, whose creators' follower counts move)
// are not kept.
const HeadSize = 50

// kindOf names the heads of a list without a filter.
func kindOf[F comparable](kind string) func(F) string { return func(F) string { return kind } }

// isHead reports whether p is a first page a head can answer.
func isHead(p pageArgs) bool {
	return !p.back && !p.after.set && !p.before.set && p.limit <= HeadSize
}

// firstOf is the first n items of head, as a page read with first: n.
func firstOf[T any](head store.Page[T], n int) store.Page[T] {
	if len(head.Items) <= n {
		return store.Page[T]{Items: head.Items, Cursors: head.Cursors, HasNext: head.HasNext}
	}
	return store.Page[T]{Items: head.Items[:n:n], Cursors: head.Cursors[:n:n], HasNext: true}
}

// pageWeight is what a page holds beyond its struct, roughly: its items with
// their strings, and its cursors.
func pageWeight[T any](p *store.Page[T]) int {
	var item T
	return len(p.Items)*(int(unsafe.Sizeof(item))+itemStrings) + len(p.Cursors)*48
}

// itemStrings is an item's strings (titles, handles, descriptions) as the
// weigher counts them.
const itemStrings = 128

// All is the filter of a list that has none.
type All struct{}

// PageLoader loads one page of a list under each of many parents. The pages
// of a batch that share their arguments and filter are read in one statement.
type PageLoader[T any, F comparable] struct {
	l *dataloader.Loader[pageKey[F], store.Page[T]]
	// heads, when set, keeps each parent's first page in the near cache.
	heads *heads[T, F]
}

type heads[T any, F comparable] struct {
	near *cache.Near
	kind func(F) string
}

func (h *heads[T, F]) shape(filter F) cache.Shape[store.Page[T]] {
	return cache.Shape[store.Page[T]]{Kind: h.kind(filter), Size: pageWeight[T]}
}

// withHeads makes pl keep first pages in near (nil: it keeps none).
func (pl *PageLoader[T, F]) withHeads(near *cache.Near, kind func(F) string) *PageLoader[T, F] {
	if near != nil {
		pl.heads = &heads[T, F]{near: near, kind: kind}
	}
	return pl
}

// Load returns the page p of parent's list, filtered by filter. A first page
// the near cache holds is answered at once, without waiting for a batch.
func (pl *PageLoader[T, F]) Load(ctx context.Context, parent int64, p store.PageArgs, filter F) (store.Page[T], error) {
	key := pageKey[F]{parent: parent, page: pageOf(p), filter: filter}
	if pl.heads != nil && isHead(key.page) {
		if head, ok := cache.Peek[store.Page[T]](pl.heads.near, pl.heads.kind(filter), parent); ok {
			return firstOf(head, key.page.limit), nil
		}
	}
	return pl.l.Load(ctx, key)()
}

// pageKey names one parent's page; it is comparable, so one request's equal
// loads share a read.
type pageKey[F comparable] struct {
	parent int64
	page   pageArgs
	filter F
}

// pageGroup is what the pages read by one statement share; head marks the
// first pages read as heads.
type pageGroup[F comparable] struct {
	page   pageArgs
	filter F
	head   bool
}

// pageArgs is store.PageArgs by value: cursors that are equal compare equal.
type pageArgs struct {
	limit         int
	back          bool
	after, before cursorKey
}

// cursorKey is a cursor, if set, with its time in microseconds (its precision).
type cursorKey struct {
	set    bool
	at, id int64
}

func pageOf(p store.PageArgs) pageArgs {
	key := func(c *store.Cursor) cursorKey {
		if c == nil {
			return cursorKey{}
		}
		return cursorKey{set: true, at: c.At.UnixMicro(), id: c.ID}
	}
	return pageArgs{limit: p.Limit, back: p.Back, after: key(p.After), before: key(p.Before)}
}

func (a pageArgs) args() store.PageArgs {
	cursor := func(k cursorKey) *store.Cursor {
		if !k.set {
			return nil
		}
		return &store.Cursor{At: time.UnixMicro(k.at).UTC(), ID: k.id}
	}
	return store.PageArgs{Limit: a.limit, Back: a.back, After: cursor(a.after), Before: cursor(a.before)}
}

// unfiltered adapts a batched read of a list without a filter.
func unfiltered[T any](read func(context.Context, []int64, store.PageArgs) (map[int64]store.Page[T], error)) func(context.Context, []int64, store.PageArgs, All) (map[int64]store.Page[T], error) {
	return func(ctx context.Context, ids []int64, p store.PageArgs, _ All) (map[int64]store.Page[T], error) {
		return read(ctx, ids, p)
	}
}

// newPageLoader returns a PageLoader that calls read once per group of a
// batch's keys with the same page and filter.
func newPageLoader[T any, F comparable](set settings, read func(context.Context, []int64, store.PageArgs, F) (map[int64]store.Page[T], error)) *PageLoader[T, F] {
	pl := &PageLoader[T, F]{}
	batch := func(ctx context.Context, keys []pageKey[F]) []*dataloader.Result[store.Page[T]] {
		// First pages a head can answer are read as heads, one group per
		// filter: through the near cache, whatever their sizes.
		headGroup := func(k pageKey[F]) pageGroup[F] {
			if pl.heads != nil && isHead(k.page) {
				return pageGroup[F]{page: pageArgs{limit: HeadSize}, filter: k.filter, head: true}
			}
			return pageGroup[F]{page: k.page, filter: k.filter}
		}
		parents := map[pageGroup[F]][]int64{}
		for _, k := range keys {
			g := headGroup(k)
			parents[g] = append(parents[g], k.parent)
		}
		pages := make(map[pageGroup[F]]map[int64]store.Page[T], len(parents))
		errs := make(map[pageGroup[F]]error, len(parents))
		for g, ids := range parents {
			if !g.head {
				pages[g], errs[g] = read(ctx, ids, g.page.args(), g.filter)
				continue
			}
			pages[g], errs[g] = cache.Load(ctx, pl.heads.near, pl.heads.shape(g.filter), ids,
				func(ctx context.Context, missing []int64, _ map[int64]cache.Version) (map[int64]store.Page[T], error) {
					return read(ctx, missing, g.page.args(), g.filter)
				})
		}
		out := make([]*dataloader.Result[store.Page[T]], len(keys))
		for i, k := range keys {
			g := headGroup(k)
			page := pages[g][k.parent]
			if g.head {
				page = firstOf(page, k.page.limit)
			}
			out[i] = &dataloader.Result[store.Page[T]]{Data: page, Error: errs[g]}
		}
		return out
	}
	opts := []dataloader.Option[pageKey[F], store.Page[T]]{
		dataloader.WithWait[pageKey[F], store.Page[T]](set.wait),
		dataloader.WithBatchCapacity[pageKey[F], store.Page[T]](MaxPageParents),
	}
	if set.noMemo {
		opts = append(opts, dataloader.WithCache[pageKey[F], store.Page[T]](&dataloader.NoCache[pageKey[F], store.Page[T]]{}))
	}
	pl.l = dataloader.NewBatchedLoader(batch, opts...)
	return pl
}

// liveHeads keeps the first page of the drops selling now, under id 0.
var liveHeads = cache.Shape[store.Page[domain.Drop]]{Kind: cache.KindLiveDrops, Size: pageWeight[domain.Drop]}

// LiveDrops returns the page p of the drops selling now; a first page is cut
// from the head the near cache keeps.
func (l *Loaders) LiveDrops(ctx context.Context, p store.PageArgs) (store.Page[domain.Drop], error) {
	k := pageOf(p)
	if l.near == nil || !isHead(k) {
		return l.db.LiveDrops(ctx, p)
	}
	heads, err := cache.Load(ctx, l.near, liveHeads, []int64{0}, func(ctx context.Context, _ []int64, _ map[int64]cache.Version) (map[int64]store.Page[domain.Drop], error) {
		head, err := l.db.LiveDrops(ctx, store.PageArgs{Limit: HeadSize})
		if err != nil {
			return nil, err
		}
		return map[int64]store.Page[domain.Drop]{0: head}, nil
	})
	if err != nil {
		return store.Page[domain.Drop]{}, err
	}
	return firstOf(heads[0], k.limit), nil
}
