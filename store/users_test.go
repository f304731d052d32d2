package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
	"livedrops/store/storetest"
)

// accountsDB opens a migrated store on a fresh database. Its clock advances
// one microsecond every third reading, so rows share timestamps in threes and
// keyset ties on the time are exercised.
func accountsDB(t *testing.T) *store.DB {
	t.Helper()
	db := storetest.Open(t)
	var mu sync.Mutex
	var reads int64
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return base.Add(time.Duration(reads/3) * time.Microsecond)
	}
	return db
}

// mkUser creates a user with a dummy hash (no argon2 in store tests).
func mkUser(t *testing.T, db *store.DB, handle string) *domain.User {
	t.Helper()
	u, err := db.CreateUser(context.Background(), handle, "User "+handle, "dummy-hash")
	if err != nil {
		t.Fatalf("create user %s: %v", handle, err)
	}
	return u
}

// mkUsers creates n users named prefix0..prefixN-1.
func mkUsers(t *testing.T, db *store.DB, prefix string, n int) []*domain.User {
	t.Helper()
	users := make([]*domain.User, n)
	for i := range users {
		users[i] = mkUser(t, db, fmt.Sprintf("%s%d", prefix, i))
	}
	return users
}

// auditRows counts the audit rows of action on entity id.
func auditRows(t *testing.T, db *store.DB, action string, entityID int64) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM audit_log WHERE action = $1 AND entity_id = $2`, action, entityID); err != nil {
		t.Fatalf("count audit rows: %v", err)
	}
	return n
}

// wantCode fails unless err is a *domain.Error with code (and field, if given).
func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != code || (field != "" && de.Field != field) {
		t.Fatalf("err = %#v; want %s on %q", err, code, field)
	}
}

func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	u, err := db.CreateUser(ctx, "Alice", "Alice A.", "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Handle != "Alice" || u.DisplayName != "Alice A." || u.CreatedAt.IsZero() {
		t.Fatalf("created %+v", u)
	}
	if n := auditRows(t, db, "user.create", u.ID); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}

	_, err = db.CreateUser(ctx, "aLICE", "Other", "hash-2")
	wantCode(t, err, domain.BadUserInput, "handle")
	if err.Error() != "that handle is taken" {
		t.Fatalf("message %q", err)
	}

	got, err := db.UserByHandle(ctx, "ALICE")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.PasswordHash != "hash-1" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("UserByHandle = %+v, want %+v", got, u)
	}
	_, err = db.UserByHandle(ctx, "nobody")
	wantCode(t, err, domain.NotFound, "")
}

func TestUsersByIDsIsOneStatement(t *testing.T) {
	ctx := context.Background()
	db := accountsDB(t)
	users := mkUsers(t, db, "u", 5)

	before := db.Statements.Load()
	got, err := db.UsersByIDs(ctx, []int64{users[0].ID, users[3].ID, users[4].ID, 999999})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.Statements.Load() - before; n != 1 {
		t.Fatalf("%d statements, want 1", n)
	}
	byID := map[int64]domain.User{}
	for _, u := range got {
		byID[u.ID] = u
	}
	if len(got) != 3 || byID[users[3].ID].Handle != "u3" {
		t.Fatalf("UsersByIDs = %+v", got)
	}
	for _, u := range got {
		if u.PasswordHash != "" {
			t.Fatalf("UsersByIDs leaked a password hash: %+v", u)
		}
	}

	before = db.Statements.Load()
	if got, err := db.UsersByIDs(ctx, nil); err != nil || len(got) != 0 || db.Statements.Load() != before {
		t.Fatalf("UsersByIDs(nil) = %v, %v, %d statements", got, err, db.Statements.Load()-before)
	}
}
