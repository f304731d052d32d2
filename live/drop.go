package live

import (
	"context"
	"fmt"
	"time"

	"livedrops/domain"
)

// DropUpdate is a drop's live state: what dropUpdated sends. A subscription's
// first update is the state read from the database; every later one is a
// complete state too, never a delta.
type DropUpdate struct {
	DropID int64
	Status domain.DropStatus
	Stock  domain.Stock
	// Version is the inventory's version, when the store provides one: it
	// orders the snapshot and stock events, so a stale event (older than the
	// snapshot) is recognised and ignored. 0 means unknown.
	Version int64
	// Event is the type of the event that made this state, empty for a state
	// read from the database.
	Event string
	// At is when that event occurred.
	At time.Time
}

// dropChange is one event about a drop, decoded.
type dropChange struct {
	typ   string
	at    time.Time
	stock *domain.StockPayload // stock events; nil for the drop's own lifecycle events
}

// rank orders statuses: a drop only ever moves to a higher rank, except
// between LIVE and SOLD_OUT, which stock moves decide.
func rank(s domain.DropStatus) int {
	switch s {
	case domain.DropScheduled:
		return 0
	case domain.DropLive, domain.DropSoldOut:
		return 1
	case domain.DropEnded, domain.DropCancelled:
		return 2
	}
	return -1
}

// terminal reports whether a drop in status s can change no more.
func terminal(s domain.DropStatus) bool { return rank(s) == 2 }

// apply moves the state by one event and reports whether it changed. Events
// the state already reflects (older than it) change nothing, so applying
// events heard before and after a snapshot never moves the state back.
func (u *DropUpdate) apply(c dropChange) bool {
	if terminal(u.Status) {
		return false
	}
	if c.stock == nil {
		switch c.typ {
		case domain.EventDropStarted:
			if u.Status != domain.DropScheduled {
				return false
			}
			u.Status = domain.DropLive
		case domain.EventDropEnded:
			u.Status = domain.DropEnded
		case domain.EventDropCancelled:
			u.Status = domain.DropCancelled
		default:
			return false
		}
		u.Event, u.At = c.typ, c.at
		return true
	}
	p := c.stock
	// StockLow and SoldOut carry the stock of the StockChanged written with
	// them, version included: the same version is news for them.
	news := c.typ != domain.EventStockChanged
	if p.Version != 0 && u.Version != 0 && (p.Version < u.Version || p.Version == u.Version && !news) {
		return false
	}
	u.Stock = domain.Stock{DropID: u.DropID, Total: p.Total, Available: p.Available, Reserved: p.Reserved, Sold: p.Sold}
	if p.Version != 0 {
		u.Version = p.Version
	}
	u.Status = statusAfterStock(u.Status, c.typ, p)
	u.Event, u.At = c.typ, c.at
	return true
}

// statusAfterStock is a drop's status after a stock event: the status the
// event carries, or else what the selling rules imply (a LIVE drop that sold
// its last unit is SOLD_OUT; a SOLD_OUT one that got stock back is LIVE).
func statusAfterStock(cur domain.DropStatus, typ string, p *domain.StockPayload) domain.DropStatus {
	if p.Status != "" {
		if rank(p.Status) >= rank(cur) {
			return p.Status
		}
		return cur
	}
	switch {
	case typ == domain.EventSoldOut && (cur == domain.DropLive || cur == domain.DropScheduled):
		return domain.DropSoldOut
	case typ == domain.EventStockChanged && cur == domain.DropSoldOut && p.Available > 0:
		return domain.DropLive
	}
	return cur
}

// adopt merges a snapshot read while the topic was already live: its stock
// only when it is provably newer (a higher version), its status only when it
// is further along. It reports whether the state changed.
func (u *DropUpdate) adopt(snap DropUpdate) bool {
	if terminal(u.Status) {
		return false
	}
	switch {
	case snap.Version > u.Version:
		u.Stock, u.Version = snap.Stock, snap.Version
		if rank(snap.Status) >= rank(u.Status) {
			u.Status = snap.Status
		}
	case rank(snap.Status) > rank(u.Status):
		u.Status = snap.Status
	default:
		return false
	}
	u.Event, u.At = "", snap.At
	return true
}

