package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
)

var eventSeq atomic.Int64

func event(t testing.TB, typ string, payload any) domain.Event {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return domain.Event{ID: fmt.Sprintf("ev-%d", eventSeq.Add(1)), Type: typ, OccurredAt: time.Now().UTC(),
		Key: "drop", Payload: raw}
}

// stockEvent is a stock event of drop 1 of creator 7 with the given
// available count (of 1,000) and inventory version.
func stockEvent(t testing.TB, typ string, dropID int64, available int, version int64) domain.Event {
	return event(t, typ, domain.StockPayload{DropID: dropID, CreatorID: 7, Total: 1000,
		Available: available, Reserved: 1000 - available, Version: version})
}

func dropEvent(t testing.TB, typ string, dropID int64) domain.Event {
	return event(t, typ, domain.DropPayload{DropID: dropID, CreatorID: 7})
}

// snapshots is a DropSnapshot serving fixed states, LIVE with all 1,000
// units and version 1 unless set.
type snapshots struct {
	mu     sync.Mutex
	states map[int64]DropUpdate
	// gate, when set, is waited on before answering.
	gate chan struct{}
}

func (s *snapshots) read(ctx context.Context, dropID int64) (DropUpdate, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return DropUpdate{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.states[dropID]; ok {
		return u, nil
	}
	if dropID < 0 {
		return DropUpdate{}, domain.Errorf(domain.NotFound, "drop not found")
	}
	return DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: 1000, Available: 1000}, Version: 1}, nil
}

func (s *snapshots) set(dropID int64, u DropUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.states == nil {
		s.states = map[int64]DropUpdate{}
	}
	s.states[dropID] = u
}

func newTestHub(t testing.TB, opts Options) (*Hub, *snapshots) {
	t.Helper()
	snaps := &snapshots{}
	if opts.DropSnapshot == nil {
		opts.DropSnapshot = snaps.read
	}
	if opts.OrderSnapshot == nil {
		opts.OrderSnapshot = func(ctx context.Context, id int64) (domain.Order, error) {
			return domain.Order{Status: domain.OrderPendingPayment}, nil
		}
	}
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	t.Cleanup(h.Close)
	return h, snaps
}

func handle(t testing.TB, h *Hub, evs ...domain.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := h.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle %s: %v", ev.Type, err)
		}
	}
}

// next reads one update or fails after a while.
func next[T any](t testing.TB, s *Sub[T]) T {
	t.Helper()
	select {
	case v, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription ended (err %v), want an update", s.Err())
		}
		return v
	case <-time.After(2 * time.Second):
		t.Fatalf("no update within 2s")
	}
	panic("unreachable")
}

// closed waits for C to be closed, failing on any update.
func closed[T any](t testing.TB, s *Sub[T]) {
	t.Helper()
	select {
	case v, ok := <-s.C():
		if ok {
			t.Fatalf("got %+v, want the subscription ended", v)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("subscription not ended within 2s")
	}
}

// quiet checks that nothing arrives for a while.
func quiet[T any](t testing.TB, s *Sub[T], d time.Duration) {
	t.Helper()
	select {
	case v, ok := <-s.C():
		t.Fatalf("got %+v (open %v), want nothing", v, ok)
	case <-time.After(d):
	}
}

func TestDropFirstUpdateIsSnapshot(t *testing.T) {
	h, snaps := newTestHub(t, Options{})
	snaps.set(1, DropUpdate{Status: domain.DropSoldOut, Stock: domain.Stock{Total: 5, Sold: 5}, Version: 9})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	u := next(t, s)
	if u.DropID != 1 || u.Status != domain.DropSoldOut || u.Stock.Sold != 5 || u.Stock.DropID != 1 || u.Version != 9 || u.Event != "" {
		t.Fatalf("first update %+v, want the snapshot", u)
	}
	if _, err := h.SubscribeDrop(context.Background(), -1); domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("unknown drop: %v, want NOT_FOUND", err)
	}
	h.lock()
	_, kept := h.drops[-1]
	h.unlock()
	if kept {
		t.Fatalf("a failed subscription left its topic behind")
	}
}

