package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
)

// seedNotifyDrop inserts a product of the creator and a drop of it, and returns the drop id.
func seedNotifyDrop(t *testing.T, db *DB, creatorID int64) int64 {
	t.Helper()
	var dropID int64
	err := db.GetContext(context.Background(), &dropID, `WITH p AS (
			INSERT INTO products (creator_id, title, price_cents, currency) VALUES ($1, 'Item', 100, 'EUR') RETURNING id)
		INSERT INTO drops (product_id, creator_id, title, starts_at, ends_at, per_user_limit)
		SELECT p.id, $1, 'Drop', now(), now() + interval '1 hour', 1 FROM p RETURNING id`, creatorID)
	if err != nil {
		t.Fatalf("seed drop of creator #%d: %v", creatorID, err)
	}
	return dropID
}

// seedNotifyFollowers inserts n users following the creator, in one statement, and
// returns their ids in ascending order.
func seedNotifyFollowers(t testing.TB, db *DB, creatorID int64, n int) []int64 {
	t.Helper()
	var ids []int64
	err := db.SelectContext(context.Background(), &ids, `WITH u AS (
			INSERT INTO users (handle, display_name, password_hash)
			SELECT 'f' || $1::bigint || '_' || g, 'Follower ' || g, '!' FROM generate_series(1, $2) AS g RETURNING id),
		f AS (INSERT INTO follows (creator_id, follower_id) SELECT $1::bigint, id FROM u RETURNING follower_id),
		c AS (UPDATE creators SET follower_count = follower_count + $2 WHERE id = $1)
		SELECT follower_id FROM f ORDER BY follower_id`, creatorID, n)
	if err != nil {
		t.Fatalf("seed %d followers of creator #%d: %v", n, creatorID, err)
	}
	return ids
}

// notificationBatches reads the NotificationsCreated events in the outbox.
func notificationBatches(t *testing.T, db *DB) []NotificationsCreatedPayload {
	t.Helper()
	var out []NotificationsCreatedPayload
	for _, r := range outboxRows(t, db) {
		if r.Type != EventNotificationsCreated {
			continue
		}
		var ev domain.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			t.Fatalf("decode outbox envelope: %v", err)
		}
		var p NotificationsCreatedPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("decode NotificationsCreated payload: %v", err)
		}
		if r.Key != dropKey(p.DropID) || ev.Key != r.Key {
			t.Fatalf("NotificationsCreated keyed %q (envelope %q), want %q", r.Key, ev.Key, dropKey(p.DropID))
		}
		out = append(out, p)
	}
	return out
}

func countNotifications(t *testing.T, db *DB, dropID int64) int {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, `SELECT count(*) FROM notifications WHERE drop_id = $1`, dropID); err != nil {
		t.Fatalf("count notifications: %v", err)
	}
	return n
}

