package loaders_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/cache"
	"livedrops/catalog"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/loaders"
	"livedrops/media"
	"livedrops/store"
	"livedrops/store/storetest"
)

type env struct {
	db    *store.DB
	cache *cache.Cache
	rdb   redis.UniversalClient
}

// setup opens a fresh database and a Redis prefix of the test's own.
func setup(t *testing.T) *env {
	t.Helper()
	db := storetest.Open(t)
	redisURL, prefix := testenv.Redis(t)
	rdb, err := cache.Connect(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return &env{db: db, cache: cache.New(rdb, prefix, time.Minute), rdb: rdb}
}

// creator makes a user and its creator profile.
func (e *env) creator(t *testing.T, handle string) (*domain.User, *domain.Creator) {
	t.Helper()
	ctx := context.Background()
	u, err := e.db.CreateUser(ctx, handle, "User "+handle, "hash")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.db.CreateCreator(ctx, u.ID, "Creator "+handle, "")
	if err != nil {
		t.Fatal(err)
	}
	return u, c
}

// products makes n products, each by a creator of its own, and returns their ids.
func (e *env) products(t *testing.T, tag string, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		_, c := e.creator(t, fmt.Sprintf("%s%d", tag, i))
		p := &domain.Product{CreatorID: c.ID, Title: fmt.Sprintf("%s product %d", tag, i), PriceCents: 100, Currency: "USD"}
		if err := e.db.CreateProduct(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	return ids
}

// resolveList does what GraphQL does for `products { title creator { handle } }`:
// one goroutine per list item, each loading its product, then the product's
// creator. It returns the statements that sent to PostgreSQL.
func (e *env) resolveList(t *testing.T, l *loaders.Loaders, ids []int64) (int64, []*domain.Product, []*domain.Creator) {
	t.Helper()
	ctx := context.Background()
	before := e.db.Statements.Load()
	products := make([]*domain.Product, len(ids))
	creators := make([]*domain.Creator, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := l.Products.Load(ctx, id)()
			if err != nil || p == nil {
				errs[i] = fmt.Errorf("product %d: %v, %v", id, p, err)
				return
			}
			products[i] = p
			creators[i], errs[i] = l.Creators.Load(ctx, p.CreatorID)()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		if products[i].ID != ids[i] || creators[i] == nil || creators[i].ID != products[i].CreatorID {
			t.Fatalf("item %d: product %+v with creator %+v", i, products[i], creators[i])
		}
	}
	return e.db.Statements.Load() - before, products, creators
}

// proofWait replaces the production batching wait in the query-count proof.
// Under -race on a busy two-core machine, 50 resolver goroutines sometimes
// take longer than loaders.Wait to all ask, and a batch splits in two: still
// not growing with the list, but not an exact count. A long wait takes the
// scheduler out of the count, so the test checks the batching itself.
const proofWait = 100 * time.Millisecond

// TestQueriesDoNotGrowWithTheList is the proof the design promises: a list of
// products with their creators costs two SQL statements whatever its length,
// none once Redis holds them, and an update is read fresh, never stale.
func TestQueriesDoNotGrowWithTheList(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	five, fifty := e.products(t, "s", 5), e.products(t, "l", 50)
	fresh := func() *loaders.Loaders { return loaders.New(e.db, e.cache, loaders.WithWait(proofWait)) }

	small, _, _ := e.resolveList(t, fresh(), five)
	large, _, creators := e.resolveList(t, fresh(), fifty)
	if small != 2 || large != 2 {
		t.Fatalf("5 products with creators took %d statements and 50 took %d; want 2 each (one batch per type)", small, large)
	}
	if creators[49].Handle != "l49" {
		t.Fatalf("creator handle %q", creators[49].Handle)
	}

	// A new request: everything comes from Redis.
	if n, _, _ := e.resolveList(t, fresh(), fifty); n != 0 {
		t.Fatalf("the second request took %d statements, want 0 (all from Redis)", n)
	}

	// An update through the catalog evicts: the next request reads it fresh,
	// and only it.
	endpoint, bucket := testenv.S3(t)
	ms, err := media.New(ctx, &config.Config{S3Endpoint: endpoint, S3Bucket: bucket, S3Region: testenv.S3Region,
		S3AccessKey: testenv.S3AccessKey, S3SecretKey: testenv.S3SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	svc := catalog.New(e.db, ms, e.cache)
	owner, err := e.db.CreatorsByIDs(ctx, []int64{creators[7].ID})
	if err != nil {
		t.Fatal(err)
	}
	title := "renamed"
	if _, err := svc.UpdateProduct(ctx, owner[0].UserID, fifty[7], catalog.ProductPatch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	n, products, _ := e.resolveList(t, fresh(), fifty)
	if products[7].Title != "renamed" {
		t.Fatalf("after the update the product reads %q: served stale", products[7].Title)
	}
	if n != 1 {
		t.Fatalf("after evicting one product the request took %d statements, want 1", n)
	}

	// Control: a write that does not evict is served stale, so the check
	// above is what the eviction bought.
	stale := products[8]
	changed := *stale
	changed.Title = "changed behind the cache"
	if err := e.db.UpdateProduct(ctx, &changed); err != nil {
		t.Fatal(err)
	}
	if _, products, _ = e.resolveList(t, fresh(), fifty); products[8].Title != stale.Title {
		t.Fatalf("a write without eviction read %q; the cache was not in the path", products[8].Title)
	}
}

func TestMissingIsNilWithoutError(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	l := loaders.New(e.db, e.cache)
	if p, err := l.Products.Load(ctx, 123456)(); p != nil || err != nil {
		t.Fatalf("unknown product = %v, %v", p, err)
	}
	if u, err := l.Users.Load(ctx, 123456)(); u != nil || err != nil {
		t.Fatalf("unknown user = %v, %v", u, err)
	}
	if c, err := l.CreatorByUser.Load(ctx, 123456)(); c != nil || err != nil {
		t.Fatalf("creator of an unknown user = %v, %v", c, err)
	}
	if m, err := l.Media.Load(ctx, 123456)(); m != nil || err != nil {
		t.Fatalf("unknown media = %v, %v", m, err)
	}
	if d, err := l.Drops.Load(ctx, 123456)(); d != nil || err != nil {
		t.Fatalf("unknown drop = %v, %v", d, err)
	}
}

func TestAccountLoaders(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	adaUser, ada := e.creator(t, "ada")
	bo, err := e.db.CreateUser(ctx, "bo", "Bo", "hash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Follow(ctx, ada.ID, bo.ID); err != nil {
		t.Fatal(err)
	}
	_, cy := e.creator(t, "cy")

	for round := range 2 { // cold, then through Redis
		l := loaders.New(e.db, e.cache)
		u, err := l.Users.Load(ctx, bo.ID)()
		if err != nil || u == nil || u.Handle != "bo" || u.PasswordHash != "" {
			t.Fatalf("round %d: user = %+v, %v", round, u, err)
		}
		c, err := l.CreatorByUser.Load(ctx, adaUser.ID)()
		if err != nil || c == nil || c.ID != ada.ID || c.Handle != "ada" {
			t.Fatalf("round %d: creator of ada = %+v, %v", round, c, err)
		}
		if c, err := l.CreatorByUser.Load(ctx, bo.ID)(); c != nil || err != nil {
			t.Fatalf("round %d: bo is no creator, got %+v, %v", round, c, err)
		}
	}

	// Once the user→creator mapping is cached, a request reads no SQL for it.
	before := e.db.Statements.Load()
	l := loaders.New(e.db, e.cache)
	if c, err := l.CreatorByUser.Load(ctx, adaUser.ID)(); err != nil || c.ID != ada.ID {
		t.Fatalf("creator of ada = %+v, %v", c, err)
	}
	if n := e.db.Statements.Load() - before; n != 0 {
		t.Fatalf("a cached creator-of-user took %d statements", n)
	}

	anon := loaders.New(e.db, e.cache)
	if f, err := anon.ViewerFollows.Load(ctx, ada.ID)(); f || err != nil {
		t.Fatalf("anonymous viewer follows = %v, %v", f, err)
	}
	asBo := domain.WithViewer(ctx, &domain.Viewer{UserID: bo.ID})
	l = loaders.New(e.db, e.cache)
	fa, fc := l.ViewerFollows.Load(asBo, ada.ID), l.ViewerFollows.Load(asBo, cy.ID)
	if f, err := fa(); !f || err != nil {
		t.Fatalf("bo follows ada = %v, %v", f, err)
	}
	if f, err := fc(); f || err != nil {
		t.Fatalf("bo follows cy = %v, %v", f, err)
	}
}

func TestMediaAndDropLoaders(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ids := e.products(t, "m", 2)
	withMedia, without := ids[0], ids[1]
	var first *domain.Media
	for i := range 2 {
		m := &domain.Media{ProductID: withMedia, Key: fmt.Sprintf("products/%d/%d.png", withMedia, i), ContentType: "image/png", ByteSize: int64(i + 1)}
		if err := e.db.CreateMedia(ctx, m); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = m
		}
	}
	products, err := e.db.ProductsByIDs(ctx, []int64{withMedia})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.db.CreateDrop(ctx, store.NewDrop{ProductID: withMedia, CreatorID: products[0].CreatorID, Title: "drop",
		StartsAt: time.Now().Add(time.Hour), EndsAt: time.Now().Add(2 * time.Hour), Stock: 10, PerUserLimit: 2})
	if err != nil {
		t.Fatal(err)
	}

	for round := range 2 { // cold, then through Redis
		before := e.db.Statements.Load()
		l := loaders.New(e.db, e.cache, loaders.WithWait(proofWait))
		a, b := l.MediaByProduct.Load(ctx, withMedia), l.MediaByProduct.Load(ctx, without)
		list, err := a()
		if err != nil || len(list) != 2 || list[0].ByteSize != 1 || list[1].ByteSize != 2 {
			t.Fatalf("round %d: media of product = %+v, %v", round, list, err)
		}
		if empty, err := b(); err != nil || len(empty) != 0 {
			t.Fatalf("round %d: media of a product without = %+v, %v", round, empty, err)
		}
		if n := e.db.Statements.Load() - before; n != int64(1-round) {
			t.Fatalf("round %d: media lists of 2 products took %d statements", round, n)
		}
		m, err := l.Media.Load(ctx, first.ID)()
		if err != nil || m == nil || m.Key != first.Key {
			t.Fatalf("media by id = %+v, %v", m, err)
		}
	}

	// A new upload evicts the product's list.
	up := &domain.Media{ProductID: without, Key: "products/x/new.png", ContentType: "image/png", ByteSize: 9}
	if err := e.db.CreateMedia(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Evict(ctx, cache.KindProductMedia, without); err != nil {
		t.Fatal(err)
	}
	if list, err := loaders.New(e.db, e.cache).MediaByProduct.Load(ctx, without)(); err != nil || len(list) != 1 {
		t.Fatalf("media after an upload = %+v, %v", list, err)
	}

	l := loaders.New(e.db, e.cache)
	gotDrop, err := l.Drops.Load(ctx, d.ID)()
	if err != nil || gotDrop == nil || gotDrop.Title != "drop" {
		t.Fatalf("drop = %+v, %v", gotDrop, err)
	}
	stock, err := l.Stocks.Load(ctx, d.ID)()
	if err != nil || stock == nil || stock.Total != 10 || stock.Available != 10 {
		t.Fatalf("stock = %+v, %v", stock, err)
	}
	if p, err := l.PaymentByOrder.Load(ctx, 42)(); p != nil || err != nil {
		t.Fatalf("payment of an unknown order = %+v, %v", p, err)
	}
}

func TestMiddlewareGivesEachRequestItsOwnLoaders(t *testing.T) {
	e := setup(t)
	var seen []*loaders.Loaders
	h := loaders.Middleware(e.db, e.cache)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, loaders.For(r.Context()))
	}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/query", nil))
	}
	if len(seen) != 2 || seen[0] == nil || seen[0] == seen[1] {
		t.Fatalf("loaders per request: %v", seen)
	}

	// Within one request a row reads the same throughout; on a subscription
	// stream each load reads the current row.
	ctx := context.Background()
	id := e.products(t, "mw", 1)[0]
	for _, tc := range []struct {
		name   string
		header string
		value  string
		fresh  bool
	}{
		{"query", "Accept", "application/json", false},
		{"sse", "Accept", "text/event-stream", true},
		{"websocket", "Upgrade", "websocket", true},
	} {
		var l *loaders.Loaders
		h := loaders.Middleware(e.db, e.cache)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l = loaders.For(r.Context())
		}))
		req := httptest.NewRequest(http.MethodGet, "/query", nil)
		req.Header.Set(tc.header, tc.value)
		h.ServeHTTP(httptest.NewRecorder(), req)
		before, err := l.Products.Load(ctx, id)()
		if err != nil {
			t.Fatal(err)
		}
		changed := *before
		changed.Title = before.Title + " " + tc.name
		if err := e.db.UpdateProduct(ctx, &changed); err != nil {
			t.Fatal(err)
		}
		if err := e.cache.Evict(ctx, cache.KindProduct, id); err != nil {
			t.Fatal(err)
		}
		after, err := l.Products.Load(ctx, id)()
		if err != nil {
			t.Fatal(err)
		}
		if got := after.Title == changed.Title; got != tc.fresh {
			t.Fatalf("%s: second load read %q after the change to %q (fresh %v, want %v)", tc.name, after.Title, changed.Title, got, tc.fresh)
		}
	}

	l := loaders.New(e.db, e.cache)
	if loaders.For(loaders.WithLoaders(context.Background(), l)) != l {
		t.Fatal("WithLoaders/For do not round-trip")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("For without loaders did not panic")
		}
	}()
	loaders.For(context.Background())
}
