package respcache

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"livedrops/domain"
)

func entry(c *Cache, body string, tags ...string) *Entry {
	return &Entry{Body: []byte(body), Expires: time.Now().Add(time.Minute), Tags: tags, Since: c.Seq()}
}

func TestKeyIsCanonical(t *testing.T) {
	a, ok1 := Key("h", "Op", map[string]any{"a": 1, "b": json.Number("2")})
	b, ok2 := Key("h", "Op", map[string]any{"b": json.Number("2"), "a": 1})
	c, _ := Key("h", "Other", map[string]any{"a": 1, "b": json.Number("2")})
	d, _ := Key("h", "Op", nil)
	if !ok1 || !ok2 || a != b || a == c || a == d {
		t.Fatalf("keys: %x %x %x %x", a, b, c, d)
	}
}

func TestEvictByTag(t *testing.T) {
	c := New(1 << 20)
	c.Put("page", entry(c, "page", "drop:1", "product:2"))
	c.Put("other", entry(c, "other", "drop:3"))
	if _, ok := c.Get("page"); !ok {
		t.Fatal("a fresh entry is a miss")
	}
	c.Evict("product:2")
	if _, ok := c.Get("page"); ok {
		t.Fatal("an entry holding an evicted tag is still served")
	}
	if _, ok := c.Get("other"); !ok {
		t.Fatal("an entry without the evicted tag is gone")
	}
	// Filled again after the eviction: served.
	c.Put("page", entry(c, "page v2", "drop:1", "product:2"))
	if e, ok := c.Get("page"); !ok || string(e.Body) != "page v2" {
		t.Fatal("an entry filled after the eviction is not served")
	}
}

func TestEvictionDuringExecutionWins(t *testing.T) {
	c := New(1 << 20)
	e := entry(c, "read before the change", "drop:1") // Since taken as execution began
	c.Evict("drop:1")                                 // the change's event, while it executes
	c.Put("page", e)
	if _, ok := c.Get("page"); ok {
		t.Fatal("a response computed before an eviction was stored after it")
	}
	e = entry(c, "all", "drop:9")
	c.EvictAll()
	c.Put("all", e)
	if _, ok := c.Get("all"); ok {
		t.Fatal("a response computed before EvictAll was stored after it")
	}
}

func TestExpiryAndBytes(t *testing.T) {
	c := New(1 << 20)
	e := entry(c, "short", "drop:1")
	e.Expires = time.Now().Add(20 * time.Millisecond)
	c.Put("short", e)
	time.Sleep(30 * time.Millisecond)
	if _, ok := c.Get("short"); ok {
		t.Fatal("an expired entry is served")
	}
	big := strings.Repeat("x", 64<<10)
	for i := range 64 {
		c.Put(string(rune('a'+i)), entry(c, big, "drop:1"))
	}
	c.store.CleanUp()
	if w := c.store.WeightedSize(); w > 1<<20 {
		t.Fatalf("holds %d bytes, over its 1 MiB bound", w)
	}
}

func TestEventTags(t *testing.T) {
	payload := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	for _, tt := range []struct {
		ev   domain.Event
		want []string
		ok   bool
	}{
		{domain.Event{Type: domain.EventStockChanged, Payload: payload(domain.StockPayload{DropID: 12, CreatorID: 3})},
			[]string{"drop:12", "drops", "liveDrops", "creator:3:drops"}, true},
		{domain.Event{Type: domain.EventSoldOut, Payload: payload(domain.StockPayload{DropID: 12, CreatorID: 3})},
			[]string{"drop:12", "drops", "liveDrops", "creator:3:drops"}, true},
		{domain.Event{Type: domain.EventDropStarted, Payload: payload(domain.DropPayload{DropID: 12, CreatorID: 3, ProductID: 5})},
			[]string{"drop:12", "drops", "liveDrops", "creator:3:drops", "product:5:drops"}, true},
		{domain.Event{Type: domain.EventDropCancelled, Payload: payload(domain.DropPayload{DropID: 12, CreatorID: 3, ProductID: 5})},
			[]string{"drop:12", "drops", "liveDrops", "creator:3:drops", "product:5:drops"}, true},
		{domain.Event{Type: domain.EventOrderPlaced, Payload: payload(domain.OrderPayload{OrderID: 1, DropID: 12})},
			[]string{"drop:12"}, true},
		{domain.Event{Type: domain.EventProductUpdated, Payload: payload(domain.ProductPayload{ProductID: 5, CreatorID: 3})},
			[]string{"product:5", "creator:3:products"}, true},
		{domain.Event{Type: domain.EventCreatorUpdated, Payload: payload(domain.CreatorPayload{CreatorID: 3, FollowerCount: 1, Version: 1})},
			[]string{"creator:3", "creator:3:followers"}, true},
		{domain.Event{Type: domain.EventCreatorUpdated, Payload: payload(domain.CreatorPayload{CreatorID: 3, FollowerCount: 1, Version: 2, UserID: 8})},
			[]string{"creator:3", "creator:3:followers", "user:8:following"}, true},
		{domain.Event{Type: domain.EventCreatorUpdated, Payload: payload(domain.CreatorPayload{CreatorID: 3, Version: 1, UserID: 8, Created: true})},
			[]string{"creator:3", "creator:3:followers", "user:8:following", "creators", "user:8"}, true},
		{domain.Event{Type: domain.EventNotificationCreated, Payload: payload(domain.NotificationPayload{UserID: 1})}, nil, true},
		{domain.Event{Type: domain.EventStockLow, Payload: json.RawMessage(`"garbage"`)}, nil, false},
		{domain.Event{Type: domain.EventProductUpdated, Payload: payload(domain.ProductPayload{})}, nil, false},
	} {
		got, ok := EventTags(tt.ev)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%s %s: %v %v, want %v %v", tt.ev.Type, tt.ev.Payload, got, ok, tt.want, tt.ok)
		}
	}
}

func TestUnreadableEventEvictsEverything(t *testing.T) {
	c := New(1 << 20)
	c.Put("page", entry(c, "page", "drop:1"))
	ev := domain.Event{ID: "x", Type: domain.EventStockChanged, Payload: json.RawMessage(`[]`)}
	if err := c.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("page"); ok {
		t.Fatal("served after an unreadable event")
	}
}

func TestTagsOfMutationResults(t *testing.T) {
	for _, tt := range []struct {
		v       any
		related bool
		want    []string
	}{
		{&domain.Drop{ID: 1, CreatorID: 2, ProductID: 3}, false, []string{"drop:1"}},
		{&domain.Drop{ID: 1, CreatorID: 2, ProductID: 3}, true, []string{"drop:1", "drops", "liveDrops", "creator:2:drops", "product:3:drops"}},
		{&domain.Product{ID: 3, CreatorID: 2}, true, []string{"product:3", "creator:2:products"}},
		{&domain.Creator{ID: 2, UserID: 7}, true, []string{"creator:2", "creator:2:followers", "creators", "user:7"}},
		{(*domain.Drop)(nil), true, nil},
		{&domain.Order{ID: 1, DropID: 4}, false, nil},
		{&domain.Order{ID: 1, DropID: 4}, true, []string{"drop:4", "drops", "liveDrops"}},
	} {
		if got := entityTags(tt.v, tt.related); !slices.Equal(got, tt.want) {
			t.Errorf("entityTags(%T, %v) = %v, want %v", tt.v, tt.related, got, tt.want)
		}
	}
}