func TestInsertNotificationsForFollowersWalksInBatches(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	creator := seedCreator(t, db, "ada")
	other := seedCreator(t, db, "bob")
	dropID := seedNotifyDrop(t, db, creator)
	followers := seedNotifyFollowers(t, db, creator, 25)
	seedNotifyFollowers(t, db, other, 5)

	walk := func() (batches [][]domain.Notification) {
		after := int64(0)
		for i := 0; ; i++ {
			if i > 10 {
				t.Fatalf("walk did not finish")
			}
			ins, last, done, err := db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropStarted, after, 10)
			if err != nil {
				t.Fatalf("batch after %d: %v", after, err)
			}
			batches = append(batches, ins)
			if done {
				if i != 2 || last != followers[len(followers)-1] {
					t.Fatalf("walk done after %d batches at follower %d, want 3 batches ending at %d", i+1, last, followers[len(followers)-1])
				}
				return batches
			}
			want := followers[(i+1)*10-1]
			if last != want {
				t.Fatalf("batch %d ended at follower %d, want %d", i, last, want)
			}
			after = last
		}
	}

	batches := walk()
	seen := map[int64]bool{}
	for i, b := range batches {
		if want := []int{10, 10, 5}[i]; len(b) != want {
			t.Fatalf("batch %d inserted %d, want %d", i, len(b), want)
		}
		for _, n := range b {
			if n.Kind != domain.NotificationDropStarted || n.DropID != dropID || n.CreatorID != creator ||
				!n.CreatedAt.Equal(*clock) || n.ReadAt != nil || n.ID == 0 {
				t.Fatalf("inserted %+v", n)
			}
			seen[n.UserID] = true
		}
	}
	for _, f := range followers {
		if !seen[f] {
			t.Fatalf("follower %d got no notification", f)
		}
	}

	events := notificationBatches(t, db)
	if len(events) != 3 {
		t.Fatalf("%d NotificationsCreated events, want one per batch (3)", len(events))
	}
	for i, ev := range events {
		if ev.DropID != dropID || ev.CreatorID != creator || ev.Kind != domain.NotificationDropStarted || !ev.CreatedAt.Equal(*clock) {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if len(ev.Notifications) != len(batches[i]) {
			t.Fatalf("event %d names %d notifications, batch inserted %d", i, len(ev.Notifications), len(batches[i]))
		}
		ids := map[int64]int64{}
		for _, n := range batches[i] {
			ids[n.ID] = n.UserID
		}
		for _, r := range ev.Notifications {
			if ids[r.ID] != r.UserID {
				t.Fatalf("event %d names %+v, not inserted in its batch", i, r)
			}
		}
	}

	// A second walk (a redelivered event) writes nothing, not even events.
	for i, b := range walk() {
		if len(b) != 0 {
			t.Fatalf("second walk inserted %d in batch %d", len(b), i)
		}
	}
	if n := countNotifications(t, db, dropID); n != 25 {
		t.Fatalf("%d notifications after two walks, want 25", n)
	}
	if n := len(notificationBatches(t, db)); n != 3 {
		t.Fatalf("%d NotificationsCreated events after two walks, want 3", n)
	}
	// The other kind is a notification of its own.
	ins, _, done, err := db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropScheduled, 0, 100)
	if err != nil || len(ins) != 25 || !done {
		t.Fatalf("DROP_SCHEDULED walk: %d inserted, done %v, err %v", len(ins), done, err)
	}
}

func TestInsertNotificationsForFollowersExactMultipleAndNone(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	creator := seedCreator(t, db, "ada")
	dropID := seedNotifyDrop(t, db, creator)

	ins, last, done, err := db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropStarted, 0, 10)
	if err != nil || len(ins) != 0 || last != 0 || !done {
		t.Fatalf("no followers: %d inserted, last %d, done %v, err %v", len(ins), last, done, err)
	}
	followers := seedNotifyFollowers(t, db, creator, 20)
	_, last, done, err = db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropStarted, 0, 20)
	if err != nil || last != followers[19] || done {
		t.Fatalf("full batch: last %d, done %v, err %v; want last %d and not done", last, done, err, followers[19])
	}
	ins, last2, done, err := db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropStarted, last, 20)
	if err != nil || len(ins) != 0 || last2 != last || !done {
		t.Fatalf("after the end: %d inserted, last %d, done %v, err %v", len(ins), last2, done, err)
	}
	if len(notificationBatches(t, db)) != 1 {
		t.Fatalf("an empty batch wrote an event")
	}
}

func TestInsertNotificationsForFollowersConcurrentWalks(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	creator := seedCreator(t, db, "ada")
	dropID := seedNotifyDrop(t, db, creator)
	seedNotifyFollowers(t, db, creator, 3000)

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := int64(0)
			for {
				_, last, done, err := db.InsertNotificationsForFollowers(ctx, creator, dropID, domain.NotificationDropStarted, after, 500)
				if err != nil {
					errs <- err
					return
				}
				if done {
					return
				}
				after = last
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent walk: %v", err)
	}
	if n := countNotifications(t, db, dropID); n != 3000 {
		t.Fatalf("%d notifications after three concurrent walks, want 3000", n)
	}
	announced := map[int64]bool{}
	for _, ev := range notificationBatches(t, db) {
		for _, r := range ev.Notifications {
			if announced[r.ID] {
				t.Fatalf("notification %d announced twice", r.ID)
			}
			announced[r.ID] = true
		}
	}
	if len(announced) != 3000 {
		t.Fatalf("%d notifications announced, want 3000", len(announced))
	}
}

// seedUserNotifications gives one user a notification of each of n drops,
// one minute apart (the first oldest), and returns them oldest first.
func seedUserNotifications(t *testing.T, db *DB, clock *time.Time, creator, user int64, n int) []domain.Notification {
	t.Helper()
	var out []domain.Notification
	for i := 0; i < n; i++ {
		dropID := seedNotifyDrop(t, db, creator)
		*clock = clock.Add(time.Minute)
		ins, _, _, err := db.InsertNotificationsForFollowers(context.Background(), creator, dropID,
			domain.NotificationDropStarted, user-1, 1)
		if err != nil || len(ins) != 1 || ins[0].UserID != user {
			t.Fatalf("notify user %d of drop %d: %v %+v", user, dropID, err, ins)
		}
		out = append(out, ins[0])
	}
	return out
}

