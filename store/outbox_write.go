package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// NewEvent builds an event envelope with a fresh id; the payload is encoded
// as JSON once, here, so the relay publishes the outbox row as it is.
func NewEvent(typ, key string, payload any, at time.Time) (domain.Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return domain.Event{}, fmt.Errorf("store: encode %s payload: %w", typ, err)
	}
	return domain.Event{
		ID:         uuid.NewString(),
		Type:       typ,
		OccurredAt: at.UTC(),
		Key:        key,
		Payload:    raw,
	}, nil
}

// insertOutbox writes events to the outbox inside tx, in one statement; the
// payload column holds the whole envelope. Their created_at is the moment of
// the insert, not the transaction's start: writing the events ends a change's
// transaction, so created_at is close to the commit and leaves out the time
// the transaction waited for locks (a hot drop's inventory row) before it.
// One clock reading serves every row of the statement: events of one change
// share it.
func insertOutbox(ctx context.Context, tx *sqlx.Tx, topic string, events ...domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	keys := make([]string, len(events))
	types := make([]string, len(events))
	envelopes := make([]string, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("store: encode %s event: %w", e.Type, err)
		}
		keys[i], types[i], envelopes[i] = e.Key, e.Type, string(b)
	}
	// WITH ORDINALITY keeps the events' order in the outbox ids.
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (topic, key, type, payload, created_at)
		SELECT $1, e.key, e.type, e.payload::jsonb, (SELECT clock_timestamp())
		FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(key, type, payload, n)
		ORDER BY e.n`,
		topic, pq.Array(keys), pq.Array(types), pq.Array(envelopes))
	if err != nil {
		return mapError(err, "write %d outbox events (first %s)", len(events), events[0].Type)
	}
	if evs, ok := written.Load(tx); ok {
		written.Store(tx, append(evs.([]domain.Event), events...))
	}
	return nil
}
