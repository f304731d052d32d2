// Package live is the live hub: every app instance runs one, fed by a tail
// consumer that hears every event on the bus, and routes each event to the
// subscriptions of this instance that want it (a drop's stock and status, the
// drops of some creators, a user's notifications, one order).
//
// Handle never waits for a subscriber: each subscription has a one-update
// slot, stock updates are conflated into it (the newest replaces an unread
// older one, and at most one goes out per Options.StockInterval), and updates
// that must not be lost wait in a bounded queue per subscriber, which ends
// the subscription with ErrSlowConsumer when full. One flusher goroutine per
// hub hands over what waits; subscriptions have no goroutine of their own.
//
// Stock events may name the inventory's version ("version" in the payload)
// and the drop's status after the move ("status"); when they do, an event
// older than a subscriber's snapshot is ignored instead of moving its stock
// back. Without a version, events heard after the snapshot are applied in the
// order heard.
package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"livedrops/domain"
)

// Options tune a Hub; zero values take the defaults.
type Options struct {
	// StockInterval is the least time between two stock updates to a drop's
	// subscribers (default 50 ms).
	StockInterval time.Duration
	// FlushBatch is how many subscribers of one drop are handed a stock
	// update at once (default 16). A drop with more has its stock handed
	// out in a round of batches, one batch a millisecond at most across
	// the hub, the next once the one before has taken its update (or after
	// a few milliseconds), each subscriber getting the newest state when
	// its turn comes: waking thousands of subscribers at once would leave
	// every other goroutine (the order holding the drop's hot inventory
	// row, among them) waiting behind them for a CPU.
	FlushBatch int
	// QueueSize is how many updates that are never dropped may wait for one
	// subscriber before it is ended with ErrSlowConsumer (default 64).
	QueueSize int
	// RecentEvents is how many event ids are remembered to ignore a
	// redelivered event (default 4096).
	RecentEvents int
	// DropSnapshot reads a drop's current state from the database; it is
	// required by SubscribeDrop. Its error (NOT_FOUND, ...) is SubscribeDrop's.
	DropSnapshot func(ctx context.Context, dropID int64) (DropUpdate, error)
	// OrderSnapshot reads an order from the database; it is required by
	// SubscribeOrder, and its error is SubscribeOrder's.
	OrderSnapshot func(ctx context.Context, orderID int64) (domain.Order, error)
	// OnSlowConsumer, when set, is called with the subscription's context
	// after a subscriber was ended with ErrSlowConsumer, so the transport can
	// close the connection with a code saying so. It must not block.
	OnSlowConsumer func(ctx context.Context, kind string)
}

const (
	defaultStockInterval = 50 * time.Millisecond
	defaultFlushBatch    = 16
	defaultQueueSize     = 64
	defaultRecentEvents  = 4096
	// firstRetry is how soon the flusher looks again at a subscriber whose
	// slot was taken; it doubles up to StockInterval while the slot stays taken.
	firstRetry = time.Millisecond
)

