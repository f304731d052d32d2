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

// OutboxClaim is what one ClaimOutbox did.
type OutboxClaim struct {
	Published    int // events published and marked published
	DeadLettered int // rows moved to dead_letters: undecodable, or refused for good
}

// Rows is how many rows the claim took out of the unpublished outbox.
func (c OutboxClaim) Rows() int { return c.Published + c.DeadLettered }

// Refused is the error a publish function returns when some events were
// refused for good (too large, malformed): no retry could ever deliver them.
// Every other event of the batch was delivered.
type Refused struct {
	Reasons map[int]error // by index in the batch
}

func (r *Refused) Error() string {
	return fmt.Sprintf("%d events refused for good", len(r.Reasons))
}

// ClaimOutbox publishes the oldest unpublished outbox events, at most limit of
// them, and marks them published, all in one transaction: publish must return
// only once the broker has acknowledged every event, and the rows are marked
// only after it returned nil (or a *Refused). A row that can never go out (it
// does not decode, or publish refused it for good) moves to dead_letters with
// its error, and the rows after it, of its drop too, go out as usual: a
// poison event never stops the bus. Claimed rows are 0 with a nil error when
// there was nothing to do, or another relay holds the outbox right now.
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
func (db *DB) ClaimOutbox(ctx context.Context, limit int, publish func([]domain.Event) error) (OutboxClaim, error) {
	if limit <= 0 {
		return OutboxClaim{}, fmt.Errorf("store: claim outbox: limit must be positive, got %d", limit)
	}
	var claim OutboxClaim
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		claim = OutboxClaim{}
		locked, err := tryRelayLock(ctx, tx)
		if err != nil || !locked {
			return err
		}
		ids, evs, dead, err := selectUnpublished(ctx, tx, db.Topic, limit)
		if err != nil || len(ids)+len(dead) == 0 {
			return err
		}
		if len(evs) > 0 {
			var refused *Refused
			switch err := publish(evs); {
			case errors.As(err, &refused):
				kept := ids[:0:0]
				for i, id := range ids {
					if reason, ok := refused.Reasons[i]; ok {
						dead = append(dead, deadRow{id: id, reason: reason.Error()})
					} else {
						kept = append(kept, id)
					}
				}
				ids = kept
			case err != nil:
				return fmt.Errorf("store: publish %d outbox events from #%d: %w", len(evs), ids[0], err)
			}
		}
		if err := moveToDeadLetters(ctx, tx, dead, db.now()); err != nil {
			return err
		}
		if err := markPublished(ctx, tx, ids, db.now()); err != nil {
			return err
		}
		claim = OutboxClaim{Published: len(ids), DeadLettered: len(dead)}
		return nil
	})
	if err != nil {
		return OutboxClaim{}, err
	}
	return claim, nil
}

// tryRelayLock takes the relay's advisory lock for the rest of tx, if free.
func tryRelayLock(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var locked bool
	if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1)`, relayLockKey); err != nil {
		return false, fmt.Errorf("store: take outbox relay lock: %w", err)
	}
	return locked, nil
}

// deadRow is an outbox row bound for dead_letters, with why.
type deadRow struct {
	id     int64
	reason string
}

// selectUnpublished locks and decodes up to limit unpublished rows of topic
// in id order: the ids and events of those that decode, and the rows that
// do not. A relay claims only its own topic's rows: instances on another
// topic sharing the database publish theirs, to where they belong.
func selectUnpublished(ctx context.Context, tx *sqlx.Tx, topic string, limit int) ([]int64, []domain.Event, []deadRow, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Payload []byte `db:"payload"`
	}
	err := tx.SelectContext(ctx, &rows, `SELECT id, payload FROM outbox
		WHERE published_at IS NULL AND topic = $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, topic)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store: select unpublished outbox rows: %w", err)
	}
	ids := make([]int64, 0, len(rows))
	evs := make([]domain.Event, 0, len(rows))
	var dead []deadRow
	for _, r := range rows {
		var ev domain.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			dead = append(dead, deadRow{id: r.ID, reason: "decode envelope: " + err.Error()})
			continue
		}
		if ev.ID == "" || ev.Type == "" {
			dead = append(dead, deadRow{id: r.ID, reason: "decode envelope: no id or type"})
			continue
		}
		ids, evs = append(ids, r.ID), append(evs, ev)
	}
	return ids, evs, dead, nil
}

// moveToDeadLetters moves the rows out of the outbox into dead_letters, with
// their reasons, in one statement.
func moveToDeadLetters(ctx context.Context, tx *sqlx.Tx, dead []deadRow, at time.Time) error {
	if len(dead) == 0 {
		return nil
	}
	ids, reasons := make([]int64, len(dead)), make([]string, len(dead))
	for i, d := range dead {
		ids[i], reasons[i] = d.id, d.reason
	}
	_, err := tx.ExecContext(ctx, `WITH gone AS (DELETE FROM outbox WHERE id = ANY($1) RETURNING *)
		INSERT INTO dead_letters (source, topic, key, type, outbox_id, payload, error, created_at, failed_at)
		SELECT 'relay', g.topic, g.key, g.type, g.id, convert_to(g.payload::text, 'UTF8'), d.reason, g.created_at, $3
		FROM gone g JOIN unnest($1::bigint[], $2::text[]) AS d(id, reason) ON d.id = g.id
		ORDER BY g.id`, pq.Array(ids), pq.Array(reasons), at)
	if err != nil {
		return fmt.Errorf("store: move %d outbox rows (first #%d) to dead letters: %w", len(dead), ids[0], err)
	}
	return nil
}

// markPublished stamps the claimed rows as published.
func markPublished(ctx context.Context, tx *sqlx.Tx, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
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

// EnqueueEvents writes events to the outbox in a transaction of their own,
// for events that accompany no other change in this store.
func (db *DB) EnqueueEvents(ctx context.Context, evs ...domain.Event) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		return insertOutbox(ctx, tx, db.Topic, evs...)
	})
}
