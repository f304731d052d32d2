package events

import (
	"context"
	"sync"

	"livedrops/domain"
)

// Dedupe wraps h so that an event whose id was among the last size events
// handled is dropped. Delivery is at least once, and the duplicates it brings
// (a batch published again after a relay failover, a redelivery after a
// rebalance) arrive close to the original, so a bounded memory of recent ids
// absorbs nearly all of them; handlers whose effect must never repeat still
// need their own idempotence. An event whose handling failed is not
// remembered, so its retry goes through.
func Dedupe(h Handler, size int) Handler {
	size = max(size, 1)
	var (
		mu   sync.Mutex
		seen = make(map[string]struct{}, size)
		ring = make([]string, size) // ids in handling order; next is overwritten first
		next int
	)
	return func(ctx context.Context, ev domain.Event) error {
		mu.Lock()
		_, dup := seen[ev.ID]
		mu.Unlock()
		if dup {
			return nil
		}
		if err := h(ctx, ev); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, dup := seen[ev.ID]; dup {
			return nil
		}
		delete(seen, ring[next])
		ring[next] = ev.ID
		seen[ev.ID] = struct{}{}
		next = (next + 1) % size
		return nil
	}
}