func TestStockIsConflated(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: 50 * time.Millisecond})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, s); u.Version != 1 {
		t.Fatalf("first update %+v", u)
	}
	start := time.Now()
	const burst = 1000
	for i := 1; i <= burst; i++ {
		handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 1000-i, int64(1+i)))
	}
	burstTook := time.Since(start)
	var got []*DropUpdate
	for {
		u := next(t, s)
		got = append(got, u)
		if u.Version == burst+1 {
			break
		}
	}
	last := int64(1)
	for _, u := range got {
		if u.Version <= last {
			t.Fatalf("update version %d after %d: stale or repeated", u.Version, last)
		}
		if u.Stock.Available != 1000-int(u.Version-1) {
			t.Fatalf("update %+v: stock does not match its version", u)
		}
		last = u.Version
	}
	// One update at once, then one per interval at most.
	if max := 3 + int(burstTook/(50*time.Millisecond)); len(got) > max {
		t.Fatalf("%d updates for a burst of %d taking %v, want at most %d", len(got), burst, burstTook, max)
	}
	if got[len(got)-1].Stock.Available != 0 {
		t.Fatalf("final stock %+v", got[len(got)-1].Stock)
	}
	quiet(t, s, 120*time.Millisecond)
	t.Logf("burst of %d stock events in %v: %d updates", burst, burstTook, len(got))
}

func TestStockSpacedByInterval(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: 40 * time.Millisecond})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s)
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 999, 2))
	first := next(t, s)
	firstAt := time.Now()
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 998, 3))
	second := next(t, s)
	gap := time.Since(firstAt)
	if first.Version != 2 || second.Version != 3 {
		t.Fatalf("updates %d, %d; want versions 2, 3", first.Version, second.Version)
	}
	if gap < 30*time.Millisecond {
		t.Fatalf("second stock update %v after the first, want about the 40ms interval", gap)
	}
}

func TestLifecycleNeverDropped(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: time.Hour, QueueSize: 16})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads yet: the snapshot sits in the slot.
	handle(t, h,
		stockEvent(t, domain.EventStockChanged, 1, 950, 2),
		stockEvent(t, domain.EventStockChanged, 1, 90, 3),
		stockEvent(t, domain.EventStockLow, 1, 90, 3),
		stockEvent(t, domain.EventStockChanged, 1, 10, 4),
		stockEvent(t, domain.EventStockChanged, 1, 0, 5),
		stockEvent(t, domain.EventSoldOut, 1, 0, 5),
		stockEvent(t, domain.EventStockChanged, 1, 20, 6),
		dropEvent(t, domain.EventDropEnded, 1),
	)
	var got []string
	for u := range s.C() {
		got = append(got, fmt.Sprintf("%s/%s/%d/v%d", u.Event, u.Status, u.Stock.Available, u.Version))
	}
	// The unread snapshot was replaced by StockLow (stock is conflated, even
	// with an interval of an hour); every lifecycle event came through, each
	// with the stock of its moment; the drop's end completed the subscription.
	want := fmt.Sprint([]string{
		"StockLow/LIVE/90/v3",
		"SoldOut/SOLD_OUT/0/v5",
		"DropEnded/ENDED/20/v6",
	})
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err after completion: %v", err)
	}
}

func TestRestockAfterSoldOutIsLiveAgain(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: time.Millisecond})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s)
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 0, 2), stockEvent(t, domain.EventSoldOut, 1, 0, 2))
	if u := next(t, s); u.Status != domain.DropSoldOut {
		t.Fatalf("after SoldOut: %+v", u)
	}
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 5, 3))
	if u := next(t, s); u.Status != domain.DropLive || u.Stock.Available != 5 {
		t.Fatalf("after restock: %+v", u)
	}
	// A status carried by the event wins over the inference.
	handle(t, h, event(t, domain.EventStockChanged, domain.StockPayload{DropID: 1, Total: 1000, Available: 4,
		Version: 4, Status: domain.DropSoldOut}))
	if u := next(t, s); u.Status != domain.DropSoldOut || u.Stock.Available != 4 {
		t.Fatalf("after a stock event with a status: %+v", u)
	}
}

