package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"livedrops/domain"
)

// Invalidator evicts what events say changed, so no instance serves a value
// another instance changed. The writer evicts at once too, but a read racing
// the write may put the old value back just after; the event, handled after
// the commit, evicts that one. It runs in one shared consumer group: every
// instance shares Redis, so one eviction serves them all.
//
// What it evicts, by event:
//   - ProductUpdated (a product's fields or its media list changed): the
//     product and its media list.
//
// Drop and stock events change nothing cached (drops and stock are never
// cached, and a creator's cached row has no drop data). Follows change the
// creator's follower count without an event; the follow itself evicts the
// creator. Evictions are idempotent, so a redelivered event is harmless.
type Invalidator struct {
	c *Cache
}

// NewInvalidator returns an invalidator evicting from c.
func NewInvalidator(c *Cache) *Invalidator { return &Invalidator{c: c} }

// Handle evicts what ev changed. A Redis failure is returned, so the
// consumer offers the event again rather than leave a stale value; an event
// whose payload cannot be read is logged and skipped (no retry could help).
func (inv *Invalidator) Handle(ctx context.Context, ev domain.Event) error {
	switch ev.Type {
	case domain.EventProductUpdated:
		var p domain.ProductPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil || p.ProductID == 0 {
			failures.WithLabelValues(KindProduct, "event").Inc()
			slog.ErrorContext(ctx, "cache invalidator: skipping an event whose payload cannot be read", "component", "cache",
				"type", ev.Type, "id", ev.ID, "err", err, "payload", string(ev.Payload))
			return nil
		}
		for _, kind := range []string{KindProduct, KindProductMedia} {
			if err := inv.c.Evict(ctx, kind, p.ProductID); err != nil {
				return fmt.Errorf("cache: invalidate product #%d on event %s: %w", p.ProductID, ev.ID, err)
			}
		}
	}
	return nil
}
