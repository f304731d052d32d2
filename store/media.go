package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const mediaColumns = `id, product_id, object_key, content_type, byte_size, checksum, created_at`

// CreateMedia inserts m for its product and fills its id and creation time.
func (db *DB) CreateMedia(ctx context.Context, m *domain.Media) error {
	now := db.now()
	var id int64
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var creatorID int64
		err := tx.GetContext(ctx, &creatorID, `SELECT creator_id FROM products WHERE id = $1`, m.ProductID)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.NotFound, "product not found")
		}
		if err != nil {
			return mapError(err, "read creator of product #%d", m.ProductID)
		}
		err = tx.QueryRowxContext(ctx, `INSERT INTO media
			(product_id, object_key, content_type, byte_size, checksum, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			m.ProductID, m.Key, m.ContentType, m.ByteSize, m.Checksum, now).Scan(&id)
		if err != nil {
			return mapError(err, "create media %q of product #%d", m.Key, m.ProductID)
		}
		created := *m
		created.ID, created.CreatedAt = id, now
		if err := writeAudit(ctx, tx, auditOf(ctx, "media.create", "media", id, created)); err != nil {
			return err
		}
		// A product's media list is part of the cached product view.
		_, err = db.productChanged(ctx, tx, m.ProductID, creatorID, now)
		return err
	})
	if err != nil {
		return err
	}
	m.ID, m.CreatedAt = id, now
	return nil
}

// MediaByProducts returns the media of each product, oldest first, in one
// query; products without media are absent from the map.
func (db *DB) MediaByProducts(ctx context.Context, productIDs []int64) (map[int64][]domain.Media, error) {
	out := make(map[int64][]domain.Media, len(productIDs))
	if len(productIDs) == 0 {
		return out, nil
	}
	var rows []domain.Media
	err := db.SelectContext(ctx, &rows, `SELECT `+mediaColumns+` FROM media
		WHERE product_id = ANY($1) ORDER BY product_id, id`, pq.Array(productIDs))
	if err != nil {
		return nil, mapError(err, "read media of %d products", len(productIDs))
	}
	for _, m := range rows {
		out[m.ProductID] = append(out[m.ProductID], m)
	}
	return out, nil
}

// MediaByIDs returns the media with the given ids, in no particular order;
// ids that match nothing are left out.
func (db *DB) MediaByIDs(ctx context.Context, ids []int64) ([]domain.Media, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Media
	err := db.SelectContext(ctx, &out, `SELECT `+mediaColumns+` FROM media WHERE id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d media by id", len(ids))
}
