package respcache

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"livedrops/domain"
)

// Handle evicts what ev changed; it is an events.Handler for the instance's
// tail consumer, so every instance evicts its own cache. Eviction is
// idempotent: a replayed or late event only costs a miss. An event whose
// payload cannot be read empties the cache rather than risk a stale answer.
//
// It evicts again after Settle: the shared Redis tier is invalidated by
// another consumer, in its own time, and a response refilled from it in
// between would otherwise keep its old value for its whole maxAge.
//
// A follow writes CreatorUpdated, which evicts the creator and its
// followers; the follower's own following list is fresh on the writing
// instance at once and on the others within its maxAge (10 s).
// Creating a product or becoming a creator writes none either: other
// instances see the new item in lists within the lists' maxAge.
func (c *Cache) Handle(ctx context.Context, ev domain.Event) error {
	tags, ok := EventTags(ev)
	if !ok {
		slog.WarnContext(ctx, "response cache: unreadable event payload, evicting everything", "component", "respcache",
			"type", ev.Type, "id", ev.ID)
		c.EvictAll()
		return nil
	}
	c.Evict(tags...)
	if len(tags) > 0 {
		time.AfterFunc(c.Settle, func() { c.Evict(tags...) })
	}
	return nil
}

// EventTags are the tags an event evicts; ok is false when its payload
// cannot be read.
func EventTags(ev domain.Event) (tags []string, ok bool) {
	switch ev.Type {
	case domain.EventDropScheduled, domain.EventDropStarted, domain.EventDropEnded, domain.EventDropCancelled:
		var p domain.DropPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.DropID == 0 {
			return nil, false
		}
		return DropTags(p.DropID, p.CreatorID, p.ProductID), true
	case domain.EventStockChanged, domain.EventStockLow, domain.EventSoldOut:
		// The status may have moved with the stock: the drop's lists too.
		var p domain.StockPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.DropID == 0 {
			return nil, false
		}
		return DropTags(p.DropID, p.CreatorID, 0), true
	case domain.EventOrderPlaced, domain.EventOrderConfirmed, domain.EventOrderCancelled, domain.EventOrderExpired:
		// Orders are never cached; their stock moves come as stock events,
		// but the drop is evicted here too in case they come first.
		var p domain.OrderPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.DropID == 0 {
			return nil, false
		}
		return []string{DropTag(p.DropID)}, true
	case domain.EventCreatorUpdated:
		var p domain.CreatorPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.CreatorID == 0 {
			return nil, false
		}
		tags := []string{CreatorTag(p.CreatorID), CreatorTag(p.CreatorID) + ":followers"}
		if p.UserID != 0 {
			tags = append(tags, UserTag(p.UserID)+":following")
		}
		if p.Created {
			tags = append(tags, ListCreators, UserTag(p.UserID))
		}
		return tags, true
	case domain.EventProductUpdated:
		var p domain.ProductPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.ProductID == 0 {
			return nil, false
		}
		return ProductTags(p.ProductID, p.CreatorID), true
	}
	// Notifications are private, never cached.
	return nil, true
}
