// Package benchtest sets up what the benchmark packages' tests need on the
// real PostgreSQL: a fresh migrated database and a live drop to sell from.
package benchtest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store"
)

// Database returns the URL of a fresh, migrated database dropped when the
// test ends, and a connection pool to it.
func Database(t testing.TB) (string, *store.DB) {
	t.Helper()
	url := testenv.Database(t)
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return url, db
}

// LiveDrop writes a creator, a product priced 1500 EUR cents and a LIVE drop
// of stock units, and returns the drop's id.
func LiveDrop(t testing.TB, db *store.DB, handle string, stock int) int64 {
	t.Helper()
	ctx := context.Background()
	var userID, creatorID int64
	if err := db.QueryRowContext(ctx, `INSERT INTO users (handle, display_name, password_hash)
		VALUES ($1, $1, '!') RETURNING id`, handle).Scan(&userID); err != nil {
		t.Fatalf("insert creator user %s: %v", handle, err)
	}
	if err := db.QueryRowContext(ctx, `INSERT INTO creators (user_id, display_name) VALUES ($1, $2) RETURNING id`,
		userID, handle).Scan(&creatorID); err != nil {
		t.Fatalf("insert creator %s: %v", handle, err)
	}
	p := &domain.Product{CreatorID: creatorID, Title: "Bench tee", PriceCents: 1500, Currency: "EUR"}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatalf("create product: %v", err)
	}
	now := time.Now()
	d, err := db.CreateDrop(ctx, store.NewDrop{
		ProductID: p.ID, CreatorID: creatorID, Title: p.Title,
		StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Stock: stock, PerUserLimit: 2, ActorID: userID,
	})
	if err != nil {
		t.Fatalf("create drop: %v", err)
	}
	if _, err := db.TransitionDrop(ctx, store.DropTransition{
		DropID: d.ID, From: []domain.DropStatus{domain.DropScheduled}, To: domain.DropLive,
		Event: domain.EventDropStarted, Action: "drop.start", Refusal: "only a scheduled drop can start", ActorID: userID,
	}); err != nil {
		t.Fatalf("start drop: %v", err)
	}
	return d.ID
}

// Buyers inserts n users to order as and returns their ids.
func Buyers(t testing.TB, db *sql.DB, n int) []int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `INSERT INTO users (handle, display_name, password_hash)
		SELECT 'tb_' || g, 'Test buyer ' || g, '!' FROM generate_series(1, $1) AS g RETURNING id`, n)
	if err != nil {
		t.Fatalf("insert %d buyers: %v", n, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("read buyer id: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read buyer ids: %v", err)
	}
	return ids
}
