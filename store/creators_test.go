package store_test

import (
	"context"
	"fmt"
	"testing"

	"livedrops/domain"
	"livedrops/store"
)

func TestCreateCreator(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	u := mkUser(t, db, "Maker")

	c, err := db.CreateCreator(ctx, u.ID, "The Maker", "I make things.")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || c.UserID != u.ID || c.Handle != "Maker" || c.DisplayName != "The Maker" ||
		c.Bio != "I make things." || c.FollowerCount != 0 || c.CreatedAt.IsZero() {
		t.Fatalf("created %+v", c)
	}
	if n := auditRows(t, db, "creator.create", c.ID); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}

	_, err = db.CreateCreator(ctx, u.ID, "Again", "")
	wantCode(t, err, domain.Conflict, "")
	if err.Error() != "you are already a creator" {
		t.Fatalf("message %q", err)
	}
	_, err = db.CreateCreator(ctx, 999999, "Ghost", "")
	wantCode(t, err, domain.NotFound, "")
}

func TestCreatorLookups(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	users := mkUsers(t, db, "c", 4)
	var creators []*domain.Creator
	for _, u := range users[:3] { // users[3] stays a plain user
		c, err := db.CreateCreator(ctx, u.ID, "Creator "+u.Handle, "")
		if err != nil {
			t.Fatal(err)
		}
		creators = append(creators, c)
	}

	before := db.Statements.Load()
	got, err := db.CreatorsByIDs(ctx, []int64{creators[0].ID, creators[2].ID, 424242})
	if err != nil || len(got) != 2 || db.Statements.Load()-before != 1 {
		t.Fatalf("CreatorsByIDs = %+v, %v in %d statements", got, err, db.Statements.Load()-before)
	}
	for _, c := range got {
		if c.Handle == "" {
			t.Fatalf("creator without handle: %+v", c)
		}
	}

	before = db.Statements.Load()
	got, err = db.CreatorByUserID(ctx, []int64{users[1].ID, users[3].ID})
	if err != nil || len(got) != 1 || got[0].ID != creators[1].ID || db.Statements.Load()-before != 1 {
		t.Fatalf("CreatorByUserID = %+v, %v in %d statements", got, err, db.Statements.Load()-before)
	}

	c, err := db.CreatorByHandle(ctx, "C2")
	if err != nil || c.ID != creators[2].ID || c.Handle != "c2" {
		t.Fatalf("CreatorByHandle = %+v, %v", c, err)
	}
	_, err = db.CreatorByHandle(ctx, "c3") // a user, not a creator
	wantCode(t, err, domain.NotFound, "")
}

func TestCreatorsPages(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	var want []int64
	for i, u := range mkUsers(t, db, "p", 11) {
		c, err := db.CreateCreator(ctx, u.ID, fmt.Sprint("Creator ", i), "")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID) // created in order: oldest first
	}
	fetch := func(p store.PageArgs) (store.Page[domain.Creator], error) { return db.Creators(ctx, p) }
	id := func(c domain.Creator) int64 { return c.ID }
	for _, size := range []int{1, 4, 11, 20} {
		for _, back := range []bool{false, true} {
			if got := walk(t, size, back, fetch, id, nil); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("walk by %d (back=%v): %v, want %v", size, back, got, want)
			}
		}
	}
}

// pageFrom builds page arguments as a client would: first/after or last/before.
func pageFrom(t *testing.T, after, before *string, n int) store.PageArgs {
	t.Helper()
	var p store.PageArgs
	var err error
	if before != nil {
		p, err = store.NewPageArgs(nil, &n, nil, before)
	} else {
		p, err = store.NewPageArgs(&n, nil, after, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}
