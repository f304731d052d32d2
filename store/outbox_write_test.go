package store

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"livedrops/domain"
)

// An outbox row is stamped when it is written, not when its transaction
// began: time a transaction spends waiting (for a lock, here a sleep) before
// writing its events is not part of their age.
func TestInsertOutboxStampsTheInsert(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	var events []domain.Event
	for _, typ := range []string{domain.EventOrderPlaced, domain.EventStockChanged} {
		ev, err := NewEvent(typ, "drop:1", domain.StockPayload{DropID: 1}, *clock)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	const wait = 300 * time.Millisecond
	var began, written time.Time
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &began, `SELECT now()`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_sleep($1)`, wait.Seconds()); err != nil {
			return err
		}
		if err := insertOutbox(ctx, tx, "topic-a", events...); err != nil {
			return err
		}
		return tx.GetContext(ctx, &written, `SELECT clock_timestamp()`)
	})
	if err != nil {
		t.Fatalf("write events after a wait: %v", err)
	}
	var stamps []time.Time
	if err := db.SelectContext(ctx, &stamps, `SELECT created_at FROM outbox ORDER BY id`); err != nil {
		t.Fatalf("read outbox created_at: %v", err)
	}
	if len(stamps) != 2 {
		t.Fatalf("%d outbox rows, want 2", len(stamps))
	}
	if !stamps[0].Equal(stamps[1]) {
		t.Errorf("events of one statement stamped %v and %v, want one stamp", stamps[0], stamps[1])
	}
	if got := stamps[0].Sub(began); got < wait || stamps[0].After(written) {
		t.Errorf("created_at %v is %v after the transaction began (at %v), want at least %v and not after %v",
			stamps[0], got, began, wait, written)
	}
}
