package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const productColumns = `id, creator_id, title, description, price_cents, currency, created_at, updated_at, version`

// CreateProduct inserts p and fills its id and timestamps.
func (db *DB) CreateProduct(ctx context.Context, p *domain.Product) error {
	now := db.now()
	var id, version int64
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.QueryRowxContext(ctx, `INSERT INTO products
			(creator_id, title, description, price_cents, currency, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
			p.CreatorID, p.Title, p.Description, p.PriceCents, p.Currency, now).Scan(&id)
		if err != nil {
			return mapError(err, "create product of creator #%d", p.CreatorID)
		}
		created := *p
		created.ID, created.CreatedAt, created.UpdatedAt = id, now, now
		if err := writeAudit(ctx, tx, auditOf(ctx, "product.create", "product", id, created)); err != nil {
			return err
		}
		version, err = db.productChanged(ctx, tx, id, p.CreatorID, now)
		return err
	})
	if err != nil {
		return err
	}
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id, now, now, version
	return nil
}

// UpdateProduct writes p's title, description, price and currency and bumps
// its updated_at; the creator and creation time are read back into p.
func (db *DB) UpdateProduct(ctx context.Context, p *domain.Product) error {
	now := db.now()
	var stored struct {
		CreatorID int64     `db:"creator_id"`
		CreatedAt time.Time `db:"created_at"`
	}
	var version int64
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.QueryRowxContext(ctx, `UPDATE products
			SET title = $2, description = $3, price_cents = $4, currency = $5, updated_at = $6
			WHERE id = $1 RETURNING creator_id, created_at`,
			p.ID, p.Title, p.Description, p.PriceCents, p.Currency, now).StructScan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.NotFound, "product not found")
		}
		if err != nil {
			return mapError(err, "update product #%d", p.ID)
		}
		updated := *p
		updated.CreatorID, updated.CreatedAt, updated.UpdatedAt = stored.CreatorID, stored.CreatedAt, now
		if err := writeAudit(ctx, tx, auditOf(ctx, "product.update", "product", p.ID, updated)); err != nil {
			return err
		}
		version, err = db.productChanged(ctx, tx, p.ID, stored.CreatorID, now)
		return err
	})
	if err != nil {
		return err
	}
	p.CreatorID, p.CreatedAt, p.UpdatedAt, p.Version = stored.CreatorID, stored.CreatedAt, now, version
	return nil
}

// ProductsByIDs returns the products with the given ids, in no particular
// order; ids that match nothing are left out.
func (db *DB) ProductsByIDs(ctx context.Context, ids []int64) ([]domain.Product, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Product
	err := db.SelectContext(ctx, &out, `SELECT `+productColumns+` FROM products WHERE id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d products by id", len(ids))
}

// ProductsByCreator returns a page of a creator's products, newest first.
func (db *DB) ProductsByCreator(ctx context.Context, creatorID int64, p PageArgs) (Page[domain.Product], error) {
	pages, err := db.ProductsByCreators(ctx, []int64{creatorID}, p)
	return pages[creatorID], err
}

// productsNewestFirst is the order of a creator's products.
var productsNewestFirst = keyset{At: "created_at", ID: "id", Desc: true}

// ProductsByCreators returns the page p of each creator's products, newest
// first, in one statement.
func (db *DB) ProductsByCreators(ctx context.Context, creatorIDs []int64, p PageArgs) (map[int64]Page[domain.Product], error) {
	body, args := productsNewestFirst.lateral(`SELECT `+productColumns+` FROM products WHERE creator_id = parent.id`, p, 2)
	return pagesOf(ctx, db, creatorIDs, body, args, productsNewestFirst, p,
		func(r domain.Product) int64 { return r.CreatorID },
		func(r domain.Product) Cursor { return Cursor{At: r.CreatedAt, ID: r.ID} }, "list products of creators")
}

// productChanged bumps the product's version and writes the ProductUpdated
// event every instance's caches update on; it returns the new version.
func (db *DB) productChanged(ctx context.Context, tx *sqlx.Tx, productID, creatorID int64, at time.Time) (int64, error) {
	var version int64
	err := tx.QueryRowxContext(ctx, `UPDATE products SET version = version + 1 WHERE id = $1 RETURNING version`, productID).Scan(&version)
	if err != nil {
		return 0, mapError(err, "bump version of product #%d", productID)
	}
	ev, err := NewEvent(domain.EventProductUpdated, "product:"+strconv.FormatInt(productID, 10),
		domain.ProductPayload{ProductID: productID, CreatorID: creatorID, Version: version}, at)
	if err != nil {
		return 0, err
	}
	return version, insertOutbox(ctx, tx, db.Topic, ev)
}

// auditOf is the audit row of a change made on behalf of ctx's viewer (or the
// system, when there is none).
func auditOf(ctx context.Context, action, entity string, id int64, data any) Audit {
	actor := "system"
	if v := domain.ViewerFrom(ctx); v != nil {
		actor = "user:" + strconv.FormatInt(v.UserID, 10)
	}
	return Audit{Actor: actor, Action: action, Entity: entity, EntityID: id, Data: data, RequestID: domain.RequestID(ctx)}
}
