package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"livedrops/domain"
)

// pageSizes are the lengths of the lists the batched reads are checked on,
// one parent each: empty, shorter than a page of 3, exactly one, longer.
var pageSizes = []int{0, 1, 2, 3, 4, 7, 10, 5, 0, 6}

// pagesWorld is one database with a list of each kind under every parent.
type pagesWorld struct {
	db *DB
	// sellers own pageSizes[i] products; dropCreators own one product each,
	// with pageSizes[i] drops of it, every other one CANCELLED.
	sellers, dropCreators, dropProducts []int64
	// fans[j] follows the first pageSizes[j] sellers, and has as many orders
	// and notifications (every third one read).
	fans []int64
}

// seedPagesWorld writes the lists with raw SQL: two rows share each time, so
// the id breaks ties, and parents' rows interleave in time.
func seedPagesWorld(t *testing.T) *pagesWorld {
	t.Helper()
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	w := &pagesWorld{db: db}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(k int) time.Time { return base.Add(time.Duration(k/2) * time.Minute) }
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, n := range pageSizes {
		seller := seedCreator(t, db, fmt.Sprint("seller", i))
		w.sellers = append(w.sellers, seller)
		for k := range n {
			exec(`INSERT INTO products (creator_id, title, price_cents, currency, created_at, updated_at)
				VALUES ($1, $2, 100, 'USD', $3, $3)`, seller, fmt.Sprintf("p%d.%d", i, k), at(k))
		}
		maker := seedCreator(t, db, fmt.Sprint("maker", i))
		var product int64
		if err := db.GetContext(ctx, &product, `INSERT INTO products (creator_id, title, price_cents, currency)
			VALUES ($1, 'held', 100, 'USD') RETURNING id`, maker); err != nil {
			t.Fatal(err)
		}
		w.dropCreators, w.dropProducts = append(w.dropCreators, maker), append(w.dropProducts, product)
		for k := range n {
			status := "SCHEDULED"
			if k%2 == 1 {
				status = "CANCELLED"
			}
			exec(`INSERT INTO drops (product_id, creator_id, title, status, starts_at, ends_at, per_user_limit)
				VALUES ($1, $2, 'd', $3, $4, $4::timestamptz + interval '1 hour', 1)`, product, maker, status, at(k))
		}
	}
	var drops []int64
	if err := db.SelectContext(ctx, &drops, `SELECT id FROM drops WHERE creator_id = $1 ORDER BY id`, w.dropCreators[6]); err != nil || len(drops) < slices.Max(pageSizes) {
		t.Fatalf("drops to order and notify about: %v, %v", drops, err)
	}
	for j, n := range pageSizes {
		var fan int64
		if err := db.GetContext(ctx, &fan, `INSERT INTO users (handle, display_name, password_hash)
			VALUES ($1, $1, 'x') RETURNING id`, fmt.Sprint("fan", j)); err != nil {
			t.Fatal(err)
		}
		w.fans = append(w.fans, fan)
		for k := range n {
			exec(`INSERT INTO follows (creator_id, follower_id, created_at) VALUES ($1, $2, $3)`, w.sellers[k], fan, at(k+j))
			exec(`INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency, idempotency_key, request_hash,
				created_at, updated_at, expires_at) VALUES ($1, $2, 1, 100, 'USD', $3, 'h', $4, $4, $4)`,
				drops[k], fan, fmt.Sprint("key", k), at(k))
			var read *time.Time
			if k%3 == 0 {
				r := at(k).Add(time.Hour)
				read = &r
			}
			exec(`INSERT INTO notifications (user_id, kind, drop_id, creator_id, created_at, read_at)
				VALUES ($1, 'DROP_STARTED', $2, $3, $4, $5)`, fan, drops[k], w.dropCreators[6], at(k), read)
		}
	}
	return w
}

