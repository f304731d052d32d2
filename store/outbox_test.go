package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
	"livedrops/store/storetest"
)

// enqueue writes n StockChanged events for key and returns them in order.
func enqueue(t *testing.T, db *store.DB, key string, n int) []domain.Event {
	t.Helper()
	evs := make([]domain.Event, n)
	for i := range evs {
		ev, err := store.NewEvent(domain.EventStockChanged, key, domain.StockPayload{Available: i}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	if err := db.EnqueueEvents(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	return evs
}

// published is the count of events a claim published.
func published(c store.OutboxClaim, err error) (int, error) { return c.Published, err }

func ids(evs []domain.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestClaimOutboxPublishesInOrderAndMarks(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	want := append(enqueue(t, db, "drop:1", 3), enqueue(t, db, "drop:2", 4)...)

	var got []domain.Event
	collect := func(evs []domain.Event) error { got = append(got, evs...); return nil }
	n, err := published(db.ClaimOutbox(ctx, 5, collect))
	if err != nil || n != 5 {
		t.Fatalf("first claim = %d, %v; want 5, nil", n, err)
	}
	n, err = published(db.ClaimOutbox(ctx, 5, collect))
	if err != nil || n != 2 {
		t.Fatalf("second claim = %d, %v; want 2, nil", n, err)
	}
	n, err = published(db.ClaimOutbox(ctx, 5, func([]domain.Event) error { t.Error("publish called with nothing to publish"); return nil }))
	if err != nil || n != 0 {
		t.Fatalf("third claim = %d, %v; want 0, nil", n, err)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
		t.Fatalf("published %v, want %v in outbox order", ids(got), ids(want))
	}
	// The envelope survives the round trip through the jsonb column (which
	// may reorder the payload's keys).
	var gotPayload, wantPayload domain.StockPayload
	if err := json.Unmarshal(got[3].Payload, &gotPayload); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want[3].Payload, &wantPayload); err != nil {
		t.Fatal(err)
	}
	if got[3].Key != "drop:2" || got[3].Type != domain.EventStockChanged || !got[3].OccurredAt.Equal(want[3].OccurredAt) ||
		gotPayload != wantPayload {
		t.Fatalf("published %+v, want %+v", got[3], want[3])
	}
}

func TestClaimOutboxKeepsRowsWhenPublishFails(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	want := enqueue(t, db, "drop:1", 3)

	boom := errors.New("broker unreachable")
	n, err := published(db.ClaimOutbox(ctx, 10, func([]domain.Event) error { return boom }))
	if !errors.Is(err, boom) || n != 0 {
		t.Fatalf("claim = %d, %v; want 0 and the publish error", n, err)
	}
	var got []domain.Event
	n, err = published(db.ClaimOutbox(ctx, 10, func(evs []domain.Event) error { got = evs; return nil }))
	if err != nil || n != 3 || fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
		t.Fatalf("retry published %d %v (%v), want %v", n, ids(got), err, ids(want))
	}
}

func TestClaimOutboxOneRelayAtATime(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	enqueue(t, db, "drop:1", 4)

	// The first relay stops inside publish, holding its batch.
	inPublish, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var firstN int
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		firstN, firstErr = published(db.ClaimOutbox(ctx, 2, func([]domain.Event) error {
			close(inPublish)
			<-release
			return nil
		}))
	}()
	<-inPublish

	// A second relay must not publish the later rows of the same key meanwhile.
	n, err := published(db.ClaimOutbox(ctx, 10, func(evs []domain.Event) error {
		t.Errorf("second relay published %d events while the first held the outbox", len(evs))
		return nil
	}))
	if err != nil || n != 0 {
		t.Fatalf("second relay claim = %d, %v; want 0, nil", n, err)
	}
	close(release)
	wg.Wait()
	if firstErr != nil || firstN != 2 {
		t.Fatalf("first relay claim = %d, %v; want 2, nil", firstN, firstErr)
	}
	n, err = published(db.ClaimOutbox(ctx, 10, func([]domain.Event) error { return nil }))
	if err != nil || n != 2 {
		t.Fatalf("second relay after the first = %d, %v; want 2, nil", n, err)
	}
}

// A row that cannot go out, undecodable or refused for good by publish,
// moves to dead_letters with its error; the rows around it, of its key too,
// are published in order and the next claim goes on past it.
func TestClaimOutboxDeadLettersWhatCannotGoOut(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	first := enqueue(t, db, "drop:1", 2)
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (topic, key, type, payload) VALUES ($1, 'drop:1', 'X', '{"id": 5}')`, db.Topic); err != nil {
		t.Fatal(err)
	}
	second := enqueue(t, db, "drop:1", 3)

	var got []domain.Event
	refuseSecond := func(evs []domain.Event) error {
		for i, ev := range evs {
			if ev.ID == second[0].ID {
				got = append(got, evs[:i]...)
				got = append(got, evs[i+1:]...)
				return &store.Refused{Reasons: map[int]error{i: errors.New("message too large")}}
			}
		}
		t.Fatalf("publish was not handed %s", second[0].ID)
		return nil
	}
	claim, err := db.ClaimOutbox(ctx, 10, refuseSecond)
	if err != nil || claim.Published != 4 || claim.DeadLettered != 2 {
		t.Fatalf("claim = %+v, %v; want 4 published, 2 dead-lettered", claim, err)
	}
	want := append(append([]domain.Event{}, first...), second[1:]...)
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
		t.Fatalf("published %v, want %v in outbox order", ids(got), ids(want))
	}
	var dead []struct {
		Source  string `db:"source"`
		Type    string `db:"type"`
		Key     string `db:"key"`
		Payload string `db:"payload"`
		Error   string `db:"error"`
	}
	if err := db.SelectContext(ctx, &dead, `SELECT source, type, key, convert_from(payload, 'UTF8') AS payload, error
		FROM dead_letters ORDER BY outbox_id`); err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[0].Source != "relay" || dead[0].Type != "X" || dead[0].Payload != `{"id": 5}` ||
		!strings.Contains(dead[0].Error, "decode envelope") ||
		dead[1].Type != domain.EventStockChanged || dead[1].Key != "drop:1" || dead[1].Error != "message too large" {
		t.Fatalf("dead letters = %+v", dead)
	}
	var left int
	if err := db.GetContext(ctx, &left, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); err != nil || left != 0 {
		t.Fatalf("unpublished rows left = %d, %v; want 0", left, err)
	}
	// A batch that only held poison still counts as claimed rows.
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (topic, key, type, payload) VALUES ($1, 'drop:1', 'X', '[]')`, db.Topic); err != nil {
		t.Fatal(err)
	}
	claim, err = db.ClaimOutbox(ctx, 10, func([]domain.Event) error { t.Error("publish called with no event"); return nil })
	if err != nil || claim.Rows() != 1 || claim.DeadLettered != 1 {
		t.Fatalf("claim of a lone poison row = %+v, %v; want 1 dead-lettered", claim, err)
	}
}