// walkNotifications pages through the whole list forward (first/after) and
// backward (last/before) with the given page size and returns the ids each
// way, in list order, checking pageInfo on the way.
func walkNotifications(t *testing.T, db *DB, user int64, unreadFirst bool, size int) (fwd, back []int64) {
	t.Helper()
	ctx := context.Background()
	var after *string
	for i := 0; ; i++ {
		p, err := NewPageArgs(&size, nil, after, nil)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := db.NotificationsOf(ctx, user, unreadFirst, p)
		if err != nil {
			t.Fatalf("page %d forward: %v", i, err)
		}
		if pg.HasPrev != (after != nil) {
			t.Fatalf("page %d forward: hasPrev %v", i, pg.HasPrev)
		}
		for _, n := range pg.Items {
			fwd = append(fwd, n.ID)
		}
		if !pg.HasNext {
			break
		}
		if len(pg.Items) != size {
			t.Fatalf("page %d forward has %d items and a next page", i, len(pg.Items))
		}
		after = &pg.Cursors[len(pg.Cursors)-1]
	}
	var before *string
	for i := 0; ; i++ {
		p, err := NewPageArgs(nil, &size, nil, before)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := db.NotificationsOf(ctx, user, unreadFirst, p)
		if err != nil {
			t.Fatalf("page %d backward: %v", i, err)
		}
		if pg.HasNext != (before != nil) {
			t.Fatalf("page %d backward: hasNext %v", i, pg.HasNext)
		}
		ids := make([]int64, 0, len(pg.Items))
		for _, n := range pg.Items {
			ids = append(ids, n.ID)
		}
		back = append(ids, back...)
		if !pg.HasPrev {
			break
		}
		before = &pg.Cursors[0]
	}
	return fwd, back
}