// dropTopic is one drop's subscribers and state. Its state is built from a
// snapshot and every event heard since, so it is as fresh as the event
// stream; it is forgotten when its last subscriber leaves.
type dropTopic struct {
	id   int64
	subs map[*Sub[*DropUpdate]]struct{}
	// loading counts subscribers reading their snapshot.
	loading int
	// ready: state holds a snapshot. Until then events wait in pending.
	ready   bool
	state   DropUpdate
	pending []dropChange
	// seq counts the state's changes; cur is the state as last handed out,
	// shared by every subscriber, made afresh only when seq moved.
	seq    uint64
	cur    *DropUpdate
	curSeq uint64
	// lastFlush is when stock last went out to the subscribers; due, when
	// set, when it goes out next (or the round's next batch does).
	lastFlush time.Time
	due       time.Time
	// A round hands stock out batch by batch (more subscribers than
	// Options.FlushBatch): round holds its subscribers, those from turn on
	// still to be served; batch the last ones handed it, batchBy when the
	// next batch goes even if some of those have not taken it yet. roundSeq
	// is the state's seq when the round began.
	inRound  bool
	round    []*Sub[*DropUpdate]
	turn     int
	batch    []*Sub[*DropUpdate]
	batchBy  time.Time
	roundSeq uint64
}

const (
	// batchGap is the least time between two batches of rounds, of any drop
	// of the hub: with Options.FlushBatch it caps how many subscribers the
	// hub wakes for stock each millisecond, so delivering stock to thousands
	// never takes every CPU from the sales that make it.
	batchGap = time.Millisecond
	// batchPatience is how long a round waits for a batch before it goes on
	// without the subscribers that have not taken their update yet (one
	// stuck in a write must not hold up the others).
	batchPatience = 10 * time.Millisecond
)

// maxPending bounds the events a topic keeps while its first snapshot is
// read; past it, the oldest plain stock change goes (a newer one follows).
const maxPending = 256

func (t *dropTopic) current() *DropUpdate {
	if t.cur == nil || t.curSeq != t.seq {
		u := t.state
		t.cur, t.curSeq = &u, t.seq
	}
	return t.cur
}

func (t *dropTopic) hold(c dropChange) {
	if len(t.pending) >= maxPending {
		for i, p := range t.pending {
			if p.typ == domain.EventStockChanged {
				t.pending = append(t.pending[:i], t.pending[i+1:]...)
				break
			}
		}
		if len(t.pending) >= maxPending {
			t.pending = t.pending[1:]
		}
	}
	t.pending = append(t.pending, c)
}

// SubscribeDrop subscribes to a drop's stock and status. The first update is
// the drop's current state, read with Options.DropSnapshot after the
// subscription is registered, so no event falls between the two. Stock
// updates are conflated: at most one every Options.StockInterval, always the
// newest. Lifecycle updates (started, stock low, sold out, ended, cancelled)
// are never dropped. The subscription completes after the update that ends or
// cancels the drop, and ends when ctx is done.
func (h *Hub) SubscribeDrop(ctx context.Context, dropID int64) (*Sub[*DropUpdate], error) {
	if h.opts.DropSnapshot == nil {
		return nil, fmt.Errorf("live: subscribe to drop #%d: the hub has no DropSnapshot", dropID)
	}
	if err := h.lockOpen(ctx); err != nil {
		return nil, err
	}
	t := h.drops[dropID]
	if t == nil {
		t = &dropTopic{id: dropID, subs: map[*Sub[*DropUpdate]]struct{}{}}
		h.drops[dropID] = t
	}
	t.loading++
	h.unlock()

	snap, err := h.opts.DropSnapshot(ctx, dropID)

	h.lock()
	defer h.unlock()
	t.loading--
	if err == nil && h.closed {
		err = ErrClosed
	}
	if err != nil {
		h.forgetDrop(t)
		return nil, err
	}
	snap.DropID = dropID
	snap.Stock.DropID = dropID
	now := time.Now()
	if !t.ready {
		t.state, t.ready = snap, true
		for _, c := range t.pending {
			t.state.apply(c)
		}
		t.pending = nil
		t.seq++
	} else if t.state.adopt(snap) {
		h.dropChanged(t, false, now)
	}

	s := newSub[*DropUpdate](h, ctx, "drop")
	s.detach = func() {
		delete(t.subs, s)
		h.forgetDrop(t)
	}
	s.latest = func() (*DropUpdate, uint64) { return t.current(), t.seq }
	t.subs[s] = struct{}{}
	u := t.current()
	s.offer(queued[*DropUpdate]{v: u, seq: t.seq, final: terminal(u.Status)}, true)
	s.watch(ctx)
	return s, nil
}

// forgetDrop drops a topic no one subscribes to or is subscribing to.
func (h *Hub) forgetDrop(t *dropTopic) {
	if len(t.subs) > 0 || t.loading > 0 {
		return
	}
	if h.drops[t.id] == t {
		delete(h.drops, t.id)
	}
	delete(h.due, t)
	t.endRound()
}

