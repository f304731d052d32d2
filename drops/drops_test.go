package drops_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/drops"
	"livedrops/orders"
	"livedrops/orders/orderstest"
	"livedrops/store"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := domain.ErrorCode(err); err == nil || got != code {
		t.Fatalf("want %s, got %v (%s)", code, err, got)
	}
}

func newService(t *testing.T) (*orderstest.World, *drops.Service, *orders.Gate) {
	w := orderstest.New(t)
	gate := orders.NewGate(w.Redis, w.Prefix)
	t.Cleanup(func() { gate.Close() })
	return w, drops.New(w.DB, gate), gate
}

func TestScheduleValidates(t *testing.T) {
	w, svc, _ := newService(t)
	ctx := context.Background()
	now := w.Clock.Now()
	good := drops.ScheduleInput{ProductID: w.Product.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Stock: 10, PerUserLimit: 2}
	for _, tc := range []struct {
		name  string
		edit  func(*drops.ScheduleInput)
		field string
	}{
		{"ends before start", func(in *drops.ScheduleInput) { in.EndsAt = in.StartsAt.Add(-time.Minute) }, "endsAt"},
		{"ends at start", func(in *drops.ScheduleInput) { in.EndsAt = in.StartsAt }, "endsAt"},
		{"ended already", func(in *drops.ScheduleInput) {
			in.StartsAt, in.EndsAt = now.Add(-2*time.Hour), now.Add(-time.Hour)
		}, "endsAt"},
		{"no start", func(in *drops.ScheduleInput) { in.StartsAt = time.Time{} }, "startsAt"},
		{"no stock", func(in *drops.ScheduleInput) { in.Stock = 0 }, "stock"},
		{"too much stock", func(in *drops.ScheduleInput) { in.Stock = drops.MaxStock + 1 }, "stock"},
		{"no limit", func(in *drops.ScheduleInput) { in.PerUserLimit = 0 }, "perUserLimit"},
		{"limit too high", func(in *drops.ScheduleInput) { in.PerUserLimit = 1001 }, "perUserLimit"},
		{"long title", func(in *drops.ScheduleInput) { in.Title = strings.Repeat("é", 201) }, "title"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			tc.edit(&in)
			_, err := svc.Schedule(ctx, w.Seller.ID, in)
			wantCode(t, err, domain.BadUserInput)
			if f := err.(*domain.Error).Field; f != tc.field {
				t.Fatalf("field %q, want %q", f, tc.field)
			}
		})
	}

	stranger := w.User(t, "stranger")
	_, err := svc.Schedule(ctx, stranger.ID, good)
	wantCode(t, err, domain.Forbidden)
	missing := good
	missing.ProductID = 999999
	_, err = svc.Schedule(ctx, w.Seller.ID, missing)
	wantCode(t, err, domain.NotFound)
}

