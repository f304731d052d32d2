package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store"
)

// testLog keeps librdkafka's warnings visible without the chatter.
var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// seqPayload numbers the events of one key, so order can be checked.
type seqPayload struct {
	Seq int `json:"seq"`
}

// openDB returns a migrated store on a fresh database and that database's URL.
func openDB(t *testing.T) (*store.DB, string) {
	t.Helper()
	url := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(); err != nil {
		t.Fatal(err)
	}
	return db, url
}

// newEvents makes events for keys in round-robin, numbering each key's events
// from first on: event i goes to keys[i%len(keys)] with seq first+i/len(keys).
func newEvents(t *testing.T, keys []string, first, n int) []domain.Event {
	t.Helper()
	evs := make([]domain.Event, n)
	for i := range evs {
		ev, err := store.NewEvent(domain.EventStockChanged, keys[i%len(keys)], seqPayload{Seq: first + i/len(keys)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	return evs
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("drop:%d", i+1)
	}
	return out
}

// enqueue writes evs to the outbox in transactions of batch events each.
func enqueue(t *testing.T, db *store.DB, evs []domain.Event, batch int) {
	t.Helper()
	for len(evs) > 0 {
		n := min(batch, len(evs))
		if err := db.EnqueueEvents(context.Background(), evs[:n]...); err != nil {
			t.Fatal(err)
		}
		evs = evs[n:]
	}
}

func newProducer(t *testing.T, brokers string) *Producer {
	t.Helper()
	p, err := NewProducer(brokers, testLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// startRelay runs a relay until the test ends or the returned stop is called.
func startRelay(t *testing.T, db *store.DB, url string, p *Producer, topic string, tune func(*Relay)) (stop func()) {
	t.Helper()
	r := NewRelay(db, url, p, topic, testLog)
	if tune != nil {
		tune(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startConsumer runs c until the test ends or the returned stop is called.
func startConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			c.Close()
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// collector records the events a consumer hands it.
type collector struct {
	mu  sync.Mutex
	evs []domain.Event
}

func (c *collector) handle(_ context.Context, ev domain.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) snapshot() []domain.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]domain.Event(nil), c.evs...)
}

// waitFor waits until at least n events arrived, then a little longer to
// catch any extra (duplicate) delivery, and returns all of them.
func (c *collector) waitFor(t *testing.T, n int, timeout time.Duration) []domain.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(c.snapshot()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d events within %v, want %d", len(c.snapshot()), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return c.snapshot()
}

// groupCollector consumes topic from its beginning in a group of its own.
func groupCollector(t *testing.T, brokers, topic string) *collector {
	t.Helper()
	col := &collector{}
	c, err := NewGroupConsumer(brokers, "test-"+topic, topic, col.handle, testLog)
	if err != nil {
		t.Fatal(err)
	}
	startConsumer(t, c)
	return col
}

// checkExactlyOnceInOrder checks that got holds each of want exactly once and
// that each key's events arrived in their order.
func checkExactlyOnceInOrder(t *testing.T, got, want []domain.Event) {
	t.Helper()
	wanted := make(map[string]bool, len(want))
	next := map[string]int{} // key -> next seq expected: at first, the key's first in want
	for _, ev := range want {
		wanted[ev.ID] = true
		if _, ok := next[ev.Key]; !ok {
			next[ev.Key] = seqOf(t, ev)
		}
	}
	seen := make(map[string]int, len(got))
	for _, ev := range got {
		if !wanted[ev.ID] {
			t.Fatalf("received an event never enqueued: %+v", ev)
		}
		seen[ev.ID]++
		if seen[ev.ID] > 1 {
			t.Fatalf("event %s (%s) received %d times", ev.ID, ev.Key, seen[ev.ID])
		}
		if seq := seqOf(t, ev); seq != next[ev.Key] {
			t.Fatalf("key %s: received seq %d, want %d (out of order or a gap)", ev.Key, seq, next[ev.Key])
		}
		next[ev.Key]++
	}
	if len(seen) != len(want) {
		t.Fatalf("received %d distinct events, want %d", len(seen), len(want))
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func seqOf(t *testing.T, ev domain.Event) int {
	t.Helper()
	var p seqPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("payload of %s: %v", ev.ID, err)
	}
	return p.Seq
}

func ids(evs []domain.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}
