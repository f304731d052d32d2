package loaders

import (
	"context"
	"time"

	"github.com/graph-gophers/dataloader/v7"

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
		CreatorProducts: newPageLoader(set, unfiltered(db.ProductsByCreators)),
		CreatorDrops: newPageLoader(set, func(ctx context.Context, ids []int64, p store.PageArgs, status domain.DropStatus) (map[int64]store.Page[domain.Drop], error) {
			if status == "" {
				return db.DropsByCreators(ctx, ids, nil, p)
			}
			return db.DropsByCreators(ctx, ids, &status, p)
		}),
		CreatorFollowers: newPageLoader(set, unfiltered(db.FollowersOf)),
		UserFollowing:    newPageLoader(set, unfiltered(db.FollowingOf)),
		UserOrders:       newPageLoader(set, unfiltered(db.OrdersOfBuyers)),
		UserNotifications: newPageLoader(set, func(ctx context.Context, ids []int64, p store.PageArgs, unreadFirst bool) (map[int64]store.Page[domain.Notification], error) {
			return db.NotificationsOfUsers(ctx, ids, unreadFirst, p)
		}),
		ProductDrops: newPageLoader(set, unfiltered(db.DropsByProducts)),
	}
}

// All is the filter of a list that has none.
type All struct{}

// PageLoader loads one page of a list under each of many parents. The pages
// of a batch that share their arguments and filter are read in one statement.
type PageLoader[T any, F comparable] struct {
	l *dataloader.Loader[pageKey[F], store.Page[T]]
}

// Load returns the page p of parent's list, filtered by filter.
func (pl *PageLoader[T, F]) Load(ctx context.Context, parent int64, p store.PageArgs, filter F) (store.Page[T], error) {
	return pl.l.Load(ctx, pageKey[F]{parent: parent, page: pageOf(p), filter: filter})()
}

// pageKey names one parent's page; it is comparable, so one request's equal
// loads share a read.
type pageKey[F comparable] struct {
	parent int64
	page   pageArgs
	filter F
}

// pageGroup is what the pages read by one statement share.
type pageGroup[F comparable] struct {
	page   pageArgs
	filter F
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
	batch := func(ctx context.Context, keys []pageKey[F]) []*dataloader.Result[store.Page[T]] {
		parents := map[pageGroup[F]][]int64{}
		for _, k := range keys {
			g := pageGroup[F]{page: k.page, filter: k.filter}
			parents[g] = append(parents[g], k.parent)
		}
		pages := make(map[pageGroup[F]]map[int64]store.Page[T], len(parents))
		errs := make(map[pageGroup[F]]error, len(parents))
		for g, ids := range parents {
			pages[g], errs[g] = read(ctx, ids, g.page.args(), g.filter)
		}
		out := make([]*dataloader.Result[store.Page[T]], len(keys))
		for i, k := range keys {
			g := pageGroup[F]{page: k.page, filter: k.filter}
			out[i] = &dataloader.Result[store.Page[T]]{Data: pages[g][k.parent], Error: errs[g]}
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
	return &PageLoader[T, F]{l: dataloader.NewBatchedLoader(batch, opts...)}
}
