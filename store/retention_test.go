package store_test

import (
	"context"
	"testing"
	"time"

	"livedrops/store"
	"livedrops/store/storetest"
)

// aged writes rows of every pruned family, old (a day) and young (a minute),
// plus an old outbox row never published, and returns the clock they use.
func aged(t *testing.T, db *store.DB, old int) time.Time {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, stmt := range []string{
		`INSERT INTO outbox (topic, key, type, payload, created_at, published_at)
			SELECT 't', 'drop:1', 'X', '{}'::jsonb, $1::timestamptz, $1::timestamptz FROM generate_series(1, $3::int)
			UNION ALL SELECT 't', 'drop:1', 'X', '{}', $2::timestamptz, $2::timestamptz
			UNION ALL SELECT 't', 'drop:1', 'X', '{}', $1::timestamptz, NULL`,
		`INSERT INTO consumed_events (consumer, event_id, at)
			SELECT 'notifier', 'old-' || i, $1::timestamptz FROM generate_series(1, $3::int) i UNION ALL SELECT 'notifier', 'young', $2::timestamptz`,
		`INSERT INTO payment_events (event_id, received_at)
			SELECT 'old-' || i, $1::timestamptz FROM generate_series(1, $3::int) i UNION ALL SELECT 'young', $2::timestamptz`,
		`INSERT INTO audit_log (at, actor, action, entity, entity_id)
			SELECT $1::timestamptz, 'a', 'x', 'order', i FROM generate_series(1, $3::int) i UNION ALL SELECT $2::timestamptz, 'a', 'x', 'order', 0`,
		`INSERT INTO dead_letters (source, topic, payload, error, failed_at)
			SELECT 'relay', 't', ''::bytea, 'e', $1::timestamptz FROM generate_series(1, $3::int) UNION ALL SELECT 'relay', 't', ''::bytea, 'e', $2::timestamptz`,
	} {
		if _, err := db.ExecContext(ctx, stmt, now.Add(-24*time.Hour), now.Add(-time.Minute), old); err != nil {
			t.Fatal(err)
		}
	}
	db.Now = func() time.Time { return now }
	return now
}

// Each family loses, batch by batch, exactly its rows older than the cut-off:
// young rows and an unpublished outbox row, however old, stay.
func TestPruneDeletesOnlyOldRowsInBatches(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := aged(t, db, 5)
	p, err := db.StartPruning(ctx)
	if err != nil || p == nil {
		t.Fatalf("start pruning = %v, %v", p, err)
	}
	defer p.Close()
	if got := p.Now(); !got.Equal(now) {
		t.Fatalf("pruning clock = %v, want the store's %v", got, now)
	}
	for _, tc := range []struct {
		family store.Pruned
		left   string
	}{
		{store.PrunedOutbox, `SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`},
		{store.PrunedConsumedEvents, `SELECT count(*) FROM consumed_events`},
		{store.PrunedPaymentEvents, `SELECT count(*) FROM payment_events`},
		{store.PrunedAuditLog, `SELECT count(*) FROM audit_log`},
		{store.PrunedDeadLetters, `SELECT count(*) FROM dead_letters`},
	} {
		t.Run(string(tc.family), func(t *testing.T) {
			before := now.Add(-time.Hour)
			var batches []int64
			for {
				n, err := p.Prune(ctx, tc.family, before, 2)
				if err != nil {
					t.Fatal(err)
				}
				batches = append(batches, n)
				if n < 2 {
					break
				}
			}
			if len(batches) != 3 || batches[0] != 2 || batches[1] != 2 || batches[2] != 1 {
				t.Fatalf("batches deleted %v, want [2 2 1]", batches)
			}
			if left := storetest.Count(t, db, tc.left); left != 1 {
				t.Fatalf("%d rows left, want the young one", left)
			}
		})
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); n != 1 {
		t.Fatalf("unpublished outbox rows left = %d, want 1: an unpublished event is never pruned", n)
	}
	if _, err := p.Prune(ctx, "orders", now, 10); err == nil {
		t.Fatal("pruned a family that has no retention")
	}
}

// One instance prunes at a time; the lock is free again once it closes.
func TestOnePruningAtATime(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	first, err := db.StartPruning(ctx)
	if err != nil || first == nil {
		t.Fatalf("first = %v, %v", first, err)
	}
	second, err := db.StartPruning(ctx)
	if err != nil || second != nil {
		t.Fatalf("second while the first prunes = %v, %v; want nil, nil", second, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := db.StartPruning(ctx)
	if err != nil || third == nil {
		t.Fatalf("after the first closed = %v, %v", third, err)
	}
	third.Close()
}

// The same poison message kept twice by one consumer (every instance's tail
// consumer meets it) is one row; another consumer's is its own.
func TestRecordDeadLetterOncePerConsumerAndMessage(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	d := store.DeadLetter{Source: "tail", Topic: "t", Partition: 3, Offset: 17, Key: "drop:1", Payload: []byte("not json"), Error: "decode"}
	for range 2 {
		if err := db.RecordDeadLetter(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	d.Source = "livedrops-notifier"
	if err := db.RecordDeadLetter(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM dead_letters WHERE topic = 't' AND "offset" = 17`); n != 2 {
		t.Fatalf("dead letters = %d, want 2 (one per consumer)", n)
	}
}
