// Package orderstest builds the world the selling tests need on real
// services: a fresh migrated database with a hand-moved clock, a Redis key
// prefix, a seller with a product, buyers, and drops in any state.
package orderstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store"
	"livedrops/store/storetest"
)

// Clock is a clock tests move by hand; safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// World is one test's slice of the real services and its cast.
type World struct {
	DB     *store.DB
	Clock  *Clock
	Redis  redis.UniversalClient
	Prefix string
	Config *config.Config
	// Seller owns Creator, which sells Product (12.50 EUR).
	Seller  *domain.User
	Creator *domain.Creator
	Product *domain.Product
}

// New returns a fresh world; everything in it is removed when the test ends.
func New(t testing.TB) *World {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	clock := &Clock{t: time.Now().UTC().Truncate(time.Second)}
	db.Now = clock.Now

	redisURL, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("parse Redis URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })

	cfg := &config.Config{RedisPrefix: prefix, ReservationTTL: 10 * time.Minute, OrderRatePerMinute: 1000}
	w := &World{DB: db, Clock: clock, Redis: rdb, Prefix: prefix, Config: cfg}
	w.Seller = w.User(t, "seller")
	if w.Creator, err = db.CreateCreator(ctx, w.Seller.ID, "Seller", ""); err != nil {
		t.Fatalf("create creator: %v", err)
	}
	w.Product = w.NewProduct(t, w.Creator.ID, "Sneaker")
	return w
}

// User creates a user (with a dummy password hash: no test needs to log in).
func (w *World) User(t testing.TB, handle string) *domain.User {
	t.Helper()
	u, err := w.DB.CreateUser(context.Background(), handle, handle, "dummy-hash")
	if err != nil {
		t.Fatalf("create user %s: %v", handle, err)
	}
	return u
}

// Buyers creates n users and returns their ids.
func (w *World) Buyers(t testing.TB, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = w.User(t, fmt.Sprintf("buyer%d", i)).ID
	}
	return ids
}

// NewProduct creates a product of the creator at 12.50 EUR.
func (w *World) NewProduct(t testing.TB, creatorID int64, title string) *domain.Product {
	t.Helper()
	p := &domain.Product{CreatorID: creatorID, Title: title, PriceCents: 1250, Currency: "EUR"}
	if err := w.DB.CreateProduct(context.Background(), p); err != nil {
		t.Fatalf("create product: %v", err)
	}
	return p
}

// ScheduledDrop schedules a drop of the world's product starting in an hour
// and lasting two.
func (w *World) ScheduledDrop(t testing.TB, stock, perUserLimit int) *domain.Drop {
	t.Helper()
	now := w.Clock.Now()
	d, err := w.DB.CreateDrop(context.Background(), store.NewDrop{
		ProductID: w.Product.ID, CreatorID: w.Creator.ID, Title: "Drop",
		StartsAt: now.Add(time.Hour), EndsAt: now.Add(3 * time.Hour),
		Stock: stock, PerUserLimit: perUserLimit, ActorID: w.Seller.ID,
	})
	if err != nil {
		t.Fatalf("schedule drop: %v", err)
	}
	return d
}

// LiveDrop schedules a drop and starts it now (in the store only: no gate counter).
func (w *World) LiveDrop(t testing.TB, stock, perUserLimit int) *domain.Drop {
	t.Helper()
	d := w.ScheduledDrop(t, stock, perUserLimit)
	d, err := w.DB.TransitionDrop(context.Background(), store.DropTransition{
		DropID: d.ID, From: []domain.DropStatus{domain.DropScheduled}, To: domain.DropLive,
		Event: domain.EventDropStarted, Action: "drop.start", Refusal: "not scheduled",
	})
	if err != nil {
		t.Fatalf("start drop: %v", err)
	}
	return d
}

// Stock returns the drop's inventory as PostgreSQL has it.
func (w *World) Stock(t testing.TB, dropID int64) domain.Stock {
	t.Helper()
	ss, err := w.DB.StocksByDropIDs(context.Background(), []int64{dropID})
	if err != nil || len(ss) != 1 {
		t.Fatalf("read stock of drop %d: %v (%d rows)", dropID, err, len(ss))
	}
	return ss[0]
}

// DropNow returns the drop as PostgreSQL has it.
func (w *World) DropNow(t testing.TB, dropID int64) domain.Drop {
	t.Helper()
	ds, err := w.DB.DropsByIDs(context.Background(), []int64{dropID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("read drop %d: %v (%d rows)", dropID, err, len(ds))
	}
	return ds[0]
}

// CheckBalance fails the test unless the drop's inventory balances and its
// orders account for exactly its reserved and sold units.
func (w *World) CheckBalance(t testing.TB, dropID int64) domain.Stock {
	t.Helper()
	s := w.Stock(t, dropID)
	if s.Available < 0 || s.Available+s.Reserved+s.Sold != s.Total {
		t.Fatalf("inventory of drop %d does not balance: %+v", dropID, s)
	}
	var held struct {
		Pending   int `db:"pending"`
		Confirmed int `db:"confirmed"`
	}
	err := w.DB.GetContext(context.Background(), &held, `SELECT
		COALESCE(SUM(quantity) FILTER (WHERE status = 'PENDING_PAYMENT'), 0) AS pending,
		COALESCE(SUM(quantity) FILTER (WHERE status = 'CONFIRMED'), 0) AS confirmed
		FROM orders WHERE drop_id = $1`, dropID)
	if err != nil {
		t.Fatalf("sum orders of drop %d: %v", dropID, err)
	}
	if held.Pending != s.Reserved || held.Confirmed != s.Sold {
		t.Fatalf("drop %d: orders hold %d pending and %d confirmed, inventory says reserved %d sold %d",
			dropID, held.Pending, held.Confirmed, s.Reserved, s.Sold)
	}
	return s
}

// Events returns the types of the outbox events with key, in order.
func (w *World) Events(t testing.TB, key string) []string {
	t.Helper()
	var types []string
	if err := w.DB.SelectContext(context.Background(), &types,
		`SELECT type FROM outbox WHERE key = $1 ORDER BY id`, key); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return types
}

// CountEvents returns how many outbox events of type typ have key.
func (w *World) CountEvents(t testing.TB, key, typ string) int {
	t.Helper()
	n := 0
	for _, e := range w.Events(t, key) {
		if e == typ {
			n++
		}
	}
	return n
}

// DropKey is the outbox key of the drop's events.
func DropKey(dropID int64) string { return fmt.Sprintf("drop:%d", dropID) }

// Concurrently runs f(0..n-1) on n goroutines released together, and waits.
func Concurrently(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}
