package store_test

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
)

// mkCreator makes a fresh user a creator.
func mkCreator(t *testing.T, db *store.DB, handle string) *domain.Creator {
	t.Helper()
	u := mkUser(t, db, handle)
	c, err := db.CreateCreator(context.Background(), u.ID, "Creator "+handle, "")
	if err != nil {
		t.Fatalf("create creator %s: %v", handle, err)
	}
	return c
}

func followerCount(t *testing.T, db *store.DB, creatorID int64) int64 {
	t.Helper()
	cs, err := db.CreatorsByIDs(context.Background(), []int64{creatorID})
	if err != nil || len(cs) != 1 {
		t.Fatalf("read creator #%d: %v", creatorID, err)
	}
	return cs[0].FollowerCount
}

func TestFollowRules(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	c := mkCreator(t, db, "star")
	fan := mkUser(t, db, "fan")

	_, err := db.Follow(ctx, c.ID, c.UserID)
	wantCode(t, err, domain.BadUserInput, "creatorId")
	_, err = db.Follow(ctx, 999999, fan.ID)
	wantCode(t, err, domain.NotFound, "")
	_, err = db.Unfollow(ctx, 999999, fan.ID)
	wantCode(t, err, domain.NotFound, "")
	_, err = db.Follow(ctx, c.ID, 999999)
	wantCode(t, err, domain.NotFound, "")

	for i, step := range []struct {
		follow    bool
		wantCount int64
		wantAudit int
		// wantVersion is the creator's version, and how many CreatorUpdated
		// events it has besides the one of its creation.
		wantVersion int64
	}{
		{true, 1, 1, 1},
		{true, 1, 1, 1}, // again: no change, no audit, no event
		{false, 0, 1, 2},
		{false, 0, 1, 2},
		{true, 1, 2, 3},
	} {
		change := db.Follow
		if !step.follow {
			change = db.Unfollow
		}
		got, err := change(ctx, c.ID, fan.ID)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got.ID != c.ID || got.Handle != "star" || got.FollowerCount != step.wantCount {
			t.Fatalf("step %d: creator %+v, want count %d", i, got, step.wantCount)
		}
		if n := auditRows(t, db, "creator.follow", c.ID); n != step.wantAudit {
			t.Fatalf("step %d: %d follow audit rows, want %d", i, n, step.wantAudit)
		}
		var envelopes []string
		if err := db.SelectContext(ctx, &envelopes, `SELECT payload FROM outbox WHERE type = $1 ORDER BY id`, domain.EventCreatorUpdated); err != nil {
			t.Fatal(err)
		}
		var first, last struct {
			Key     string
			Payload domain.CreatorPayload
		}
		if err := json.Unmarshal([]byte(envelopes[0]), &first); err != nil {
			t.Fatal(err)
		}
		if want := (domain.CreatorPayload{CreatorID: c.ID, UserID: c.UserID, Created: true}); first.Payload != want {
			t.Fatalf("step %d: the creation's event %+v, want %+v", i, first.Payload, want)
		}
		if err := json.Unmarshal([]byte(envelopes[len(envelopes)-1]), &last); err != nil {
			t.Fatal(err)
		}
		want := domain.CreatorPayload{CreatorID: c.ID, FollowerCount: step.wantCount, Version: step.wantVersion, UserID: fan.ID}
		if got.Version != step.wantVersion || int64(len(envelopes)) != step.wantVersion+1 || last.Payload != want ||
			last.Key != "creator:"+strconv.FormatInt(c.ID, 10) {
			t.Fatalf("step %d: creator version %d, %d CreatorUpdated events, the last %+v; want %+v", i, got.Version, len(envelopes), last, want)
		}
	}

	other := mkCreator(t, db, "other")
	follows, err := db.FollowsOf(ctx, fan.ID, []int64{c.ID, other.ID, 424242})
	if err != nil {
		t.Fatal(err)
	}
	if len(follows) != 3 || !follows[c.ID] || follows[other.ID] || follows[424242] {
		t.Fatalf("FollowsOf = %v", follows)
	}
}

// concurrently runs f(i) for i in 0..n-1 at once and fails on any error.
func concurrently(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			if err := f(i); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestConcurrentFollowsFromManyUsers(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	c := mkCreator(t, db, "hot")
	fans := mkUsers(t, db, "fan", 40)

	concurrently(t, 40, func(i int) error { _, err := db.Follow(ctx, c.ID, fans[i].ID); return err })
	if n := followerCount(t, db, c.ID); n != 40 {
		t.Fatalf("follower_count = %d after 40 follows, want 40", n)
	}
	concurrently(t, 40, func(i int) error { _, err := db.Unfollow(ctx, c.ID, fans[i].ID); return err })
	if n := followerCount(t, db, c.ID); n != 0 {
		t.Fatalf("follower_count = %d after 40 unfollows, want 0", n)
	}
}

func TestConcurrentFollowsBySameUser(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	c := mkCreator(t, db, "hot")
	fan := mkUser(t, db, "eager")

	concurrently(t, 40, func(int) error { _, err := db.Follow(ctx, c.ID, fan.ID); return err })
	if n := followerCount(t, db, c.ID); n != 1 {
		t.Fatalf("follower_count = %d after one user followed 40 times, want 1", n)
	}
	if n := auditRows(t, db, "creator.follow", c.ID); n != 1 {
		t.Fatalf("%d follow audit rows, want 1", n)
	}
	concurrently(t, 40, func(int) error { _, err := db.Unfollow(ctx, c.ID, fan.ID); return err })
	if n := followerCount(t, db, c.ID); n != 0 {
		t.Fatalf("follower_count = %d after 40 unfollows, want 0", n)
	}
	if n := auditRows(t, db, "creator.unfollow", c.ID); n != 1 {
		t.Fatalf("%d unfollow audit rows, want 1", n)
	}
}

// walk pages through a whole connection, forward (first/after) or backward
// (last/before), checking the pageInfo flags, and returns the item ids in
// connection order; between, if set, runs between pages.
func walk[T any](t *testing.T, size int, back bool, fetch func(store.PageArgs) (store.Page[T], error), id func(T) int64, between func()) []int64 {
	t.Helper()
	p := pageFrom(t, nil, nil, size)
	p.Back = back
	var got []int64
	for pages := 0; ; pages++ {
		pg, err := fetch(p)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(pg.Items))
		for i, it := range pg.Items {
			ids[i] = id(it)
		}
		// Toward the walk's end and back toward its start, in its direction.
		more, behind := pg.HasNext, pg.HasPrev
		if back {
			more, behind = pg.HasPrev, pg.HasNext
			got = append(ids, got...)
		} else {
			got = append(got, ids...)
		}
		if behind != (pages > 0) {
			t.Fatalf("page %d (back=%v): flag toward the start = %v", pages, back, behind)
		}
		if !more {
			return got
		}
		if between != nil {
			between()
		}
		if back {
			p = pageFrom(t, nil, &pg.Cursors[0], size)
		} else {
			p = pageFrom(t, &pg.Cursors[len(pg.Cursors)-1], nil, size)
		}
	}
}

