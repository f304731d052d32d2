package cache

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"livedrops/domain"
)

func productEvent(t *testing.T, typ string, payload any) domain.Event {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return domain.Event{ID: "ev-" + typ, Type: typ, OccurredAt: time.Now(), Key: "product:1", Payload: raw}
}

func TestInvalidatorEvictsChangedProducts(t *testing.T) {
	c, rdb := newCache(t, time.Minute)
	ctx := context.Background()
	keys := []string{
		c.Key(KindProduct, 7), c.Key(KindProductMedia, 7),
		c.Key(KindProduct, 8), c.Key(KindProductMedia, 8), c.Key(KindCreator, 3),
	}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, `{}`, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	present := func() map[string]bool {
		out := map[string]bool{}
		for _, k := range keys {
			n, err := rdb.Exists(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[k] = n == 1
		}
		return out
	}
	inv := NewInvalidator(c)

	// Events that change nothing cached, and an unreadable one, evict nothing.
	for _, ev := range []domain.Event{
		productEvent(t, domain.EventDropStarted, domain.DropPayload{DropID: 1, CreatorID: 3, ProductID: 7}),
		productEvent(t, domain.EventStockChanged, domain.StockPayload{DropID: 1, CreatorID: 3}),
		{ID: "bad", Type: domain.EventProductUpdated, Payload: json.RawMessage(`"not an object"`)},
		productEvent(t, domain.EventProductUpdated, map[string]any{"creatorId": 3}),
	} {
		if err := inv.Handle(ctx, ev); err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
	}
	for k, ok := range present() {
		if !ok {
			t.Fatalf("%s evicted by an event about something else", k)
		}
	}

	// ProductUpdated evicts the product and its media list, twice harmlessly.
	ev := productEvent(t, domain.EventProductUpdated, domain.ProductPayload{ProductID: 7, CreatorID: 3})
	for range 2 {
		if err := inv.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := present()
	want := map[string]bool{keys[0]: false, keys[1]: false, keys[2]: true, keys[3]: true, keys[4]: true}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("after ProductUpdated of #7: %s present = %v, want %v", k, got[k], w)
		}
	}

	// CreatorUpdated (a follow) evicts the creator.
	if err := inv.Handle(ctx, productEvent(t, domain.EventCreatorUpdated, domain.CreatorPayload{CreatorID: 3, FollowerCount: 1, Version: 1})); err != nil {
		t.Fatal(err)
	}
	if present()[keys[4]] {
		t.Fatalf("creator #3 still in Redis after CreatorUpdated")
	}
}

// A Redis failure is returned so the consumer offers the event again: a
// skipped eviction would leave the old value served until its TTL.
func TestInvalidatorReportsRedisFailures(t *testing.T) {
	rdb, err := Connect("redis://127.0.0.1:1/0?max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	inv := NewInvalidator(New(rdb, "x:", time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := inv.Handle(ctx, productEvent(t, domain.EventProductUpdated, domain.ProductPayload{ProductID: 7})); err == nil {
		t.Fatal("eviction against an unreachable Redis reported no error")
	}
}