// Hub routes events to this instance's subscriptions.
type Hub struct {
	log  *slog.Logger
	opts Options

	mu       sync.Mutex
	closed   bool
	drops    map[int64]*dropTopic
	creators map[int64][]*Sub[*DropEvent]
	users    map[int64][]*Sub[*domain.Notification]
	orders   map[int64][]*Sub[*domain.Order]
	// due: drop topics with a stock flush scheduled; waiting: subscriptions
	// with updates waiting for their slot.
	due     map[*dropTopic]struct{}
	waiting map[waiter]struct{}
	// batchFree is when the next batch of a stock round may go (batchGap).
	batchFree time.Time
	recent    recentIDs
	// after holds callbacks to run once the lock is released.
	after []func()

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

// NewHub returns a running hub; Close stops it.
func NewHub(log *slog.Logger, opts Options) *Hub {
	if opts.StockInterval <= 0 {
		opts.StockInterval = defaultStockInterval
	}
	if opts.FlushBatch <= 0 {
		opts.FlushBatch = defaultFlushBatch
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultQueueSize
	}
	if opts.RecentEvents <= 0 {
		opts.RecentEvents = defaultRecentEvents
	}
	h := &Hub{
		log:      log,
		opts:     opts,
		drops:    map[int64]*dropTopic{},
		creators: map[int64][]*Sub[*DropEvent]{},
		users:    map[int64][]*Sub[*domain.Notification]{},
		orders:   map[int64][]*Sub[*domain.Order]{},
		due:      map[*dropTopic]struct{}{},
		waiting:  map[waiter]struct{}{},
		recent:   newRecentIDs(opts.RecentEvents),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go h.run()
	return h
}

// Close ends every subscription with ErrClosed and stops the flusher.
func (h *Hub) Close() {
	h.lock()
	if h.closed {
		h.unlock()
		return
	}
	h.closed = true
	for _, t := range h.drops {
		for s := range t.subs {
			s.end(ErrClosed)
		}
	}
	endAll(h.creators)
	endAll(h.users)
	endAll(h.orders)
	h.unlock()
	close(h.quit)
	<-h.done
}

func endAll[T any](m map[int64][]*Sub[T]) {
	for _, subs := range m {
		for _, s := range append([]*Sub[T](nil), subs...) {
			s.end(ErrClosed)
		}
	}
}

func (h *Hub) lock() { h.mu.Lock() }

// lockOpen takes the lock to add a subscription; it fails, without the lock,
// when ctx is over or the hub closed.
func (h *Hub) lockOpen(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.lock()
	if h.closed {
		h.unlock()
		return ErrClosed
	}
	return nil
}

// unlock releases the lock, then runs the callbacks queued under it.
func (h *Hub) unlock() {
	after := h.after
	h.after = nil
	h.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// Handle routes one event; it is the handler of the hub's tail consumer. It
// never waits for a subscriber and never fails: an event it cannot decode is
// logged and skipped (retrying it could never succeed), and an event seen
// before (same id) is ignored.
func (h *Hub) Handle(ctx context.Context, ev domain.Event) error {
	route, err := h.decode(ev)
	if err != nil {
		h.log.Warn("live hub: skipping an event it cannot decode", "type", ev.Type, "id", ev.ID, "err", err)
		return nil
	}
	h.lock()
	defer h.unlock()
	if h.closed {
		return nil
	}
	if ev.ID != "" && h.recent.seen(ev.ID) {
		duplicateEvents.Inc()
		return nil
	}
	eventsRouted.WithLabelValues(eventLabel(ev.Type)).Inc()
	if route != nil {
		route(time.Now())
	}
	return nil
}

// decode reads the event's payload and returns what routing it takes (run
// under the lock), or nil for events no subscription is about.
func (h *Hub) decode(ev domain.Event) (func(now time.Time), error) {
	switch ev.Type {
	case domain.EventDropScheduled, domain.EventDropStarted, domain.EventDropEnded, domain.EventDropCancelled:
		var p domain.DropPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return nil, err
		}
		return func(now time.Time) {
			h.routeDrop(p.DropID, dropChange{typ: ev.Type, at: ev.OccurredAt}, now)
			h.routeCreator(p.CreatorID, p.DropID, ev)
		}, nil
	case domain.EventStockChanged, domain.EventStockLow, domain.EventSoldOut:
		p := &domain.StockPayload{}
		if err := json.Unmarshal(ev.Payload, p); err != nil {
			return nil, err
		}
		return func(now time.Time) {
			h.routeDrop(p.DropID, dropChange{typ: ev.Type, at: ev.OccurredAt, stock: p}, now)
			if ev.Type != domain.EventStockChanged {
				h.routeCreator(p.CreatorID, p.DropID, ev)
			}
		}, nil
	case domain.EventOrderPlaced, domain.EventOrderConfirmed, domain.EventOrderCancelled, domain.EventOrderExpired:
		var p domain.OrderPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return nil, err
		}
		c := orderChange{orderID: p.OrderID, status: p.Status, at: ev.OccurredAt}
		if c.status == "" {
			c.status = orderStatusOf(ev.Type)
		}
		return func(time.Time) { h.routeOrder(c) }, nil
	case EventNotificationsCreated:
		var p notificationsCreated
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return nil, err
		}
		return func(time.Time) { h.routeNotifications(&p) }, nil
	}
	return nil, nil
}

// wait puts a subscription whose slot is taken on the flusher's list.
func (h *Hub) wait(w waiter) {
	if _, ok := h.waiting[w]; ok {
		return
	}
	st := w.state()
	st.retryIn = firstRetry
	st.retryAt = time.Now().Add(firstRetry)
	h.waiting[w] = struct{}{}
	h.wakeFlusher()
}

func (h *Hub) wakeFlusher() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run is the flusher: it sends conflated stock when due and hands waiting
// updates over as their subscribers free their slots.
func (h *Hub) run() {
	defer close(h.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		case <-timer.C:
		}
		h.lock()
		next := h.flush(time.Now())
		h.unlock()
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
	}
}

// flush does what is due at now and returns when it next has work (zero: none).
func (h *Hub) flush(now time.Time) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for t := range h.due {
		if now.Before(t.due) {
			soonest(t.due)
			continue
		}
		if t.inRound {
			h.nextBatch(t, now)
		} else {
			h.flushDrop(t, now)
		}
		if !t.due.IsZero() {
			soonest(t.due)
		}
	}
	for w := range h.waiting {
		st := w.state()
		if now.Before(st.retryAt) {
			soonest(st.retryAt)
			continue
		}
		done, progress := w.drain()
		if done {
			delete(h.waiting, w)
			continue
		}
		if progress {
			st.retryIn = firstRetry
		} else {
			st.retryIn = min(2*st.retryIn, h.opts.StockInterval)
		}
		st.retryAt = now.Add(st.retryIn)
		soonest(st.retryAt)
	}
	return next
}

// recentIDs remembers the last n event ids seen, oldest forgotten first.
type recentIDs struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) recentIDs {
	return recentIDs{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// seen reports whether id was seen already, and remembers it.
func (r *recentIDs) seen(id string) bool {
	if _, ok := r.ids[id]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return false
}