func TestNeverReadingSubscriberDelaysNoOne(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: 20 * time.Millisecond, QueueSize: 4})
	stuck, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	stuckUser, err := h.SubscribeUser(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	next(t, reader)

	var delays []time.Duration
	for i := 2; i < 200; i++ {
		sent := time.Now()
		handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 1000-i, int64(i)))
		if i%20 == 0 {
			handle(t, h, stockEvent(t, domain.EventStockLow, 1, 1000-i, int64(i)))
		}
		for {
			u := next(t, reader)
			if u.Version == int64(i) {
				break
			}
		}
		delays = append(delays, time.Since(sent))
	}
	slices.Sort(delays)
	p50, p95, worst := delays[len(delays)/2], delays[len(delays)*95/100], delays[len(delays)-1]
	t.Logf("delay to the reading subscriber with a stuck one on the same drop: p50 %v, p95 %v, max %v", p50, p95, worst)
	// The stock interval is 20ms; the margins are for a loaded machine.
	if p95 > 100*time.Millisecond || worst > 500*time.Millisecond {
		t.Fatalf("updates reached the reading subscriber in p95 %v, max %v; want p95 within 100ms", p95, worst)
	}
	// The stuck one kept only the newest state and, past its queue of
	// lifecycle updates, was ended rather than let grow.
	closed := func() bool {
		h.lock()
		defer h.unlock()
		return stuck.ended
	}
	if !closed() || !errors.Is(stuck.Err(), ErrSlowConsumer) {
		t.Fatalf("stuck subscriber ended %v with %v, want ErrSlowConsumer", closed(), stuck.Err())
	}
	if len(stuckUser.C()) != 0 || stuckUser.Err() != nil {
		t.Fatalf("an unrelated subscriber was touched")
	}
}

