package main

import (
	"context"
	"fmt"
	"time"
)

// pruneInterval is PRUNE_INTERVAL for the server under -prune: a pass starts
// within a second of the old rows' arrival, so it runs during the round.
const pruneInterval = "1s"

// agedRows are the statements that write n rows past their default
// retention into each pruned table ($1 = n, $2 = a tag unique to the round):
// published outbox events and consumed-event ids 100 days old, payment-event
// ids 100 days old, audit rows 400 days old.
var agedRows = []struct{ table, stmt string }{
	{"outbox", `INSERT INTO outbox (topic, key, type, payload, created_at, published_at)
		SELECT 'bench.aged', 'drop:0', 'StockChanged', jsonb_build_object('id', $2 || i, 'type', 'StockChanged'), t, t
		FROM generate_series(1, $1::int) i, LATERAL (SELECT now() - interval '100 days' - i * interval '1 ms' AS t) x`},
	{"consumed_events", `INSERT INTO consumed_events (consumer, event_id, at)
		SELECT 'notifier', $2 || i, now() - interval '100 days' - i * interval '1 ms' FROM generate_series(1, $1::int) i`},
	{"payment_events", `INSERT INTO payment_events (event_id, received_at)
		SELECT $2 || i, now() - interval '100 days' - i * interval '1 ms' FROM generate_series(1, $1::int) i`},
	{"audit_log", `INSERT INTO audit_log (at, actor, action, entity, entity_id, data, request_id)
		SELECT now() - interval '400 days' - i * interval '1 ms', 'bench', 'order.place', 'order', i, '{"quantity": 1}', $2 || i
		FROM generate_series(1, $1::int) i`},
}

// age writes b.o.prune rows past their retention into each pruned table,
// which the server's pruner then deletes during the round.
func (b *bench) age(ctx context.Context, round int) error {
	start := time.Now()
	for _, a := range agedRows {
		if _, err := b.db.ExecContext(ctx, a.stmt, b.o.prune, fmt.Sprintf("aged-r%d-", round)); err != nil {
			return fmt.Errorf("write %d aged rows into %s: %w", b.o.prune, a.table, err)
		}
	}
	b.printf("round %d prune   %d rows past their retention written to each of outbox, consumed_events, payment_events, audit_log in %.1fs\n",
		round, b.o.prune, time.Since(start).Seconds())
	return nil
}

// agedLeft counts the rows written by age that are still there.
func (b *bench) agedLeft(ctx context.Context) (int, error) {
	var n int
	err := b.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM outbox WHERE topic = 'bench.aged') +
		(SELECT count(*) FROM consumed_events WHERE event_id LIKE 'aged-%') +
		(SELECT count(*) FROM payment_events WHERE event_id LIKE 'aged-%') +
		(SELECT count(*) FROM audit_log WHERE actor = 'bench')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count aged rows left: %w", err)
	}
	return n, nil
}
