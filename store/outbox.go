package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// relayLockKey names the transaction-level advisory lock a relay holds while
// it publishes a batch ("ldoutbox" in ASCII).
const relayLockKey int64 = 0x6c646f7574626f78

// ClaimOutbox publishes the oldest unpublished outbox events, at most limit of
// them, and marks them published, all in one transaction: publish must return
// only once the broker has acknowledged every event, and the rows are marked
// only after it returned nil. It returns how many events were published; 0
// with a nil error means there was nothing to do, or another relay holds the
// outbox right now.
//
// Delivery is at least once: a relay that dies after publish but before the
// commit leaves its rows unpublished, and they go out again (consumers dedupe
// by event id).
//
// Ordering: only one relay publishes at a time, under pg_try_advisory_xact_lock.
// SKIP LOCKED alone would let a second relay skip the rows a first one is
// still publishing and send a later event of the same drop ahead of them; the
// lock makes the other relays hot spares that take over within one poll once
// the active one's transaction ends. One relay suffices: the broker, not this
// loop, is the bottleneck, and batches amortise the round trips.
// Outbox ids follow commit order per key only where writers insert a key's
// events after taking a row lock that serialises that key's changes (the
// drop's or its inventory's row): a lower id committed later is published
// after the higher one.
func (db *DB) ClaimOutbox(ctx context.Context, limit int, publish func([]domain.Event) error) (n int, err error) {
	if limit <= 0 {
		return 0, fmt.Errorf("store: claim outbox: limit must be positive, got %d", limit)
	}
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		locked, err := tryRelayLock(ctx, tx)
		if err != nil || !locked {
			return err
		}
		ids, evs, err := selectUnpublished(ctx, tx, db.Topic, limit)
		if err != nil || len(evs) == 0 {
			return err
		}
		if err := publish(evs); err != nil {
			return fmt.Errorf("store: publish %d outbox events from #%d: %w", len(evs), ids[0], err)
		}
		if err := markPublished(ctx, tx, ids, db.now()); err != nil {
			return err
		}
		n = len(evs)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// tryRelayLock takes the relay's advisory lock for the rest of tx, if free.
func tryRelayLock(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var locked bool
	if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1)`, relayLockKey); err != nil {
		return false, fmt.Errorf("store: take outbox relay lock: %w", err)
	}
	return locked, nil
}

// selectUnpublished locks and decodes up to limit unpublished rows of topic
// in id order. A relay claims only its own topic's rows: instances on
// another topic sharing the database publish theirs, to where they belong.
func selectUnpublished(ctx context.Context, tx *sqlx.Tx, topic string, limit int) ([]int64, []domain.Event, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Payload []byte `db:"payload"`
	}
	err := tx.SelectContext(ctx, &rows, `SELECT id, payload FROM outbox
		WHERE published_at IS NULL AND topic = $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("store: select unpublished outbox rows: %w", err)
	}
	ids := make([]int64, len(rows))
	evs := make([]domain.Event, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		// Rows are written only by NewEvent's envelopes; one that does not
		// decode is a bug to fix, not an event to drop silently, so the
		// relay stops on it and says which row.
		if err := json.Unmarshal(r.Payload, &evs[i]); err != nil {
			return nil, nil, fmt.Errorf("store: decode outbox row #%d: %w", r.ID, err)
		}
		if evs[i].ID == "" || evs[i].Type == "" {
			return nil, nil, fmt.Errorf("store: decode outbox row #%d: envelope without id or type", r.ID)
		}
	}
	return ids, evs, nil
}

// markPublished stamps the claimed rows as published.
func markPublished(ctx context.Context, tx *sqlx.Tx, ids []int64, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET published_at = $2 WHERE id = ANY($1)`,
		pq.Array(ids), at)
	if err != nil {
		return fmt.Errorf("store: mark %d outbox rows published: %w", len(ids), err)
	}
	return nil
}

// OutboxLag is the age of the oldest unpublished event, 0 when every event
// has been published.
func (db *DB) OutboxLag(ctx context.Context) (time.Duration, error) {
	var oldest time.Time
	// By id rather than min(created_at): the partial index answers it in one
	// step even when a broker outage has piled up a large backlog.
	err := db.GetContext(ctx, &oldest, `SELECT created_at FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read outbox lag: %w", err)
	}
	return max(db.now().Sub(oldest), 0), nil
}

// PruneOutbox deletes the events published more than olderThan ago and
// returns how many it deleted. Unpublished events are never pruned.
func (db *DB) PruneOutbox(ctx context.Context, olderThan time.Duration) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM outbox WHERE published_at < $1`, db.now().Add(-olderThan))
	if err != nil {
		return 0, fmt.Errorf("store: prune outbox rows published before %s ago: %w", olderThan, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune outbox: count deleted rows: %w", err)
	}
	return n, nil
}

// EnqueueEvents writes events to the outbox in a transaction of their own,
// for events that accompany no other change in this store.
func (db *DB) EnqueueEvents(ctx context.Context, evs ...domain.Event) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		return insertOutbox(ctx, tx, db.Topic, evs...)
	})
}