func TestScheduleWritesDropInventoryEventAndAudit(t *testing.T) {
	w, svc, gate := newService(t)
	ctx := context.Background()
	now := w.Clock.Now()
	d, err := svc.Schedule(ctx, w.Seller.ID, drops.ScheduleInput{
		ProductID: w.Product.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Stock: 25, PerUserLimit: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != domain.DropScheduled || d.Title != w.Product.Title || d.CreatorID != w.Creator.ID || d.PerUserLimit != 3 {
		t.Fatalf("drop %+v", d)
	}
	if s := w.Stock(t, d.ID); s != (domain.Stock{DropID: d.ID, Total: 25, Available: 25}) {
		t.Fatalf("stock %+v", s)
	}
	if got := w.Events(t, orderstest.DropKey(d.ID)); len(got) != 1 || got[0] != domain.EventDropScheduled {
		t.Fatalf("events %v", got)
	}
	var audits int
	if err := w.DB.GetContext(ctx, &audits, `SELECT count(*) FROM audit_log
		WHERE action = 'drop.schedule' AND entity_id = $1 AND actor = $2`, d.ID, "user:"+itoa(w.Seller.ID)); err != nil || audits != 1 {
		t.Fatalf("audit rows %d, %v", audits, err)
	}
	if n, ok, err := gate.Counter(ctx, d.ID); err != nil || !ok || n != 25 {
		t.Fatalf("gate counter %d %v %v", n, ok, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLifecycleTransitions(t *testing.T) {
	w, svc, gate := newService(t)
	ctx := context.Background()
	stranger := w.User(t, "stranger")
	d := w.ScheduledDrop(t, 10, 1)
	key := orderstest.DropKey(d.ID)

	_, err := svc.Start(ctx, stranger.ID, d.ID)
	wantCode(t, err, domain.Forbidden)
	_, err = svc.End(ctx, w.Seller.ID, d.ID)
	wantCode(t, err, domain.Conflict)
	_, err = svc.Start(ctx, w.Seller.ID, 424242)
	wantCode(t, err, domain.NotFound)

	started, err := svc.Start(ctx, w.Seller.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.Status != domain.DropLive || started.StartsAt.After(w.Clock.Now()) {
		t.Fatalf("started %+v (now %v)", started, w.Clock.Now())
	}
	if n, ok, _ := gate.Counter(ctx, d.ID); !ok || n != 10 {
		t.Fatalf("gate counter after start %d %v", n, ok)
	}
	_, err = svc.Start(ctx, w.Seller.ID, d.ID)
	wantCode(t, err, domain.Conflict)
	if !strings.Contains(err.Error(), "LIVE") {
		t.Fatalf("conflict message should name the status: %v", err)
	}

	_, err = svc.End(ctx, stranger.ID, d.ID)
	wantCode(t, err, domain.Forbidden)
	ended, err := svc.End(ctx, w.Seller.ID, d.ID)
	if err != nil || ended.Status != domain.DropEnded {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if _, ok, _ := gate.Counter(ctx, d.ID); ok {
		t.Fatal("gate counter should be gone once the drop ended")
	}
	_, err = svc.End(ctx, w.Seller.ID, d.ID)
	wantCode(t, err, domain.Conflict)
	_, err = svc.Cancel(ctx, w.Seller.ID, d.ID)
	wantCode(t, err, domain.Conflict)
	_, err = svc.Restock(ctx, w.Seller.ID, d.ID, 5)
	wantCode(t, err, domain.Conflict)

	want := []string{domain.EventDropScheduled, domain.EventDropStarted, domain.EventDropEnded}
	if got := w.Events(t, key); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}

	other := w.ScheduledDrop(t, 10, 1)
	_, err = svc.Cancel(ctx, stranger.ID, other.ID)
	wantCode(t, err, domain.Forbidden)
	cancelled, err := svc.Cancel(ctx, w.Seller.ID, other.ID)
	if err != nil || cancelled.Status != domain.DropCancelled {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	_, err = svc.Start(ctx, w.Seller.ID, other.ID)
	wantCode(t, err, domain.Conflict)
	if n := w.CountEvents(t, orderstest.DropKey(other.ID), domain.EventDropCancelled); n != 1 {
		t.Fatalf("%d DropCancelled events", n)
	}
}

func TestStartAfterWindowIsRefused(t *testing.T) {
	w, svc, _ := newService(t)
	d := w.ScheduledDrop(t, 10, 1)
	w.Clock.Advance(4 * time.Hour)
	_, err := svc.Start(context.Background(), w.Seller.ID, d.ID)
	wantCode(t, err, domain.Conflict)
}

func TestConcurrentStartsHappenOnce(t *testing.T) {
	w, svc, _ := newService(t)
	d := w.ScheduledDrop(t, 10, 1)
	var mu sync.Mutex
	ok := 0
	orderstest.Concurrently(8, func(int) {
		if _, err := svc.Start(context.Background(), w.Seller.ID, d.ID); err == nil {
			mu.Lock()
			ok++
			mu.Unlock()
		} else if domain.ErrorCode(err) != domain.Conflict {
			t.Errorf("start: %v", err)
		}
	})
	if ok != 1 || w.CountEvents(t, orderstest.DropKey(d.ID), domain.EventDropStarted) != 1 {
		t.Fatalf("%d starts succeeded, %d DropStarted events", ok, w.CountEvents(t, orderstest.DropKey(d.ID), domain.EventDropStarted))
	}
}

func TestRestock(t *testing.T) {
	w, svc, gate := newService(t)
	ctx := context.Background()
	d := w.LiveDrop(t, 2, 2)
	if err := gate.Load(ctx, d.ID, 2); err != nil {
		t.Fatal(err)
	}
	// Sell out through the store so the drop is SOLD_OUT.
	buyer := w.User(t, "buyer")
	osvc := orders.New(w.DB, gate, nil, nil, w.Config)
	if _, err := osvc.PlaceOrder(ctx, buyer.ID, d.ID, 2, "k1"); err != nil {
		t.Fatal(err)
	}
	if got := w.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("status %s, want SOLD_OUT", got)
	}

	stranger := w.User(t, "stranger")
	_, err := svc.Restock(ctx, stranger.ID, d.ID, 5)
	wantCode(t, err, domain.Forbidden)
	_, err = svc.Restock(ctx, w.Seller.ID, d.ID, 0)
	wantCode(t, err, domain.BadUserInput)
	_, err = svc.Restock(ctx, w.Seller.ID, d.ID, drops.MaxStock)
	wantCode(t, err, domain.BadUserInput)

	back, err := svc.Restock(ctx, w.Seller.ID, d.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if back.Status != domain.DropLive {
		t.Fatalf("restocked drop is %s, want LIVE", back.Status)
	}
	if s := w.CheckBalance(t, d.ID); s.Total != 7 || s.Available != 5 || s.Reserved != 2 {
		t.Fatalf("stock %+v", s)
	}
	if n, _, _ := gate.Counter(ctx, d.ID); n != 5 {
		t.Fatalf("gate counter %d, want 5", n)
	}

	// Internal adjustments may shrink, never below what is available.
	_, _, err = svc.Adjust(ctx, d.ID, -6)
	wantCode(t, err, domain.Conflict)
	_, s, err := svc.Adjust(ctx, d.ID, -5)
	if err != nil || s.Available != 0 || s.Total != 2 {
		t.Fatalf("shrink: %+v %v", s, err)
	}
	if got := w.DropNow(t, d.ID).Status; got != domain.DropSoldOut {
		t.Fatalf("status %s after shrinking to nothing, want SOLD_OUT", got)
	}
	if n, _, _ := gate.Counter(ctx, d.ID); n != 0 {
		t.Fatalf("gate counter %d, want 0", n)
	}
	_, _, err = svc.Adjust(ctx, 999999, 1)
	wantCode(t, err, domain.NotFound)
}

func TestSchedulerStartsAndEndsByTheClock(t *testing.T) {
	w, svc, gate := newService(t)
	ctx := context.Background()
	d := w.ScheduledDrop(t, 10, 1) // starts in 1h, ends in 3h
	sched := drops.NewScheduler(w.DB, svc, nil)

	if s, e, err := sched.Tick(ctx); err != nil || s+e != 0 {
		t.Fatalf("early tick moved %d/%d: %v", s, e, err)
	}
	w.Clock.Advance(time.Hour)
	if s, e, err := sched.Tick(ctx); err != nil || s != 1 || e != 0 {
		t.Fatalf("tick at start moved %d/%d: %v", s, e, err)
	}
	if got := w.DropNow(t, d.ID).Status; got != domain.DropLive {
		t.Fatalf("status %s", got)
	}
	if n, ok, _ := gate.Counter(ctx, d.ID); !ok || n != 10 {
		t.Fatalf("gate counter %d %v", n, ok)
	}
	w.Clock.Advance(2 * time.Hour)
	if s, e, err := sched.Tick(ctx); err != nil || s != 0 || e != 1 {
		t.Fatalf("tick at end moved %d/%d: %v", s, e, err)
	}
	if got := w.DropNow(t, d.ID).Status; got != domain.DropEnded {
		t.Fatalf("status %s", got)
	}
	if _, ok, _ := gate.Counter(ctx, d.ID); ok {
		t.Fatal("gate counter left behind")
	}

	// A drop whose whole window passed while no scheduler ran ends unstarted.
	missed := w.ScheduledDrop(t, 10, 1)
	w.Clock.Advance(5 * time.Hour)
	if s, e, err := sched.Tick(ctx); err != nil || s != 0 || e != 1 {
		t.Fatalf("tick after a missed window moved %d/%d: %v", s, e, err)
	}
	if got := w.Events(t, orderstest.DropKey(missed.ID)); strings.Join(got, ",") != "DropScheduled,DropEnded" {
		t.Fatalf("events of the missed drop %v", got)
	}
}

func TestConcurrentSchedulersStartEachDropOnce(t *testing.T) {
	w, svc, _ := newService(t)
	ctx := context.Background()
	const n = 40
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = w.ScheduledDrop(t, 5, 1).ID
	}
	w.Clock.Advance(time.Hour)
	var mu sync.Mutex
	total := 0
	orderstest.Concurrently(4, func(int) {
		s := drops.NewScheduler(w.DB, svc, nil)
		s.Batch = 7
		started, _, err := s.Tick(ctx)
		if err != nil {
			t.Errorf("tick: %v", err)
		}
		mu.Lock()
		total += started
		mu.Unlock()
	})
	if total != n {
		t.Fatalf("schedulers reported %d starts, want %d", total, n)
	}
	for _, id := range ids {
		if c := w.CountEvents(t, orderstest.DropKey(id), domain.EventDropStarted); c != 1 {
			t.Fatalf("drop %d has %d DropStarted events", id, c)
		}
		if got := w.DropNow(t, id).Status; got != domain.DropLive {
			t.Fatalf("drop %d is %s", id, got)
		}
	}
}

func TestDropLists(t *testing.T) {
	w, _, _ := newService(t)
	ctx := context.Background()
	var live []int64
	for i := 0; i < 8; i++ {
		if i%3 == 0 {
			live = append(live, w.LiveDrop(t, 5, 1).ID)
		} else {
			w.ScheduledDrop(t, 5, 1)
		}
		w.Clock.Advance(time.Minute) // distinct start and end times
	}
	first := func(n int) store.PageArgs {
		p, err := store.NewPageArgs(&n, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	walk := func(list func(store.PageArgs) (store.Page[domain.Drop], error)) []int64 {
		var got []int64
		p := first(2)
		for {
			pg, err := list(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range pg.Items {
				got = append(got, d.ID)
			}
			if !pg.HasNext {
				return got
			}
			after := pg.Cursors[len(pg.Cursors)-1]
			two := 2
			if p, err = store.NewPageArgs(&two, nil, &after, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := walk(func(p store.PageArgs) (store.Page[domain.Drop], error) { return w.DB.Drops(ctx, nil, p) })
	if len(all) != 8 {
		t.Fatalf("all drops %v", all)
	}
	status := domain.DropLive
	gotLive := walk(func(p store.PageArgs) (store.Page[domain.Drop], error) { return w.DB.Drops(ctx, &status, p) })
	if len(gotLive) != len(live) {
		t.Fatalf("live drops by status %v, want %v", gotLive, live)
	}
	liveNow := walk(func(p store.PageArgs) (store.Page[domain.Drop], error) { return w.DB.LiveDrops(ctx, p) })
	if fmtIDs(liveNow) != fmtIDs(live) {
		t.Fatalf("live drops %v, want %v (soonest ending first)", liveNow, live)
	}
	byCreator := walk(func(p store.PageArgs) (store.Page[domain.Drop], error) {
		return w.DB.DropsByCreator(ctx, w.Creator.ID, nil, p)
	})
	byProduct := walk(func(p store.PageArgs) (store.Page[domain.Drop], error) {
		return w.DB.DropsByProduct(ctx, w.Product.ID, p)
	})
	if fmtIDs(byCreator) != fmtIDs(all) || fmtIDs(byProduct) != fmtIDs(all) {
		t.Fatalf("by creator %v, by product %v, all %v", byCreator, byProduct, all)
	}
	// Backwards from the end gives the same order.
	two := 2
	var back []int64
	var before *string
	for {
		p, err := store.NewPageArgs(nil, &two, nil, before)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := w.DB.Drops(ctx, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int64{}
		for _, d := range pg.Items {
			ids = append(ids, d.ID)
		}
		back = append(ids, back...)
		if !pg.HasPrev {
			break
		}
		before = &pg.Cursors[0]
	}
	if fmtIDs(back) != fmtIDs(all) {
		t.Fatalf("backwards %v, forwards %v", back, all)
	}
	stocks, err := w.DB.StocksByDropIDs(ctx, all)
	if err != nil || len(stocks) != len(all) {
		t.Fatalf("stocks %v %v", stocks, err)
	}
}

func fmtIDs(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(id))
	}
	return b.String()
}