func TestSlowLifecycleConsumerIsDisconnected(t *testing.T) {
	var slowKinds []string
	var mu sync.Mutex
	h, _ := newTestHub(t, Options{QueueSize: 4, OnSlowConsumer: func(ctx context.Context, kind string) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Value(ctxKey{}) != "mine" {
			t.Errorf("OnSlowConsumer got another context")
		}
		slowKinds = append(slowKinds, kind)
	}})
	ctx := context.WithValue(context.Background(), ctxKey{}, "mine")
	s, err := h.SubscribeCreators(ctx, []int64{7, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.SubscribeCreators(context.Background(), []int64{7})
	if err != nil {
		t.Fatal(err)
	}
	// One in the slot, four queued: still subscribed.
	for i := int64(1); i <= 5; i++ {
		handle(t, h, dropEvent(t, domain.EventDropScheduled, i))
		if e := next(t, fast); e.DropID != i || e.Kind != DropEventScheduled || e.CreatorID != 7 {
			t.Fatalf("fast subscriber got %+v", e)
		}
	}
	if s.Err() != nil {
		t.Fatalf("ended early: %v", s.Err())
	}
	handle(t, h, dropEvent(t, domain.EventDropScheduled, 6))
	// What was in the slot is still read, then the end.
	if e := next(t, s); e.DropID != 1 {
		t.Fatalf("slot held %+v", e)
	}
	closed(t, s)
	if !errors.Is(s.Err(), ErrSlowConsumer) {
		t.Fatalf("Err %v, want ErrSlowConsumer", s.Err())
	}
	mu.Lock()
	if fmt.Sprint(slowKinds) != "[creators]" {
		t.Fatalf("OnSlowConsumer calls: %v", slowKinds)
	}
	mu.Unlock()
	if e := next(t, fast); e.DropID != 6 {
		t.Fatalf("fast subscriber got %+v", e)
	}
	h.lock()
	n7, n8 := len(h.creators[7]), len(h.creators[8])
	h.unlock()
	if n7 != 1 || n8 != 0 {
		t.Fatalf("routes left: creator 7 has %d subscribers, 8 has %d; want 1 and 0", n7, n8)
	}
}

type ctxKey struct{}

func TestQueuedUpdatesFlowToASlowReader(t *testing.T) {
	h, _ := newTestHub(t, Options{QueueSize: 100})
	s, err := h.SubscribeCreators(context.Background(), []int64{7})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 50; i++ {
		handle(t, h, dropEvent(t, domain.EventDropStarted, i))
	}
	for i := int64(1); i <= 50; i++ {
		if e := next(t, s); e.DropID != i || e.Kind != DropEventStarted {
			t.Fatalf("event %d: %+v", i, e)
		}
		time.Sleep(time.Millisecond)
	}
	quiet(t, s, 20*time.Millisecond)
}

func TestDropCompletesOnEndAndCancel(t *testing.T) {
	for _, typ := range []string{domain.EventDropEnded, domain.EventDropCancelled} {
		h, _ := newTestHub(t, Options{})
		s, err := h.SubscribeDrop(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		next(t, s)
		handle(t, h, dropEvent(t, typ, 1))
		u := next(t, s)
		if !terminal(u.Status) || u.Event != typ {
			t.Fatalf("%s: final update %+v", typ, u)
		}
		closed(t, s)
		if s.Err() != nil {
			t.Fatalf("%s: Err %v", typ, s.Err())
		}
		h.lock()
		left := len(h.drops)
		h.unlock()
		if left != 0 {
			t.Fatalf("%s: %d drop topics left", typ, left)
		}
	}
	// Subscribing to a drop that already ended: its state, then the end.
	h, snaps := newTestHub(t, Options{})
	snaps.set(2, DropUpdate{Status: domain.DropEnded})
	s, err := h.SubscribeDrop(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, s); u.Status != domain.DropEnded {
		t.Fatalf("ended drop: %+v", u)
	}
	closed(t, s)
}

func TestDropStartedReachesScheduledSubscribers(t *testing.T) {
	h, snaps := newTestHub(t, Options{})
	snaps.set(3, DropUpdate{Status: domain.DropScheduled, Stock: domain.Stock{Total: 10, Available: 10}, Version: 1})
	s, err := h.SubscribeDrop(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s)
	handle(t, h, dropEvent(t, domain.EventDropScheduled, 3), dropEvent(t, domain.EventDropStarted, 3))
	if u := next(t, s); u.Status != domain.DropLive || u.Event != domain.EventDropStarted || u.Stock.Available != 10 {
		t.Fatalf("after DropStarted: %+v", u)
	}
	// A second start (another event id) is stale: nothing.
	handle(t, h, dropEvent(t, domain.EventDropStarted, 3))
	quiet(t, s, 30*time.Millisecond)
}

func TestDuplicateEventIgnored(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: time.Millisecond})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.SubscribeCreators(context.Background(), []int64{7})
	if err != nil {
		t.Fatal(err)
	}
	next(t, s)
	low := stockEvent(t, domain.EventStockLow, 1, 50, 1)
	handle(t, h, low, low)
	if u := next(t, s); u.Event != domain.EventStockLow {
		t.Fatalf("got %+v", u)
	}
	if e := next(t, c); e.Kind != DropEventStockLow {
		t.Fatalf("got %+v", e)
	}
	handle(t, h, low)
	quiet(t, s, 30*time.Millisecond)
	quiet(t, c, 0)
	// The memory of ids is bounded: the oldest is forgotten first.
	r := newRecentIDs(3)
	for _, id := range []string{"a", "b", "c"} {
		if r.seen(id) {
			t.Fatalf("%s seen before it was", id)
		}
	}
	if !r.seen("a") {
		t.Fatalf("a forgotten too soon")
	}
	if r.seen("d") { // forgets a
		t.Fatalf("d seen before it was")
	}
	if r.seen("a") { // forgets b
		t.Fatalf("a still remembered after three newer ids")
	}
	if !r.seen("c") || !r.seen("d") || r.seen("b") || len(r.ids) != 3 {
		t.Fatalf("recent ids: %v", r.ids)
	}
}

func TestStaleStockAfterSnapshotIgnored(t *testing.T) {
	h, snaps := newTestHub(t, Options{StockInterval: time.Millisecond})
	snaps.set(1, DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: 1000, Available: 500}, Version: 10})
	s, err := h.SubscribeDrop(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s)
	// Events older than the snapshot, delivered after it: nothing moves.
	for v := int64(5); v <= 10; v++ {
		handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 1000-int(v), v))
	}
	quiet(t, s, 30*time.Millisecond)
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 400, 11))
	if u := next(t, s); u.Version != 11 || u.Stock.Available != 400 {
		t.Fatalf("got %+v", u)
	}
}

