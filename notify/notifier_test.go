package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
	"livedrops/store/storetest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// seedCreatorWithFollowers inserts a creator with one drop and n followers,
// each in a single statement (a fixture: the store's own tests cover its
// follow rules), and returns the creator and drop ids.
func seedCreatorWithFollowers(t testing.TB, db *store.DB, n int) (creatorID, dropID int64) {
	t.Helper()
	ctx := context.Background()
	err := db.GetContext(ctx, &creatorID, `WITH u AS (
			INSERT INTO users (handle, display_name, password_hash) VALUES ('maker', 'Maker', '!') RETURNING id)
		INSERT INTO creators (user_id, display_name) SELECT id, 'Maker' FROM u RETURNING id`)
	if err != nil {
		t.Fatalf("seed creator: %v", err)
	}
	err = db.GetContext(ctx, &dropID, `WITH p AS (
			INSERT INTO products (creator_id, title, price_cents, currency) VALUES ($1, 'Item', 100, 'EUR') RETURNING id)
		INSERT INTO drops (product_id, creator_id, title, starts_at, ends_at, per_user_limit)
		SELECT p.id, $1, 'Drop', now(), now() + interval '1 hour', 1 FROM p RETURNING id`, creatorID)
	if err != nil {
		t.Fatalf("seed drop: %v", err)
	}
	_, err = db.ExecContext(ctx, `WITH u AS (
			INSERT INTO users (handle, display_name, password_hash)
			SELECT 'fan' || g, 'Fan ' || g, '!' FROM generate_series(1, $2) AS g RETURNING id),
		f AS (INSERT INTO follows (creator_id, follower_id) SELECT $1::bigint, id FROM u)
		UPDATE creators SET follower_count = $2 WHERE id = $1`, creatorID, n)
	if err != nil {
		t.Fatalf("seed %d followers: %v", n, err)
	}
	return creatorID, dropID
}

func dropEvent(t testing.TB, typ, id string, creatorID, dropID int64) domain.Event {
	t.Helper()
	ev, err := store.NewEvent(typ, "drop", domain.DropPayload{DropID: dropID, CreatorID: creatorID}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = id
	return ev
}

type tally struct {
	Notifications int `db:"notifications"`
	Users         int `db:"users"`
	Batches       int `db:"batches"`
	Announced     int `db:"announced"`
}

// count reads how many notifications of kind exist for the drop, for how
// many distinct users, and what the outbox announced.
func count(t testing.TB, db *store.DB, dropID int64, kind domain.NotificationKind) tally {
	t.Helper()
	var c tally
	err := db.GetContext(context.Background(), &c, `SELECT
			(SELECT count(*) FROM notifications WHERE drop_id = $1 AND kind = $2) AS notifications,
			(SELECT count(DISTINCT user_id) FROM notifications WHERE drop_id = $1 AND kind = $2) AS users,
			(SELECT count(*) FROM outbox WHERE type = $3 AND payload->'payload'->>'kind' = $2) AS batches,
			(SELECT coalesce(sum(jsonb_array_length(payload->'payload'->'notifications')), 0) FROM outbox
				WHERE type = $3 AND payload->'payload'->>'kind' = $2) AS announced`,
		dropID, string(kind), store.EventNotificationsCreated)
	if err != nil {
		t.Fatalf("count notifications: %v", err)
	}
	return c
}

func TestFiveThousandFollowersNotifiedOnce(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	creatorID, dropID := seedCreatorWithFollowers(t, db, 5000)
	n := New(db, quietLog())

	started := dropEvent(t, domain.EventDropStarted, "ev-started", creatorID, dropID)
	if err := n.Handle(ctx, started); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := tally{Notifications: 5000, Users: 5000, Batches: 5, Announced: 5000}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got != want {
		t.Fatalf("after one delivery: %+v, want %+v", got, want)
	}

	// Delivered again: one statement to see it was handled, nothing written.
	before := db.Statements.Load()
	if err := n.Handle(ctx, started); err != nil {
		t.Fatalf("Handle again: %v", err)
	}
	if sent := db.Statements.Load() - before; sent != 1 {
		t.Fatalf("a redelivered event sent %d statements, want 1", sent)
	}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got != want {
		t.Fatalf("after two deliveries: %+v, want %+v", got, want)
	}

	// Events that are not about a drop's start or schedule are ignored.
	for _, typ := range []string{domain.EventDropEnded, domain.EventStockChanged, domain.EventOrderPlaced} {
		if err := n.Handle(ctx, dropEvent(t, typ, "other-"+typ, creatorID, dropID)); err != nil {
			t.Fatalf("Handle %s: %v", typ, err)
		}
	}
	var total int
	if err := db.GetContext(ctx, &total, `SELECT count(*) FROM notifications`); err != nil || total != 5000 {
		t.Fatalf("%d notifications in all (%v), want 5000", total, err)
	}
}

func TestConcurrentDeliveriesNotifyOnce(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	creatorID, dropID := seedCreatorWithFollowers(t, db, 5000)
	scheduled := dropEvent(t, domain.EventDropScheduled, "ev-scheduled", creatorID, dropID)

	// Two group members handed the same event (a rebalance), and a copy of
	// it with another id (a producer retry before idempotence): still one
	// notification per follower and kind, each announced once.
	copyEv := scheduled
	copyEv.ID = "ev-scheduled-copy"
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, ev := range []domain.Event{scheduled, scheduled, copyEv} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := New(db, quietLog())
			n.BatchSize = 700
			errs <- n.Handle(ctx, ev)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Handle: %v", err)
		}
	}
	if got := count(t, db, dropID, domain.NotificationDropScheduled); got.Notifications != 5000 || got.Users != 5000 || got.Announced != 5000 {
		t.Fatalf("after concurrent deliveries: %+v, want 5000 notifications for 5000 users, each announced once", got)
	}
}