func TestOutboxLag(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now()
	db.Now = func() time.Time { return now }

	lag, err := db.OutboxLag(ctx)
	if err != nil || lag != 0 {
		t.Fatalf("lag of an empty outbox = %v, %v; want 0", lag, err)
	}
	enqueue(t, db, "drop:1", 2)
	// Two minutes later the oldest event has waited two minutes.
	now = now.Add(2 * time.Minute)
	lag, err = db.OutboxLag(ctx)
	if err != nil || lag < 110*time.Second || lag > 3*time.Minute {
		t.Fatalf("lag = %v, %v; want about 2m", lag, err)
	}
	if n, err := published(db.ClaimOutbox(ctx, 1, func([]domain.Event) error { return nil })); err != nil || n != 1 {
		t.Fatalf("claim = %d, %v", n, err)
	}
	now = now.Add(time.Hour)
	if _, err := db.ClaimOutbox(ctx, 1, func([]domain.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	lag, err = db.OutboxLag(ctx)
	if err != nil || lag != 0 {
		t.Fatalf("lag once all is published = %v, %v; want 0", lag, err)
	}
}

// A relay claims only the rows of its own topic: an instance on another
// topic sharing the database must not have its events sent to this one.
func TestClaimOutboxOnlyItsTopic(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	db.Topic = "other.events"
	theirs := enqueue(t, db, "drop:1", 2)
	db.Topic = "livedrops.events"
	ours := enqueue(t, db, "drop:1", 1)
	var got []domain.Event
	if _, err := db.ClaimOutbox(ctx, 10, func(evs []domain.Event) error { got = evs; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != ours[0].ID {
		t.Fatalf("claimed %v, want only %v", ids(got), ids(ours))
	}
	db.Topic = "other.events"
	got = nil
	if _, err := db.ClaimOutbox(ctx, 10, func(evs []domain.Event) error { got = evs; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != theirs[0].ID || got[1].ID != theirs[1].ID {
		t.Fatalf("the other topic claimed %v, want %v", ids(got), ids(theirs))
	}
}