// walkFollowers walks the followers connection of a creator.
func walkFollowers(t *testing.T, db *store.DB, creatorID int64, size int, back bool, between func()) []int64 {
	t.Helper()
	fetch := func(p store.PageArgs) (store.Page[domain.User], error) {
		return db.Followers(context.Background(), creatorID, p)
	}
	return walk(t, size, back, fetch, func(u domain.User) int64 { return u.ID }, between)
}

func TestFollowersPages(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	c := mkCreator(t, db, "popular")
	fans := mkUsers(t, db, "fan", 120)
	// Followed in a shuffled order, so follow time and user id disagree.
	for i := range fans {
		if _, err := db.Follow(ctx, c.ID, fans[(i*37)%120].ID); err != nil {
			t.Fatal(err)
		}
	}
	// The expected order, sorted here: newest follow first, ties (the clock
	// ticks every third reading) by follower id, descending.
	type follow struct {
		ID int64     `db:"follower_id"`
		At time.Time `db:"created_at"`
	}
	var rows []follow
	if err := db.Select(&rows, `SELECT follower_id, created_at FROM follows WHERE creator_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b follow) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	var want []int64
	instants := map[time.Time]bool{}
	for _, r := range rows {
		want = append(want, r.ID)
		instants[r.At] = true
	}
	if len(want) != 120 || len(instants) == 120 {
		t.Fatalf("%d follows at %d instants; want 120 follows with shared instants", len(want), len(instants))
	}

	for _, size := range []int{7, 25, 100} {
		for _, back := range []bool{false, true} {
			got := walkFollowers(t, db, c.ID, size, back, nil)
			assertIDs(t, got, want)
		}
	}
}

func TestFollowersWalkIsStable(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	c := mkCreator(t, db, "popular")
	fans := mkUsers(t, db, "fan", 60)
	late := mkUsers(t, db, "late", 10)
	for _, u := range fans {
		if _, err := db.Follow(ctx, c.ID, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	var want []int64
	for i := len(fans) - 1; i >= 0; i-- {
		want = append(want, fans[i].ID)
	}
	joined := 0
	got := walkFollowers(t, db, c.ID, 9, false, func() {
		// A new follow lands at the head of the list, behind the walk.
		if _, err := db.Follow(ctx, c.ID, late[joined].ID); err != nil {
			t.Fatal(err)
		}
		joined++
	})
	if joined == 0 {
		t.Fatal("the walk had a single page")
	}
	assertIDs(t, got, want) // ids grow with follow time, so ties sort the same way
	if n := followerCount(t, db, c.ID); n != int64(len(fans)+joined) {
		t.Fatalf("follower_count = %d, want %d", n, len(fans)+joined)
	}
}

func assertIDs(t *testing.T, got, want []int64) {
	t.Helper()
	seen := map[int64]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("id %d seen twice", id)
		}
		seen[id] = true
	}
	if len(got) != len(want) {
		t.Fatalf("walk saw %d ids, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("position %d: %d, want %d", i, got[i], want[i])
		}
	}
}

func TestFollowingPages(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	fan := mkUser(t, db, "fan")
	var want []int64
	for _, h := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		c := mkCreator(t, db, "creator_"+h)
		if _, err := db.Follow(ctx, c.ID, fan.ID); err != nil {
			t.Fatal(err)
		}
		want = append([]int64{c.ID}, want...) // newest first
	}
	var all []int64
	if err := db.Select(&all, `SELECT creator_id FROM follows WHERE follower_id = $1
		ORDER BY created_at DESC, creator_id DESC`, fan.ID); err != nil {
		t.Fatal(err)
	}
	assertIDs(t, all, want) // the clock ticks between follows: no ties here

	fetch := func(p store.PageArgs) (store.Page[domain.Creator], error) {
		pg, err := db.Following(ctx, fan.ID, p)
		for _, c := range pg.Items {
			if c.Handle == "" || c.FollowerCount != 1 {
				t.Fatalf("creator %+v", c)
			}
		}
		return pg, err
	}
	for _, back := range []bool{false, true} {
		got := walk(t, 3, back, fetch, func(c domain.Creator) int64 { return c.ID }, nil)
		assertIDs(t, got, want)
	}
}