func TestEventsDuringSnapshotRead(t *testing.T) {
	h, snaps := newTestHub(t, Options{StockInterval: time.Millisecond})
	snaps.gate = make(chan struct{})
	snaps.set(1, DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: 1000, Available: 500}, Version: 10})
	type result struct {
		s   *Sub[*DropUpdate]
		err error
	}
	subscribe := func() chan result {
		done := make(chan result, 1)
		go func() {
			s, err := h.SubscribeDrop(context.Background(), 1)
			done <- result{s, err}
		}()
		// Wait until it is registered and reading.
		for {
			h.lock()
			t := h.drops[1]
			loading := t != nil && t.loading > 0
			h.unlock()
			if loading {
				return done
			}
			time.Sleep(time.Millisecond)
		}
	}

	// Heard while the snapshot is read: one older than it, two newer, a
	// lifecycle event. The first update is the newest of all that.
	done := subscribe()
	handle(t, h,
		stockEvent(t, domain.EventStockChanged, 1, 600, 8),
		stockEvent(t, domain.EventStockChanged, 1, 450, 11),
		stockEvent(t, domain.EventStockChanged, 1, 440, 12),
		stockEvent(t, domain.EventStockChanged, 1, 700, 9),
	)
	snaps.gate <- struct{}{}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if u := next(t, r.s); u.Version != 12 || u.Stock.Available != 440 {
		t.Fatalf("first update %+v, want version 12", u)
	}
	// A second subscriber whose snapshot is older than the topic's state
	// starts from the topic's state; one newer moves everyone forward.
	snaps.set(1, DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: 1000, Available: 480}, Version: 11})
	done = subscribe()
	snaps.gate <- struct{}{}
	r2 := <-done
	if u := next(t, r2.s); u.Version != 12 {
		t.Fatalf("second subscriber's first update %+v, want version 12", u)
	}
	snaps.set(1, DropUpdate{Status: domain.DropLive, Stock: domain.Stock{Total: 1000, Available: 300}, Version: 20})
	done = subscribe()
	snaps.gate <- struct{}{}
	r3 := <-done
	for _, s := range []*Sub[*DropUpdate]{r.s, r2.s, r3.s} {
		if u := next(t, s); u.Version != 20 || u.Stock.Available != 300 {
			t.Fatalf("after a newer snapshot: %+v", u)
		}
	}
}

