package cache

import (
	"context"
	"fmt"

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
//   - CreatorUpdated (a follow moved the follower count): the creator.
//
// Drop and stock events change nothing in Redis (drops and stock live only
// in each instance's near cache, which its own events keep exact).
// Evictions are idempotent, so a redelivered event is harmless.
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
		if !decodeEvent(ctx, ev, &p) || p.ProductID == 0 {
			return nil
		}
		for _, kind := range []string{KindProduct, KindProductMedia} {
			if err := inv.c.Evict(ctx, kind, p.ProductID); err != nil {
				return fmt.Errorf("cache: invalidate product #%d on event %s: %w", p.ProductID, ev.ID, err)
			}
		}
	case domain.EventCreatorUpdated:
		var p domain.CreatorPayload
		if !decodeEvent(ctx, ev, &p) || p.CreatorID == 0 {
			return nil
		}
		if err := inv.c.Evict(ctx, KindCreator, p.CreatorID); err != nil {
			return fmt.Errorf("cache: invalidate creator #%d on event %s: %w", p.CreatorID, ev.ID, err)
		}
	}
	return nil
}
