package retention

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"livedrops/store"
	"livedrops/store/storetest"
)

// A pass deletes, in batches, every row past its table's retention, keeps
// the young, the unpublished and those of a table kept forever, and skips
// its turn while another instance prunes.
func TestPrunerAppliesEachRetention(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	db.Now = func() time.Time { return now }
	for _, stmt := range []string{
		// 7 published 4 days ago, 1 published an hour ago, 1 never published.
		`INSERT INTO outbox (topic, key, type, payload, created_at, published_at)
			SELECT 't', 'drop:1', 'X', '{}'::jsonb, $1::timestamptz - interval '4 days', $1::timestamptz - interval '4 days' FROM generate_series(1, 7)
			UNION ALL SELECT 't', 'drop:1', 'X', '{}'::jsonb, $1::timestamptz - interval '1 hour', $1::timestamptz - interval '1 hour'
			UNION ALL SELECT 't', 'drop:1', 'X', '{}'::jsonb, $1::timestamptz - interval '9 days', NULL`,
		// Consumed 8 days ago (past a week) and 6 days ago (within it).
		`INSERT INTO consumed_events (consumer, event_id, at)
			SELECT 'notifier', 'old-' || i, $1::timestamptz - interval '8 days' FROM generate_series(1, 4) i
			UNION ALL SELECT 'notifier', 'young', $1::timestamptz - interval '6 days'`,
		// Audit rows two years old: kept forever by the rule below.
		`INSERT INTO audit_log (at, actor, action, entity, entity_id)
			SELECT $1::timestamptz - interval '730 days', 'a', 'x', 'order', i FROM generate_series(1, 3) i`,
	} {
		if _, err := db.ExecContext(ctx, stmt, now); err != nil {
			t.Fatal(err)
		}
	}
	p := NewPruner(db, []Rule{
		{Family: store.PrunedOutbox, Keep: 72 * time.Hour},
		{Family: store.PrunedConsumedEvents, Keep: 168 * time.Hour},
		{Family: store.PrunedAuditLog, Keep: 0},
	}, nil)
	p.Batch = 3
	p.MinPause = time.Millisecond

	// Another instance holds the lock: this one skips its turn.
	other, err := db.StartPruning(ctx)
	if err != nil || other == nil {
		t.Fatalf("other instance's pruning = %v, %v", other, err)
	}
	if pruned, err := p.Prune(ctx); err != nil || pruned != nil {
		t.Fatalf("prune while another instance prunes = %v, %v; want nil, nil", pruned, err)
	}
	other.Close()

	outboxBefore := testutil.ToFloat64(prunedRows.WithLabelValues(string(store.PrunedOutbox)))
	pruned, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pruned[store.PrunedOutbox] != 7 || pruned[store.PrunedConsumedEvents] != 4 || pruned[store.PrunedAuditLog] != 0 {
		t.Fatalf("pruned %v, want outbox 7, consumed_events 4, audit_log 0", pruned)
	}
	if got := testutil.ToFloat64(prunedRows.WithLabelValues(string(store.PrunedOutbox))) - outboxBefore; got != 7 {
		t.Errorf("livedrops_pruned_rows_total{table=outbox} grew by %v, want 7", got)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); n != 1 {
		t.Errorf("unpublished outbox rows = %d, want 1", n)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`); n != 1 {
		t.Errorf("published outbox rows = %d, want the young one", n)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM consumed_events`); n != 1 {
		t.Errorf("consumed events = %d, want the one within the redelivery window", n)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM audit_log`); n != 3 {
		t.Errorf("audit rows = %d, want all 3 (kept forever)", n)
	}
	// Nothing is left to prune: a second pass deletes nothing.
	if pruned, err := p.Prune(ctx); err != nil || len(pruned) != 0 {
		t.Fatalf("second pass = %v, %v; want nothing", pruned, err)
	}
}

// Run prunes at once and then every Interval, until its context ends.
func TestPrunerRunsUntilCancelled(t *testing.T) {
	db := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPruner(db, []Rule{{Family: store.PrunedPaymentEvents, Keep: time.Hour}}, nil)
	p.Interval = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if _, err := db.ExecContext(ctx, `INSERT INTO payment_events (event_id, received_at) VALUES ('old', now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for storetest.Count(t, db, `SELECT count(*) FROM payment_events`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the old payment event was not pruned by a later pass")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