// routeDrop applies an event to the drop's topic, if anyone subscribes.
func (h *Hub) routeDrop(dropID int64, c dropChange, now time.Time) {
	t := h.drops[dropID]
	if t == nil {
		return
	}
	if !t.ready {
		t.hold(c)
		return
	}
	if t.state.apply(c) {
		h.dropChanged(t, c.typ != domain.EventStockChanged, now)
	}
}

// dropChanged hands a topic's new state to its subscribers: a lifecycle
// change to each one's queue at once, a stock change at the next flush.
func (h *Hub) dropChanged(t *dropTopic, lifecycle bool, now time.Time) {
	t.seq++
	if lifecycle || terminal(t.state.Status) {
		u := t.current()
		q := queued[*DropUpdate]{v: u, seq: t.seq, final: terminal(u.Status)}
		for s := range t.subs {
			s.offer(q, false)
		}
		return
	}
	if len(t.subs) == 0 {
		return
	}
	if t.inRound || !t.due.IsZero() {
		// The state waiting for the flush is replaced for every subscriber.
		updatesConflated.Add(float64(len(t.subs)))
		return
	}
	if now.Sub(t.lastFlush) >= h.opts.StockInterval {
		h.flushDrop(t, now)
		if t.inRound {
			h.wakeFlusher() // to serve the round's next batches
		}
		return
	}
	t.due = t.lastFlush.Add(h.opts.StockInterval)
	h.due[t] = struct{}{}
	h.wakeFlusher()
}

// flushDrop hands the topic's newest state to every subscriber that has not
// got it and has nothing queued (those get it once their queue is through):
// at once to a few, in a round of batches to many.
func (h *Hub) flushDrop(t *dropTopic, now time.Time) {
	t.lastFlush, t.due = now, time.Time{}
	delete(h.due, t)
	if len(t.subs) <= h.opts.FlushBatch {
		for s := range t.subs {
			h.flushTo(t, s)
		}
		return
	}
	// Everyone, not only those without the state now: a subscriber served
	// early in the round may be behind once the state moves again.
	t.inRound, t.roundSeq = true, t.seq
	for s := range t.subs {
		t.round = append(t.round, s)
	}
	h.nextBatch(t, now)
}

// flushTo hands s the topic's newest state, unless it has it already or has
// updates queued before it, and reports whether it put it in s's slot.
func (h *Hub) flushTo(t *dropTopic, s *Sub[*DropUpdate]) bool {
	if s.ended || len(s.queue) > 0 || s.sentSeq >= t.seq {
		return false
	}
	if !s.put(t.current(), true) {
		h.wait(s)
		return false
	}
	s.sentSeq = t.seq
	return true
}

// nextBatch hands the newest state to the round's next batch once the batch
// before has taken its own (or was given batchPatience), and schedules what
// follows: the next batch, or, after the last one, a new round if the state
// moved meanwhile.
func (h *Hub) nextBatch(t *dropTopic, now time.Time) {
	if now.Before(h.batchFree) {
		h.schedule(t, h.batchFree)
		return
	}
	if now.Before(t.batchBy) && !t.batchTaken() {
		h.schedule(t, now.Add(batchGap))
		return
	}
	// A batch is FlushBatch subscribers woken: those that have the state
	// already cost nothing, and do not count.
	clear(t.batch)
	t.batch = t.batch[:0]
	for t.turn < len(t.round) && len(t.batch) < h.opts.FlushBatch {
		s := t.round[t.turn]
		t.turn++
		if h.flushTo(t, s) {
			t.batch = append(t.batch, s)
		}
	}
	h.batchFree = now.Add(batchGap)
	if t.turn < len(t.round) {
		t.batchBy = now.Add(batchPatience)
		h.schedule(t, h.batchFree)
		return
	}
	moved := t.seq != t.roundSeq
	t.endRound()
	if moved {
		// The first batches got an older state than the last ones.
		h.schedule(t, later(t.lastFlush.Add(h.opts.StockInterval), h.batchFree))
		return
	}
	t.due = time.Time{}
	delete(h.due, t)
}

// batchTaken reports whether the last batch took its update out of the slot
// (its subscribers' goroutines ran), so the next one may be woken.
func (t *dropTopic) batchTaken() bool {
	for _, s := range t.batch {
		if !s.ended && len(s.out) > 0 {
			return false
		}
	}
	return true
}

// endRound forgets a round, keeping the round's memory for the next.
func (t *dropTopic) endRound() {
	clear(t.round)
	clear(t.batch)
	t.inRound, t.round, t.turn, t.batch, t.batchBy = false, t.round[:0], 0, t.batch[:0], time.Time{}
}

// schedule has the flusher come back to t at the given time.
func (h *Hub) schedule(t *dropTopic, at time.Time) {
	t.due = at
	h.due[t] = struct{}{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
