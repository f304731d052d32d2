package live

import (
	"context"
	"errors"
	"time"
)

// Why a subscription ended, as Err reports it.
var (
	// ErrSlowConsumer: the subscriber let more updates wait than the hub
	// keeps for one subscriber (Options.QueueSize); the transport should
	// close the connection with a code saying so.
	ErrSlowConsumer = errors.New("live: subscriber too slow, updates no longer kept")
	// ErrClosed: the hub was closed (the server is shutting down).
	ErrClosed = errors.New("live: hub closed")
)

// Sub is one subscription. C delivers its updates in order and is closed when
// the subscription ends: its context is done, its topic completed (a drop
// ended, an order settled), the hub closed, or the subscriber fell too far
// behind. Updates are shared between subscribers and must not be modified.
//
// A subscription holds no goroutine: the hub hands each update over without
// waiting, through a channel of one slot, and keeps what does not fit.
type Sub[T any] struct {
	out chan T
	// queue holds updates that never drop (lifecycle events), oldest first,
	// while the slot is taken.
	queue []queued[T]
	// latest returns the newest state of a conflated topic and its sequence
	// number; nil for topics whose updates are all queued.
	latest func() (T, uint64)
	// last is the newest update of a feed that builds each update from the
	// one before (orders); unused by the others.
	last T
	subState
}

// subState is the part of a subscription that does not depend on its type.
type subState struct {
	hub  *Hub
	kind string
	ctx  context.Context
	err  error
	// ended: C is closed and the subscription detached from its topics.
	ended bool
	// loading: registered to hear events, but its first state is still being
	// read; everything heard meanwhile waits in the queue.
	loading bool
	// stealable: the update last put in the slot, if it is still there, is a
	// state that a newer state may replace.
	stealable bool
	// sentSeq is the sequence number of the newest state put in the slot.
	sentSeq uint64
	// When the flusher next tries to hand over what waits, and how long it
	// waits after that if the slot is still taken.
	retryAt time.Time
	retryIn time.Duration
	// stop unregisters the context callback; detach removes the subscription
	// from the hub's routes.
	stop   func() bool
	detach func()
}

// queued is an update waiting for the slot.
type queued[T any] struct {
	v     T
	seq   uint64
	final bool // the last update of the subscription
}

// waiter is a subscription with updates waiting, as the flusher sees it.
type waiter interface {
	// drain hands over as much of what waits as the slot takes; done is true
	// once nothing waits any more, progress when anything was handed over.
	drain() (done, progress bool)
	state() *subState
}

// C returns the channel the updates arrive on.
func (s *Sub[T]) C() <-chan T { return s.out }

// Err says why C was closed: nil when the subscription completed or its
// context ended, ErrSlowConsumer, or ErrClosed. It is nil while C is open.
func (s *Sub[T]) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

func (s *Sub[T]) state() *subState { return &s.subState }

// The methods below run with the hub's lock held.

// put places v in the slot without waiting. When the slot still holds a
// stealable state, that state is taken back and replaced: the subscriber
// only ever has the newest state pending.
func (s *Sub[T]) put(v T, stealable bool) bool {
	select {
	case s.out <- v:
		s.stealable = stealable
		return true
	default:
	}
	if !s.stealable {
		return false
	}
	select {
	case <-s.out:
		updatesConflated.Inc()
	default: // the subscriber took it meanwhile
	}
	select {
	case s.out <- v:
		s.stealable = stealable
		return true
	default:
		return false
	}
}

// offer hands q over without waiting: into the slot when it is free and
// nothing waits before it, otherwise to the back of the queue. A subscriber
// whose queue is full is ended with ErrSlowConsumer.
func (s *Sub[T]) offer(q queued[T], stealable bool) {
	if s.ended {
		return
	}
	if !s.loading && len(s.queue) == 0 && s.put(q.v, stealable) {
		s.delivered(q)
		return
	}
	if len(s.queue) >= s.hub.opts.QueueSize {
		s.end(ErrSlowConsumer)
		return
	}
	s.queue = append(s.queue, q)
	if !s.loading {
		s.hub.wait(s)
	}
}

// delivered notes that q is in the slot, and ends the subscription after its
// last update (C is closed behind it; the subscriber still reads it).
func (s *Sub[T]) delivered(q queued[T]) {
	if q.seq > s.sentSeq {
		s.sentSeq = q.seq
	}
	if q.final {
		s.end(nil)
	}
}

func (s *Sub[T]) drain() (done, progress bool) {
	for len(s.queue) > 0 && !s.ended {
		q := s.queue[0]
		if !s.put(q.v, false) {
			return false, progress
		}
		s.queue[0] = queued[T]{}
		s.queue = s.queue[1:]
		progress = true
		s.delivered(q)
	}
	s.queue = nil // let go of the backing array once empty
	if s.ended || s.latest == nil {
		return true, progress
	}
	v, seq := s.latest()
	if seq <= s.sentSeq {
		return true, progress
	}
	if !s.put(v, true) {
		return false, progress
	}
	s.sentSeq = seq
	return true, true
}

// end closes C and releases everything the subscription holds in the hub.
func (s *Sub[T]) end(err error) {
	if s.ended {
		return
	}
	h := s.hub
	var zero T
	s.ended, s.err, s.queue, s.latest, s.last = true, err, nil, nil, zero
	close(s.out)
	if s.stop != nil {
		s.stop()
	}
	s.detach()
	delete(h.waiting, s)
	subscribers.WithLabelValues(s.kind).Dec()
	if errors.Is(err, ErrSlowConsumer) {
		slowConsumers.WithLabelValues(s.kind).Inc()
		if h.opts.OnSlowConsumer != nil {
			ctx, kind := s.ctx, s.kind
			h.after = append(h.after, func() { h.opts.OnSlowConsumer(ctx, kind) })
		}
	}
	s.ctx = nil
}

// newSub makes a subscription of the given kind, counted but not yet routed.
func newSub[T any](h *Hub, ctx context.Context, kind string) *Sub[T] {
	subscribers.WithLabelValues(kind).Inc()
	return &Sub[T]{out: make(chan T, 1), subState: subState{hub: h, kind: kind, ctx: ctx}}
}

// watch ends the subscription when ctx is done, without a goroutine of its
// own while it waits.
func (s *Sub[T]) watch(ctx context.Context) {
	if s.ended {
		return
	}
	h := s.hub
	s.stop = context.AfterFunc(ctx, func() {
		h.lock()
		defer h.unlock()
		s.end(nil)
	})
}

// addSub and removeSub keep the subscriptions of a key in a slice: most keys
// have one or two, and a slice costs far less than a map per key.
func addSub[T any](m map[int64][]*Sub[T], key int64, s *Sub[T]) {
	m[key] = append(m[key], s)
}

func removeSub[T any](m map[int64][]*Sub[T], key int64, s *Sub[T]) {
	subs := m[key]
	for i, x := range subs {
		if x == s {
			last := len(subs) - 1
			subs[i] = subs[last]
			subs[last] = nil
			subs = subs[:last]
			break
		}
	}
	if len(subs) == 0 {
		delete(m, key)
		return
	}
	m[key] = subs
}
