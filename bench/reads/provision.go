package main

import (
	"context"
	"database/sql"
	"fmt"

	"livedrops/domain"
)

// Its SQL is benchmark code, deliberately outside store/: fixtures written in
// a few set-based statements, where the API would take minutes of sign-ups
// and follows for 100,000 followers.

// dataset is the size of what the benchmark reads.
type dataset struct {
	Creators, ProductsPerCreator int
	// Followers follow the first creator; each other creator has a handful.
	Followers int
	// LiveDrops are LIVE drops of the first creators' first products.
	LiveDrops, Stock int
}

// provisioned is what was written and the names the shapes ask for.
type provisioned struct {
	// DropGID is the drop page's drop: the first live drop.
	DropGID string
	// BigHandle is the creator with dataset.Followers followers.
	BigHandle string
	// DropID and BigCreatorID are the same two as row ids, for the peer.
	DropID, BigCreatorID int64
	// Counts of rows written, read back from PostgreSQL.
	Creators, Products, Media, Follows, BigFollowers, LiveDrops int
}

// provision writes the dataset in one transaction: creators with their
// users, products with one image each, follower accounts and follows (with
// every creator's follower_count set from its follows, as the server keeps
// it), and live drops with stock.
func provision(ctx context.Context, db *sql.DB, d dataset) (provisioned, error) {
	var p provisioned
	if d.Creators < 1 || d.ProductsPerCreator < 1 || d.Followers < 0 || d.LiveDrops < 1 || d.LiveDrops > d.Creators || d.Stock < 1 {
		return p, fmt.Errorf("provision: a dataset needs creators, products, live drops (at most one per creator) and stock: %+v", d)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("provision: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	steps := []struct {
		what, sql string
		args      []any
	}{
		{"creators", `WITH u AS (
				INSERT INTO users (handle, display_name, password_hash)
				SELECT 'creator_' || g, 'Creator ' || g, '!' FROM generate_series(1, $1) AS g ORDER BY g
				RETURNING id, display_name)
			INSERT INTO creators (user_id, display_name, bio)
			SELECT id, display_name, 'Makes things for the benchmark.' FROM u ORDER BY id`, []any{d.Creators}},
		{"products", `INSERT INTO products (creator_id, title, description, price_cents, currency)
			SELECT c.id, 'Product ' || c.id || '.' || g, 'A benchmark product.', 500 + 100 * g, 'EUR'
			FROM creators c, generate_series(1, $1) AS g ORDER BY c.id, g`, []any{d.ProductsPerCreator}},
		{"media", `INSERT INTO media (product_id, object_key, content_type, byte_size)
			SELECT id, 'bench/product-' || id || '.jpg', 'image/jpeg', 48213 FROM products ORDER BY id`, nil},
		{"followers", `INSERT INTO users (handle, display_name, password_hash)
			SELECT 'fan_' || g, 'Fan ' || g, '!' FROM generate_series(1, $1) AS g ORDER BY g`, []any{d.Followers}},
		{"follows of the first creator", `INSERT INTO follows (creator_id, follower_id)
			SELECT (SELECT min(id) FROM creators), id FROM users WHERE handle LIKE 'fan\_%'`, nil},
		{"follows of the others", `INSERT INTO follows (creator_id, follower_id)
			SELECT c.id, f.id FROM creators c
			CROSS JOIN LATERAL (SELECT id FROM users WHERE handle LIKE 'fan\_%' ORDER BY id LIMIT c.id % 7) f
			WHERE c.id <> (SELECT min(id) FROM creators)`, nil},
		{"follower counts", `UPDATE creators c SET follower_count = (SELECT count(*) FROM follows f WHERE f.creator_id = c.id)`, nil},
		{"live drops", `WITH first AS (
				SELECT DISTINCT ON (creator_id) id, creator_id FROM products ORDER BY creator_id, id),
			d AS (
				INSERT INTO drops (product_id, creator_id, title, status, starts_at, ends_at, per_user_limit)
				SELECT id, creator_id, 'Live drop ' || creator_id, 'LIVE', now() - interval '1 minute',
					now() + make_interval(hours => 6 + creator_id::int), 2
				FROM (SELECT * FROM first ORDER BY creator_id LIMIT $1) f ORDER BY creator_id
				RETURNING id)
			INSERT INTO inventory (drop_id, total, available, reserved, sold) SELECT id, $2, $2, 0, 0 FROM d`,
			[]any{d.LiveDrops, d.Stock}},
	}
	for _, s := range steps {
		if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
			return p, fmt.Errorf("provision: insert %s: %w", s.what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return p, fmt.Errorf("provision: commit: %w", err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		return p, fmt.Errorf("provision: analyze: %w", err)
	}
	err = db.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM creators), (SELECT count(*) FROM products), (SELECT count(*) FROM media),
			(SELECT count(*) FROM follows),
			(SELECT c.follower_count FROM creators c ORDER BY c.id LIMIT 1),
			(SELECT u.handle FROM creators c JOIN users u ON u.id = c.user_id ORDER BY c.id LIMIT 1),
			(SELECT count(*) FROM drops WHERE status = 'LIVE'), (SELECT min(id) FROM drops), (SELECT min(id) FROM creators)`).
		Scan(&p.Creators, &p.Products, &p.Media, &p.Follows, &p.BigFollowers, &p.BigHandle, &p.LiveDrops, &p.DropID, &p.BigCreatorID)
	if err != nil {
		return p, fmt.Errorf("provision: count what was written: %w", err)
	}
	p.DropGID = domain.GlobalID(domain.TypeDrop, p.DropID)
	return p, nil
}