func TestFailedWalkResumesOnRetry(t *testing.T) {
	db := storetest.Open(t)
	creatorID, dropID := seedCreatorWithFollowers(t, db, 5000)
	n := New(db, quietLog())
	started := dropEvent(t, domain.EventDropStarted, "ev-started", creatorID, dropID)

	// The database goes away in the middle of the third batch.
	ctx, cancel := context.WithCancel(context.Background())
	var statements atomic.Int64
	db.OnQuery = func() {
		// The check, two whole batches of four statements (read followers,
		// insert, outbox, audit), then the third batch's read.
		if statements.Add(1) == 1+2*4+1 {
			cancel()
		}
	}
	err := n.Handle(ctx, started)
	db.OnQuery = nil
	if err == nil {
		t.Fatalf("Handle with the database gone: %v, want the failure returned", err)
	}
	partial := count(t, db, dropID, domain.NotificationDropStarted)
	if partial.Notifications == 0 || partial.Notifications >= 5000 || partial.Notifications%1000 != 0 {
		t.Fatalf("after the failure: %+v, want some whole batches", partial)
	}

	// The consumer's retry continues after the last whole batch.
	var batches atomic.Int64
	db.OnQuery = func() { batches.Add(1) }
	if err := n.Handle(context.Background(), started); err != nil {
		t.Fatalf("retry: %v", err)
	}
	db.OnQuery = nil
	want := tally{Notifications: 5000, Users: 5000, Batches: 5, Announced: 5000}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got != want {
		t.Fatalf("after the retry: %+v, want %+v", got, want)
	}
	// A walk from the start: the check, five batches, an empty read, the mark.
	if fresh := int64(1 + 5*4 + 1 + 1); batches.Load() >= fresh {
		t.Fatalf("the retry sent %d statements, no fewer than a walk from the start (%d)", batches.Load(), fresh)
	}

	// Another notifier (another process) retrying walks from the start,
	// writing nothing twice.
	if err := New(db, quietLog()).Handle(context.Background(), dropEvent(t, domain.EventDropStarted, "ev-again", creatorID, dropID)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got != want {
		t.Fatalf("after a walk from the start: %+v, want %+v", got, want)
	}
}

func TestUnreadablePayloadSkipped(t *testing.T) {
	db := storetest.Open(t)
	n := New(db, quietLog())
	bad := domain.Event{ID: "bad", Type: domain.EventDropStarted, Payload: json.RawMessage(`[1,2]`)}
	if err := n.Handle(context.Background(), bad); err != nil {
		t.Fatalf("Handle of an unreadable payload: %v, want it skipped", err)
	}
}

func TestHundredThousandFollowers(t *testing.T) {
	if testing.Short() {
		t.Skip("takes tens of seconds: run without -short")
	}
	db := storetest.Open(t)
	seeded := time.Now()
	creatorID, dropID := seedCreatorWithFollowers(t, db, 100_000)
	seedTook := time.Since(seeded)
	n := New(db, quietLog())

	start := time.Now()
	if err := n.Handle(context.Background(), dropEvent(t, domain.EventDropStarted, "ev-big", creatorID, dropID)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	took := time.Since(start)
	want := tally{Notifications: 100_000, Users: 100_000, Batches: 100, Announced: 100_000}
	if got := count(t, db, dropID, domain.NotificationDropStarted); got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
	t.Logf("100,000 followers notified in %v (%.0f per second; seeding took %v)", took, 100_000/took.Seconds(), seedTook)
	if took > 2*time.Minute {
		t.Fatalf("notifying 100,000 followers took %v", took)
	}
}
