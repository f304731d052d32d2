// Package storetest gives tests a migrated store on a fresh database of the
// real PostgreSQL (see internal/testenv), closed and dropped in cleanup.
package storetest

import (
	"context"
	"testing"

	"livedrops/internal/testenv"
	"livedrops/store"
)

// Open returns a migrated store on a fresh database.
func Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), testenv.Database(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// Count returns the single integer query answers, failing the test on error.
func Count(t testing.TB, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