// TestBatchedPagesMatchOneParentPages checks every batched connection read
// against the same page of each parent read alone: forwards and backwards,
// from every cursor of every parent's list (a nested list's arguments apply
// to all its parents), with repeated and unknown parents; and each batched
// read is one statement.
func TestBatchedPagesMatchOneParentPages(t *testing.T) {
	w := seedPagesWorld(t)
	db := w.db
	scheduled := domain.DropScheduled
	notifications := func(unreadFirst bool) (func(context.Context, []int64, PageArgs) (map[int64]Page[domain.Notification], error),
		func(context.Context, int64, PageArgs) (Page[domain.Notification], error)) {
		return func(ctx context.Context, ids []int64, p PageArgs) (map[int64]Page[domain.Notification], error) {
				return db.NotificationsOfUsers(ctx, ids, unreadFirst, p)
			}, func(ctx context.Context, id int64, p PageArgs) (Page[domain.Notification], error) {
				return db.NotificationsOf(ctx, id, unreadFirst, p)
			}
	}
	notificationsNewest, notificationsNewestAlone := notifications(false)
	unreadFirst, unreadFirstAlone := notifications(true)

	t.Run("products of creators", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.sellers, db.ProductsByCreators, db.ProductsByCreator, func(p domain.Product) int64 { return p.ID })
	})
	t.Run("drops of creators", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.dropCreators,
			func(ctx context.Context, ids []int64, p PageArgs) (map[int64]Page[domain.Drop], error) {
				return db.DropsByCreators(ctx, ids, nil, p)
			},
			func(ctx context.Context, id int64, p PageArgs) (Page[domain.Drop], error) {
				return db.DropsByCreator(ctx, id, nil, p)
			}, func(d domain.Drop) int64 { return d.ID })
	})
	t.Run("scheduled drops of creators", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.dropCreators,
			func(ctx context.Context, ids []int64, p PageArgs) (map[int64]Page[domain.Drop], error) {
				return db.DropsByCreators(ctx, ids, &scheduled, p)
			},
			func(ctx context.Context, id int64, p PageArgs) (Page[domain.Drop], error) {
				return db.DropsByCreator(ctx, id, &scheduled, p)
			}, func(d domain.Drop) int64 { return d.ID })
	})
	t.Run("drops of products", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.dropProducts, db.DropsByProducts, db.DropsByProduct, func(d domain.Drop) int64 { return d.ID })
	})
	t.Run("followers of creators", func(t *testing.T) {
		// A maker has no followers.
		checkPagesMatchAlone(t, db, append(slices.Clone(w.sellers), w.dropCreators[0]), db.FollowersOf, db.Followers, func(u domain.User) int64 { return u.ID })
	})
	t.Run("creators users follow", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.fans, db.FollowingOf, db.Following, func(c domain.Creator) int64 { return c.ID })
	})
	t.Run("orders of buyers", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.fans, db.OrdersOfBuyers, db.OrdersOfBuyer, func(o domain.Order) int64 { return o.ID })
	})
	t.Run("notifications of users", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.fans, notificationsNewest, notificationsNewestAlone, func(n domain.Notification) int64 { return n.ID })
	})
	t.Run("notifications of users, unread first", func(t *testing.T) {
		checkPagesMatchAlone(t, db, w.fans, unreadFirst, unreadFirstAlone, func(n domain.Notification) int64 { return n.ID })
	})
}

// checkPagesMatchAlone compares batched with alone on the parents (plus a
// repeated and an unknown one) for pages of 0, 3 and 100 items, first and
// last, after and before every cursor any parent's list has, and between
// pairs of them.
func checkPagesMatchAlone[T any](t *testing.T, db *DB, parents []int64,
	batched func(context.Context, []int64, PageArgs) (map[int64]Page[T], error),
	alone func(context.Context, int64, PageArgs) (Page[T], error), id func(T) int64) {
	t.Helper()
	ctx := context.Background()
	var cursors []*Cursor
	var lengths []int
	for _, p := range parents {
		all, err := alone(ctx, p, PageArgs{Limit: MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		lengths = append(lengths, len(all.Items))
		for _, s := range all.Cursors {
			c, err := DecodeCursor("after", s)
			if err != nil {
				t.Fatal(err)
			}
			cursors = append(cursors, &c)
		}
	}
	if slices.Min(lengths) != 0 || slices.Max(lengths) <= 3 || !slices.ContainsFunc(lengths, func(n int) bool { return n > 0 && n < 3 }) {
		t.Fatalf("the lists are %v long: want empty ones, shorter and longer than a page of 3", lengths)
	}

	args := []PageArgs{{Limit: 3}, {Limit: 3, Back: true}, {Limit: 0}, {Limit: 0, Back: true}, {Limit: MaxPageSize}, {Limit: MaxPageSize, Back: true}}
	for i, c := range cursors {
		args = append(args, PageArgs{Limit: 3, After: c}, PageArgs{Limit: 3, Back: true, Before: c})
		if i%3 == 0 {
			args = append(args, PageArgs{Limit: 3, Back: true, After: c}, PageArgs{Limit: 3, Before: c})
		}
		if i%5 == 0 {
			for _, d := range cursors[i%7:][:min(len(cursors)-i%7, 4)] {
				args = append(args, PageArgs{Limit: 3, After: c, Before: d}, PageArgs{Limit: 3, Back: true, After: c, Before: d})
			}
		}
	}
	asked := append(slices.Clone(parents), parents[len(parents)-1], 1<<40)
	for _, p := range args {
		before := db.Statements.Load()
		pages, err := batched(ctx, asked, p)
		if err != nil {
			t.Fatalf("%s: %v", describe(p), err)
		}
		if n := db.Statements.Load() - before; n != 1 {
			t.Fatalf("%s: %d parents read in %d statements", describe(p), len(asked), n)
		}
		for _, parent := range asked {
			got, ok := pages[parent]
			if !ok {
				t.Fatalf("%s: no page for parent %d", describe(p), parent)
			}
			want, err := alone(ctx, parent, p)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := pageSummary(got, id), pageSummary(want, id); g != w {
				t.Fatalf("%s, parent %d:\nbatched %s\nalone   %s", describe(p), parent, g, w)
			}
		}
	}
}

func pageSummary[T any](p Page[T], id func(T) int64) string {
	ids := make([]int64, len(p.Items))
	for i, it := range p.Items {
		ids[i] = id(it)
	}
	return fmt.Sprintf("items %v cursors %v next %v prev %v", ids, p.Cursors, p.HasNext, p.HasPrev)
}

func describe(p PageArgs) string {
	s := fmt.Sprintf("limit %d back %v", p.Limit, p.Back)
	if p.After != nil {
		s += fmt.Sprintf(" after %s/%d", p.After.At.Format(time.RFC3339Nano), p.After.ID)
	}
	if p.Before != nil {
		s += fmt.Sprintf(" before %s/%d", p.Before.At.Format(time.RFC3339Nano), p.Before.ID)
	}
	return s
}
