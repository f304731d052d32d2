package main

import (
	"bytes"
	"context"
	"testing"

	"livedrops/store/storetest"
)

// The aged rows go into the tables the server migrated, each past its
// default retention, and are counted back.
func TestAgedRowsFitTheSchema(t *testing.T) {
	db := storetest.Open(t)
	b := &bench{o: options{prune: 3}, db: db, out: &bytes.Buffer{}}
	ctx := context.Background()
	for round := 1; round <= 2; round++ {
		if err := b.age(ctx, round); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.agedLeft(ctx); err != nil || n != 2*4*3 {
		t.Fatalf("aged rows = %d, %v; want %d", n, err, 2*4*3)
	}
}