func TestUnsubscribeOnContextEnd(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	d, err := h.SubscribeDrop(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := h.SubscribeUser(ctx, 1)
	o, _ := h.SubscribeOrder(ctx, 1)
	c, _ := h.SubscribeCreators(ctx, []int64{1, 2})
	cancel()
	next(t, d)
	closed(t, d)
	closed(t, u)
	next(t, o)
	closed(t, o)
	closed(t, c)
	if d.Err() != nil || u.Err() != nil {
		t.Fatalf("Err after ctx end: %v, %v", d.Err(), u.Err())
	}
	assertEmpty(t, h)
}

func assertEmpty(t *testing.T, h *Hub) {
	t.Helper()
	h.lock()
	defer h.unlock()
	if len(h.drops)+len(h.creators)+len(h.users)+len(h.orders)+len(h.due)+len(h.waiting) != 0 {
		t.Fatalf("hub state left: %d drops, %d creators, %d users, %d orders, %d due, %d waiting",
			len(h.drops), len(h.creators), len(h.users), len(h.orders), len(h.due), len(h.waiting))
	}
}

func TestNotificationsReachTheirUser(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	s5, err := h.SubscribeUser(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	s5b, _ := h.SubscribeUser(context.Background(), 5)
	s6, _ := h.SubscribeUser(context.Background(), 6)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Encoded as the store writes it, so the two sides agree on the wire form.
	ev, err := store.NewEvent(store.EventNotificationsCreated, "drop:3", store.NotificationsCreatedPayload{
		DropID: 3, CreatorID: 7, Kind: domain.NotificationDropStarted, CreatedAt: at,
		Notifications: []store.NotificationRef{{ID: 100, UserID: 4}, {ID: 101, UserID: 5}},
	}, at)
	if err != nil {
		t.Fatal(err)
	}
	handle(t, h, ev)
	want := domain.Notification{ID: 101, UserID: 5, Kind: domain.NotificationDropStarted, DropID: 3, CreatorID: 7, CreatedAt: at}
	for _, s := range []*Sub[*domain.Notification]{s5, s5b} {
		if n := next(t, s); *n != want {
			t.Fatalf("got %+v, want %+v", *n, want)
		}
	}
	quiet(t, s6, 20*time.Millisecond)
}

func TestOrderUpdates(t *testing.T) {
	placed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	orders := map[int64]domain.Order{
		1: {Status: domain.OrderPendingPayment, DropID: 9, BuyerID: 5, Quantity: 2, TotalCents: 400, Currency: "EUR", CreatedAt: placed},
		2: {Status: domain.OrderConfirmed},
	}
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	h, _ := newTestHub(t, Options{OrderSnapshot: func(ctx context.Context, id int64) (domain.Order, error) {
		<-gate
		o, ok := orders[id]
		if !ok {
			return domain.Order{}, domain.Errorf(domain.NotFound, "order not found")
		}
		return o, nil
	}})
	orderEvent := func(typ string, id int64) domain.Event {
		return event(t, typ, domain.OrderPayload{OrderID: id, DropID: 9, BuyerID: 5, Quantity: 2})
	}
	s, err := h.SubscribeOrder(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if o := next(t, s); o.ID != 1 || o.Status != domain.OrderPendingPayment || o.TotalCents != 400 {
		t.Fatalf("first update %+v", o)
	}
	// Placing it again is no news; paying it is, and the last.
	placedAgain := orderEvent(domain.EventOrderPlaced, 1)
	confirmed := orderEvent(domain.EventOrderConfirmed, 1)
	handle(t, h, placedAgain, confirmed)
	o := next(t, s)
	if o.Status != domain.OrderConfirmed || o.TotalCents != 400 || o.Quantity != 2 || !o.UpdatedAt.Equal(confirmed.OccurredAt) || !o.CreatedAt.Equal(placed) {
		t.Fatalf("got %+v", o)
	}
	closed(t, s)

	// Settled already: the order, then the end.
	gate <- struct{}{}
	s, err = h.SubscribeOrder(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if o := next(t, s); o.Status != domain.OrderConfirmed || o.ID != 2 {
		t.Fatalf("got %+v", o)
	}
	closed(t, s)

	// Events heard while the order is read: only news is kept.
	done := make(chan *Sub[*domain.Order])
	go func() {
		s, err := h.SubscribeOrder(context.Background(), 1)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	for {
		h.lock()
		n := len(h.orders[1])
		h.unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	expired := orderEvent(domain.EventOrderExpired, 1)
	handle(t, h, orderEvent(domain.EventOrderPlaced, 1), expired)
	gate <- struct{}{}
	s = <-done
	if o := next(t, s); o.Status != domain.OrderPendingPayment {
		t.Fatalf("first update %+v", o)
	}
	if o := next(t, s); o.Status != domain.OrderExpired || o.TotalCents != 400 || !o.UpdatedAt.Equal(expired.OccurredAt) {
		t.Fatalf("second update %+v", o)
	}
	closed(t, s)

	gate <- struct{}{}
	if _, err := h.SubscribeOrder(context.Background(), 3); domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("unknown order: %v", err)
	}
	assertEmpty(t, h)
}

func TestUndecodableEventSkipped(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	s, _ := h.SubscribeDrop(context.Background(), 1)
	next(t, s)
	bad := domain.Event{ID: "x", Type: domain.EventStockChanged, Payload: json.RawMessage(`"nope"`)}
	if err := h.Handle(context.Background(), bad); err != nil {
		t.Fatalf("Handle of a bad payload: %v, want nil (skipped)", err)
	}
	handle(t, h, domain.Event{ID: "y", Type: "SomethingElse", Payload: json.RawMessage(`{}`)})
	quiet(t, s, 20*time.Millisecond)
}

func TestCloseEndsEverything(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)), Options{DropSnapshot: (&snapshots{}).read})
	d, _ := h.SubscribeDrop(context.Background(), 1)
	u, _ := h.SubscribeUser(context.Background(), 1)
	h.Close()
	h.Close()
	next(t, d)
	closed(t, d)
	closed(t, u)
	if !errors.Is(d.Err(), ErrClosed) || !errors.Is(u.Err(), ErrClosed) {
		t.Fatalf("Err after Close: %v, %v", d.Err(), u.Err())
	}
	if _, err := h.SubscribeUser(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after Close: %v", err)
	}
	handle(t, h, dropEvent(t, domain.EventDropEnded, 1))
}

// settle waits for the goroutine count to come down to want (+tolerance).
func settle(t *testing.T, want, tolerance int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= want+tolerance || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestThousandSubscriptionsLeaveNothingBehind(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: 5 * time.Millisecond})
	const n = 1000
	round := func(measure bool) (perDrop, perUser uint64) {
		ctx, cancel := context.WithCancel(context.Background())
		before := heap()
		drops := make([]*Sub[*DropUpdate], n)
		for i := range drops {
			s, err := h.SubscribeDrop(ctx, int64(i%10))
			if err != nil {
				t.Fatal(err)
			}
			drops[i] = s
		}
		mid := heap()
		users := make([]*Sub[*domain.Notification], n)
		for i := range users {
			s, err := h.SubscribeUser(ctx, int64(i))
			if err != nil {
				t.Fatal(err)
			}
			users[i] = s
		}
		after := heap()
		if measure && mid > before && after > mid {
			perDrop, perUser = (mid-before)/n, (after-mid)/n
		}
		// Some traffic, read by half of them.
		for i := 0; i < 10; i++ {
			handle(t, h, stockEvent(t, domain.EventStockChanged, int64(i), 500, 2), stockEvent(t, domain.EventStockLow, int64(i), 50, 3))
		}
		for i := 0; i < n; i += 2 {
			<-drops[i].C()
		}
		runtime.KeepAlive(drops)
		runtime.KeepAlive(users)
		cancel()
		for _, s := range drops {
			for range s.C() {
			}
		}
		for _, s := range users {
			for range s.C() {
			}
		}
		return perDrop, perUser
	}

	round(false) // warm up: maps, metrics' label children, the flusher's timer
	baseG := settle(t, 0, 1<<20)
	baseHeap := heap()
	perDrop, perUser := round(true)
	g := settle(t, baseG, 2)
	assertEmpty(t, h)
	if g > baseG+2 {
		t.Fatalf("%d goroutines after 1,000 subscriptions came and went, %d before", g, baseG)
	}
	endHeap := heap()
	if endHeap > baseHeap+256<<10 {
		t.Fatalf("heap %d KiB after, %d KiB before", endHeap>>10, baseHeap>>10)
	}
	t.Logf("per idle subscription: drop ~%d B, user ~%d B; heap before %d KiB, after %d KiB; goroutines %d → %d",
		perDrop, perUser, baseHeap>>10, endHeap>>10, baseG, g)
	if perDrop > 2048 || perUser > 2048 {
		t.Fatalf("idle subscriptions cost %d B (drop) and %d B (user) each, want under 2 KiB", perDrop, perUser)
	}
}

// TestConcurrentTraffic shakes the hub with everything at once under -race:
// events, subscribers coming and going, slow and fast readers.
func TestConcurrentTraffic(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: 2 * time.Millisecond, QueueSize: 8})
	baseG := runtime.NumGoroutine()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v := int64(1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			v++
			d := v % 4
			handle(t, h, stockEvent(t, domain.EventStockChanged, d, int(v%1000), v))
			if v%50 == 0 {
				handle(t, h, stockEvent(t, domain.EventStockLow, d, int(v%1000), v), dropEvent(t, domain.EventDropScheduled, d))
			}
			if v%500 == 0 {
				handle(t, h, dropEvent(t, domain.EventDropEnded, d))
			}
		}
	}()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%7)*time.Millisecond*3)
				d, err := h.SubscribeDrop(ctx, int64(i%4))
				if err != nil {
					cancel()
					continue
				}
				c, err := h.SubscribeCreators(ctx, []int64{7})
				if err != nil { // ctx over already
					c = &Sub[*DropEvent]{out: make(chan *DropEvent)}
					close(c.out)
				}
				last := int64(0)
				for u := range d.C() {
					if u.Version < last && !terminal(u.Status) {
						t.Errorf("version went back from %d to %d", last, u.Version)
					}
					last = u.Version
					if w%2 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				for range c.C() {
				}
				cancel()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if g := settle(t, baseG, 2); g > baseG+2 {
		t.Fatalf("%d goroutines left, %d before", g, baseG)
	}
	assertEmpty(t, h)
}

