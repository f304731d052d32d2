// Package events is the event bus: the outbox relay that publishes committed
// events to Kafka, the idempotent producer it publishes with, and the consumer
// base the live hub, cache invalidator and notifier are built on. It is the
// only package that talks to the Kafka client.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"livedrops/domain"
)

// Handler handles one event. An error means "not handled": the consumer offers
// the same event again, after a pause, rather than skip it.
type Handler func(ctx context.Context, ev domain.Event) error

// Encode returns the wire form of an event: its envelope as JSON.
func Encode(ev domain.Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s event %s: %w", ev.Type, ev.ID, err)
	}
	return b, nil
}

// Decode parses a message value into its envelope. An envelope without an id
// or a type is refused: consumers dedupe by id and route by type.
func Decode(value []byte) (domain.Event, error) {
	var ev domain.Event
	if err := json.Unmarshal(value, &ev); err != nil {
		return domain.Event{}, fmt.Errorf("events: decode envelope: %w", err)
	}
	if ev.ID == "" || ev.Type == "" {
		return domain.Event{}, errors.New("events: decode envelope: missing id or type")
	}
	return ev, nil
}

// forwardLogs passes librdkafka's log lines to slog until the client closes
// the channel, so they come out as structured logs rather than raw stderr.
func forwardLogs(log *slog.Logger, client string, logs <-chan kafka.LogEvent) {
	for e := range logs {
		// librdkafka levels are syslog levels: 0-3 errors, 4 warnings, 5
		// notices (kept as info), 6 informational chatter and 7 debug.
		level := slog.LevelDebug
		switch {
		case e.Level <= 3:
			level = slog.LevelError
		case e.Level == 4:
			level = slog.LevelWarn
		case e.Level == 5:
			level = slog.LevelInfo
		}
		log.Log(context.Background(), level, "kafka "+client+": "+e.Message, "tag", e.Tag, "name", e.Name)
	}
}

// Fanout returns a handler handing each event to every handler in turn, so
// one consumer feeds several. An error from any is returned (joined), and
// the consumer then offers the event to all of them again: they must be
// idempotent.
func Fanout(handlers ...Handler) Handler {
	return func(ctx context.Context, ev domain.Event) error {
		var errs []error
		for _, h := range handlers {
			if err := h(ctx, ev); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
