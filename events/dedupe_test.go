package events

import (
	"context"
	"errors"
	"testing"

	"livedrops/domain"
)

func TestDedupeDropsRecentDuplicates(t *testing.T) {
	var handled []string
	fail := map[string]bool{"b": true}
	h := Dedupe(func(_ context.Context, ev domain.Event) error {
		if fail[ev.ID] {
			delete(fail, ev.ID)
			return errors.New("try again")
		}
		handled = append(handled, ev.ID)
		return nil
	}, 3)
	ctx := context.Background()
	for _, id := range []string{"a", "a", "b", "b", "c", "a", "d", "e", "a"} {
		_ = h(ctx, domain.Event{ID: id, Type: domain.EventSoldOut})
	}
	// "b" failed once, so its retry is handled; "a" is forgotten after three newer ids.
	want := []string{"a", "b", "c", "d", "e", "a"}
	if len(handled) != len(want) {
		t.Fatalf("handled %v, want %v", handled, want)
	}
	for i := range want {
		if handled[i] != want[i] {
			t.Fatalf("handled %v, want %v", handled, want)
		}
	}
}