// A drop with more subscribers than FlushBatch hands stock out batch by
// batch: a batch is woken only once the one before took its update (or was
// given batchPatience), and every subscriber still ends with the newest state.
func TestStockHandedOutInBatches(t *testing.T) {
	const batch, n = 4, 22
	h, _ := newTestHub(t, Options{StockInterval: time.Millisecond, FlushBatch: batch})
	subs := make([]*Sub[*DropUpdate], n)
	for i := range subs {
		s, err := h.SubscribeDrop(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
		next(t, s)
	}
	// Nobody reads: past the first batch, each one waits out the patience.
	start := time.Now()
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 900, 2))
	holding := func() int {
		h.lock()
		defer h.unlock()
		k := 0
		for _, s := range subs {
			k += len(s.out)
		}
		return k
	}
	if got, most := holding(), batch*(1+int(time.Since(start)/batchPatience)); got > most {
		t.Fatalf("%d subscribers woken %v after the event, want at most %d (batches of %d)", got, time.Since(start), most, batch)
	}
	// A newer state during the round reaches those still to be served and,
	// in the next round, those served before.
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 800, 3))
	for i, s := range subs {
		if u := next(t, s); u.Version != 2 && u.Version != 3 {
			t.Fatalf("subscriber %d got version %d, want 2 or 3", i, u.Version)
		} else if u.Version == 2 {
			if u := next(t, s); u.Version != 3 {
				t.Fatalf("subscriber %d got version %d after 2, want 3", i, u.Version)
			}
		}
	}
	// Readers that take their updates at once are served without the
	// patience: a round of six batches takes well under six times it.
	done := make(chan time.Duration, n)
	start = time.Now()
	for _, s := range subs {
		go func() {
			for u := range s.C() {
				if u.Version == 4 {
					done <- time.Since(start)
					return
				}
			}
		}()
	}
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 700, 4))
	var slowest time.Duration
	for range subs {
		select {
		case d := <-done:
			slowest = max(slowest, d)
		case <-time.After(2 * time.Second):
			t.Fatal("a subscriber did not get the newest state within 2s")
		}
	}
	t.Logf("%d reading subscribers in batches of %d got the state within %v", n, batch, slowest)
	// Lifecycle updates still reach everyone at once, never dropped.
	handle(t, h, dropEvent(t, domain.EventDropEnded, 1))
	for i, s := range subs {
		if u := next(t, s); u.Event != domain.EventDropEnded || u.Status != domain.DropEnded {
			t.Fatalf("subscriber %d got %+v, want the drop's end", i, u)
		}
		closed(t, s)
	}
	assertEmpty(t, h)
}

