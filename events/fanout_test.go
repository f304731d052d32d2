package events

import (
	"context"
	"errors"
	"slices"
	"testing"

	"livedrops/domain"
)

func TestFanoutHandsEveryEventToEveryHandler(t *testing.T) {
	var seen []string
	boom := errors.New("boom")
	handler := func(name string, err error) Handler {
		return func(_ context.Context, ev domain.Event) error {
			seen = append(seen, name+":"+ev.ID)
			return err
		}
	}
	h := Fanout(handler("hub", nil), handler("cache", boom), handler("responses", nil))
	err := h(context.Background(), domain.Event{ID: "e1", Type: domain.EventStockChanged})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the failing handler's", err)
	}
	// A failure does not keep the event from the handlers after it.
	if want := []string{"hub:e1", "cache:e1", "responses:e1"}; !slices.Equal(seen, want) {
		t.Fatalf("handled %v, want %v", seen, want)
	}
	if err := Fanout()(context.Background(), domain.Event{ID: "e2"}); err != nil {
		t.Fatalf("no handlers: %v", err)
	}
}
