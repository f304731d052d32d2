package live

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"livedrops/domain"
)

// DropEventKind is what happened to a drop, as dropEvents tells it.
type DropEventKind string

const (
	DropEventScheduled DropEventKind = "DROP_SCHEDULED"
	DropEventStarted   DropEventKind = "DROP_STARTED"
	DropEventStockLow  DropEventKind = "STOCK_LOW"
	DropEventSoldOut   DropEventKind = "SOLD_OUT"
	DropEventEnded     DropEventKind = "DROP_ENDED"
	DropEventCancelled DropEventKind = "DROP_CANCELLED"
)

// dropEventKinds maps event types to the kinds dropEvents sends.
var dropEventKinds = map[string]DropEventKind{
	domain.EventDropScheduled: DropEventScheduled,
	domain.EventDropStarted:   DropEventStarted,
	domain.EventStockLow:      DropEventStockLow,
	domain.EventSoldOut:       DropEventSoldOut,
	domain.EventDropEnded:     DropEventEnded,
	domain.EventDropCancelled: DropEventCancelled,
}

// MarshalGQL writes the kind as a GraphQL enum value.
func (k DropEventKind) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads a GraphQL enum value.
func (k *DropEventKind) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("drop event kind must be a string")
	}
	for _, known := range dropEventKinds {
		if string(known) == str {
			*k = known
			return nil
		}
	}
	return fmt.Errorf("%q is not a drop event kind", str)
}

// DropEvent is a lifecycle event of a creator's drop: what dropEvents sends.
type DropEvent struct {
	Kind      DropEventKind
	DropID    int64
	CreatorID int64
	At        time.Time
}