// A batch is FlushBatch subscribers woken: those that have the newest state
// already are passed over without counting, so a round in which few need it
// (the round after one the state moved in) takes as few batches as they fill.
func TestRoundPassesOverSubscribersUpToDate(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: time.Millisecond, FlushBatch: 2})
	subs := make([]*Sub[*DropUpdate], 20)
	for i := range subs {
		s, err := h.SubscribeDrop(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
		next(t, s)
	}
	h.lock()
	topic := h.drops[1]
	topic.seq++ // a newer state, which all but the first have already
	for _, s := range subs[1:] {
		s.sentSeq = topic.seq
	}
	h.flushDrop(topic, time.Now())
	inRound, turn, behind := topic.inRound, topic.turn, len(subs[0].out)
	h.unlock()
	if inRound {
		t.Fatalf("the round is at %d of %d after its first batch: the subscribers up to date counted", turn, len(subs))
	}
	if behind != 1 {
		t.Fatal("the subscriber behind was not handed the newest state")
	}
}

// Once a round has served everyone and the state did not move meanwhile,
// nothing is left scheduled: an idle drop costs the flusher nothing.
func TestRoundLeavesNothingScheduled(t *testing.T) {
	h, _ := newTestHub(t, Options{StockInterval: time.Millisecond, FlushBatch: 2})
	subs := make([]*Sub[*DropUpdate], 5)
	for i := range subs {
		s, err := h.SubscribeDrop(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
		next(t, s)
	}
	handle(t, h, stockEvent(t, domain.EventStockChanged, 1, 900, 2))
	for _, s := range subs {
		if u := next(t, s); u.Version != 2 {
			t.Fatalf("got version %d, want 2", u.Version)
		}
	}
	idle := func() bool {
		h.lock()
		defer h.unlock()
		return len(h.due) == 0 && !h.drops[1].inRound
	}
	deadline := time.Now().Add(2 * time.Second)
	for !idle() {
		if time.Now().After(deadline) {
			t.Fatal("the drop is still scheduled for stock 2s after everyone got it")
		}
		time.Sleep(time.Millisecond)
	}
}