func TestNotificationsOfPagination(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	creator := seedCreator(t, db, "ada")
	user := seedNotifyFollowers(t, db, creator, 1)[0]
	other := seedNotifyFollowers(t, db, seedCreator(t, db, "bob"), 1)[0]
	ns := seedUserNotifications(t, db, clock, creator, user, 7)
	// Someone else's notification never shows.
	otherDrop := seedNotifyDrop(t, db, creator)
	if _, err := db.ExecContext(ctx, `INSERT INTO follows (creator_id, follower_id) VALUES ($1, $2)`, creator, other); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := db.InsertNotificationsForFollowers(ctx, creator, otherDrop, domain.NotificationDropStarted, other-1, 1); err != nil {
		t.Fatal(err)
	}

	// Mark the 2nd and 5th oldest read.
	if n, err := db.MarkNotificationsRead(ctx, user, []int64{ns[1].ID, ns[4].ID}); err != nil || n != 2 {
		t.Fatalf("mark two read: %d, %v", n, err)
	}
	ids := func(idx ...int) []int64 {
		out := make([]int64, len(idx))
		for i, j := range idx {
			out[i] = ns[j].ID
		}
		return out
	}
	newest := ids(6, 5, 4, 3, 2, 1, 0)
	unreadFirst := ids(6, 5, 3, 2, 0, 4, 1)

	for _, size := range []int{1, 2, 3, 7, 10} {
		for _, uf := range []bool{false, true} {
			want := newest
			if uf {
				want = unreadFirst
			}
			fwd, back := walkNotifications(t, db, user, uf, size)
			if fmt.Sprint(fwd) != fmt.Sprint(want) || fmt.Sprint(back) != fmt.Sprint(want) {
				t.Fatalf("size %d unreadFirst %v: forward %v, backward %v, want %v", size, uf, fwd, back, want)
			}
		}
	}

	// A window between two cursors of different runs.
	all, err := db.NotificationsOf(ctx, user, true, PageArgs{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	after, before := all.Cursors[1], all.Cursors[5] // after ns[5] (unread), before ns[4] (read)
	p, err := NewPageArgs(nil, nil, &after, &before)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := db.NotificationsOf(ctx, user, true, p)
	if err != nil {
		t.Fatal(err)
	}
	got := []int64{}
	for _, n := range mid.Items {
		got = append(got, n.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids(3, 2, 0)) {
		t.Fatalf("between cursors: %v, want %v", got, ids(3, 2, 0))
	}
	// A read cursor's after reads only read ones; a read cursor's before
	// reads every unread one.
	p, _ = NewPageArgs(nil, nil, &all.Cursors[5], nil)
	if pg, err := db.NotificationsOf(ctx, user, true, p); err != nil || len(pg.Items) != 1 || pg.Items[0].ID != ns[1].ID || pg.HasNext {
		t.Fatalf("after the first read one: %+v, %v", pg, err)
	}
	last := 10
	p, _ = NewPageArgs(nil, &last, nil, &all.Cursors[5])
	if pg, err := db.NotificationsOf(ctx, user, true, p); err != nil || len(pg.Items) != 5 || pg.HasPrev || !pg.HasNext {
		t.Fatalf("before the first read one: %d items, %v", len(pg.Items), err)
	}
	zero := 0
	p, _ = NewPageArgs(&zero, nil, nil, nil)
	if pg, err := db.NotificationsOf(ctx, user, true, p); err != nil || len(pg.Items) != 0 || !pg.HasNext {
		t.Fatalf("first 0: %+v, %v", pg, err)
	}
}

func TestMarkNotificationsRead(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	creator := seedCreator(t, db, "ada")
	users := seedNotifyFollowers(t, db, creator, 2)
	mine := seedUserNotifications(t, db, clock, creator, users[0], 3)
	// The other user gets notified of the same drops.
	var theirs []domain.Notification
	for _, n := range mine {
		ins, _, _, err := db.InsertNotificationsForFollowers(ctx, creator, n.DropID, domain.NotificationDropStarted, users[1]-1, 1)
		if err != nil || len(ins) != 1 {
			t.Fatalf("notify other user: %v", err)
		}
		theirs = append(theirs, ins[0])
	}

	if n, err := db.MarkNotificationsRead(ctx, users[0], []int64{}); err != nil || n != 0 {
		t.Fatalf("empty ids: %d, %v", n, err)
	}
	// Someone else's ids are ignored.
	if n, err := db.MarkNotificationsRead(ctx, users[0], []int64{theirs[0].ID, mine[0].ID}); err != nil || n != 1 {
		t.Fatalf("mine and theirs: %d, %v; want 1", n, err)
	}
	if n, err := db.MarkNotificationsRead(ctx, users[0], []int64{mine[0].ID}); err != nil || n != 0 {
		t.Fatalf("already read: %d, %v; want 0", n, err)
	}
	*clock = clock.Add(time.Hour)
	if n, err := db.MarkNotificationsRead(ctx, users[0], nil); err != nil || n != 2 {
		t.Fatalf("all: %d, %v; want 2", n, err)
	}
	got, err := db.NotificationsByIDs(ctx, []int64{mine[0].ID, mine[1].ID, mine[2].ID, theirs[0].ID, 999999})
	if err != nil || len(got) != 4 {
		t.Fatalf("by ids: %d, %v", len(got), err)
	}
	for _, n := range got {
		if n.UserID == users[1] {
			if n.ReadAt != nil {
				t.Fatalf("the other user's notification %d was marked read", n.ID)
			}
			continue
		}
		if n.ReadAt == nil {
			t.Fatalf("notification %d not read", n.ID)
		}
		if n.ID != mine[0].ID && !n.ReadAt.Equal(*clock) {
			t.Fatalf("notification %d read at %v, want %v", n.ID, n.ReadAt, *clock)
		}
	}
	var audits int
	if err := db.GetContext(ctx, &audits, `SELECT count(*) FROM audit_log WHERE action = 'notifications.read' AND actor = $1`,
		fmt.Sprintf("user:%d", users[0])); err != nil || audits != 2 {
		t.Fatalf("%d audit rows, %v; want one per call that marked something (2)", audits, err)
	}
}

func TestEventConsumed(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	if seen, err := db.EventConsumed(ctx, "notifier", "e1"); err != nil || seen {
		t.Fatalf("fresh: %v, %v", seen, err)
	}
	for i := 0; i < 2; i++ {
		if err := db.MarkEventConsumed(ctx, "notifier", "e1"); err != nil {
			t.Fatalf("mark %d: %v", i, err)
		}
	}
	if seen, err := db.EventConsumed(ctx, "notifier", "e1"); err != nil || !seen {
		t.Fatalf("marked: %v, %v", seen, err)
	}
	if seen, err := db.EventConsumed(ctx, "other", "e1"); err != nil || seen {
		t.Fatalf("other consumer: %v, %v", seen, err)
	}
}