// SubscribeCreators subscribes to the lifecycle events of the drops of the
// given creators (the resolver resolves "creators the viewer follows" to ids
// and caps their number: each id costs a few dozen bytes). Events are never
// dropped; a subscriber that lets Options.QueueSize of them wait is ended
// with ErrSlowConsumer. It ends when ctx is done.
func (h *Hub) SubscribeCreators(ctx context.Context, creatorIDs []int64) (*Sub[*DropEvent], error) {
	ids := slices.Clone(creatorIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if err := h.lockOpen(ctx); err != nil {
		return nil, err
	}
	defer h.unlock()
	s := newSub[*DropEvent](h, ctx, "creators")
	for _, id := range ids {
		addSub(h.creators, id, s)
	}
	s.detach = func() {
		for _, id := range ids {
			removeSub(h.creators, id, s)
		}
	}
	s.watch(ctx)
	return s, nil
}

func (h *Hub) routeCreator(creatorID, dropID int64, ev domain.Event) {
	subs := h.creators[creatorID]
	kind, ok := dropEventKinds[ev.Type]
	if len(subs) == 0 || !ok {
		return
	}
	e := &DropEvent{Kind: kind, DropID: dropID, CreatorID: creatorID, At: ev.OccurredAt}
	// offer may end a subscriber, which edits the slice being walked.
	for _, s := range slices.Clone(subs) {
		s.offer(queued[*DropEvent]{v: e}, false)
	}
}

// EventNotificationsCreated is the event the notifier writes once per batch
// of notifications (store.EventNotificationsCreated; the payload below
// mirrors store.NotificationsCreatedPayload).
const EventNotificationsCreated = "NotificationsCreated"

type notificationsCreated struct {
	DropID        int64                   `json:"dropId"`
	CreatorID     int64                   `json:"creatorId"`
	Kind          domain.NotificationKind `json:"kind"`
	CreatedAt     time.Time               `json:"createdAt"`
	Notifications []struct {
		ID     int64 `json:"id"`
		UserID int64 `json:"userId"`
	} `json:"notifications"`
}

// SubscribeUser subscribes to the notifications written for the user, as
// notificationAdded sends them. None is dropped; a subscriber that lets
// Options.QueueSize of them wait is ended with ErrSlowConsumer. It ends when
// ctx is done.
func (h *Hub) SubscribeUser(ctx context.Context, userID int64) (*Sub[*domain.Notification], error) {
	if err := h.lockOpen(ctx); err != nil {
		return nil, err
	}
	defer h.unlock()
	s := newSub[*domain.Notification](h, ctx, "user")
	addSub(h.users, userID, s)
	s.detach = func() { removeSub(h.users, userID, s) }
	s.watch(ctx)
	return s, nil
}

func (h *Hub) routeNotifications(p *notificationsCreated) {
	for _, n := range p.Notifications {
		subs := h.users[n.UserID]
		if len(subs) == 0 {
			continue
		}
		note := &domain.Notification{ID: n.ID, UserID: n.UserID, Kind: p.Kind, DropID: p.DropID,
			CreatorID: p.CreatorID, CreatedAt: p.CreatedAt}
		for _, s := range slices.Clone(subs) {
			s.offer(queued[*domain.Notification]{v: note}, false)
		}
	}
}

// settled reports whether an order in status s can change no more.
func settled(s domain.OrderStatus) bool {
	return s == domain.OrderConfirmed || s == domain.OrderCancelled || s == domain.OrderExpired
}

func orderStatusOf(eventType string) domain.OrderStatus {
	switch eventType {
	case domain.EventOrderConfirmed:
		return domain.OrderConfirmed
	case domain.EventOrderCancelled:
		return domain.OrderCancelled
	case domain.EventOrderExpired:
		return domain.OrderExpired
	}
	return domain.OrderPendingPayment
}

// orderChange is an order event, decoded.
type orderChange struct {
	orderID int64
	status  domain.OrderStatus
	at      time.Time
}

// SubscribeOrder subscribes to one order, as orderUpdated sends it (the
// caller checks the order is the viewer's). The first update is the order
// read with Options.OrderSnapshot, after the subscription is registered so
// no event falls in between; each later one is that order with the status an
// event settled it to (CONFIRMED, CANCELLED, EXPIRED). The subscription
// completes after that update, and ends when ctx is done.
func (h *Hub) SubscribeOrder(ctx context.Context, orderID int64) (*Sub[*domain.Order], error) {
	if h.opts.OrderSnapshot == nil {
		return nil, fmt.Errorf("live: subscribe to order #%d: the hub has no OrderSnapshot", orderID)
	}
	if err := h.lockOpen(ctx); err != nil {
		return nil, err
	}
	s := newSub[*domain.Order](h, ctx, "order")
	s.loading = true
	addSub(h.orders, orderID, s)
	s.detach = func() { removeSub(h.orders, orderID, s) }
	s.watch(ctx)
	h.unlock()

	snap, err := h.opts.OrderSnapshot(ctx, orderID)

	h.lock()
	defer h.unlock()
	if err != nil {
		s.end(nil)
		return nil, err
	}
	if s.ended {
		if h.closed {
			return nil, ErrClosed
		}
		return s, nil // ctx ended meanwhile: C is closed already
	}
	snap.ID = orderID
	heard := s.queue
	s.queue, s.loading = nil, false
	s.last = &snap
	s.offer(queued[*domain.Order]{v: &snap, final: settled(snap.Status)}, false)
	// What was heard meanwhile is news only if it settles a pending order.
	for _, q := range heard {
		if settled(q.v.Status) {
			h.settleOrder(s, orderChange{orderID: orderID, status: q.v.Status, at: q.v.UpdatedAt})
			break
		}
	}
	return s, nil
}

func (h *Hub) routeOrder(c orderChange) {
	for _, s := range slices.Clone(h.orders[c.orderID]) {
		if s.loading {
			// Kept until the order itself is read; only the status matters.
			s.offer(queued[*domain.Order]{v: &domain.Order{ID: c.orderID, Status: c.status, UpdatedAt: c.at}}, false)
			continue
		}
		h.settleOrder(s, c)
	}
}

// settleOrder hands the subscriber its order settled by c; a change that
// settles nothing (an order placed, or one settled already) is no news.
func (h *Hub) settleOrder(s *Sub[*domain.Order], c orderChange) {
	if !settled(c.status) || s.last == nil || settled(s.last.Status) {
		return
	}
	o := *s.last
	o.Status, o.UpdatedAt = c.status, c.at
	s.last = &o
	s.offer(queued[*domain.Order]{v: &o, final: true}, false)
}
