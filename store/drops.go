package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const dropColumns = `id, product_id, creator_id, title, status, starts_at, ends_at, per_user_limit, created_at, updated_at, version`

// dropKey is the outbox (and Kafka partition) key of every drop, stock and
// order event, so one drop's events keep their order.
func dropKey(id int64) string { return "drop:" + strconv.FormatInt(id, 10) }

// auditBy is the audit row of a change made by the user userID, or by the
// system (the scheduler, the sweeper) when userID is 0.
func auditBy(ctx context.Context, userID int64, action, entity string, id int64, data any) Audit {
	a := auditOf(ctx, action, entity, id, data)
	if userID != 0 {
		a.Actor = "user:" + strconv.FormatInt(userID, 10)
	} else {
		a.Actor = "system"
	}
	return a
}

// ProductSale is what scheduling a drop needs to know of its product: who
// owns it and what it is called.
type ProductSale struct {
	ProductID   int64  `db:"id"`
	CreatorID   int64  `db:"creator_id"`
	OwnerUserID int64  `db:"user_id"`
	Title       string `db:"title"`
}

// ProductSale returns the product's owner and title, NOT_FOUND when there is
// no such product.
func (db *DB) ProductSale(ctx context.Context, productID int64) (*ProductSale, error) {
	var ps ProductSale
	err := db.GetContext(ctx, &ps, `SELECT p.id, p.creator_id, c.user_id, p.title
		FROM products p JOIN creators c ON c.id = p.creator_id WHERE p.id = $1`, productID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.NotFound, "product not found")
	}
	if err != nil {
		return nil, mapError(err, "read owner of product #%d", productID)
	}
	return &ps, nil
}

// DropOwner returns the drop and the user id of its creator, NOT_FOUND when
// there is no such drop.
func (db *DB) DropOwner(ctx context.Context, dropID int64) (*domain.Drop, int64, error) {
	var row struct {
		domain.Drop
		OwnerUserID int64 `db:"owner_user_id"`
	}
	err := db.GetContext(ctx, &row, `SELECT d.id, d.product_id, d.creator_id, d.title, d.status,
		d.starts_at, d.ends_at, d.per_user_limit, d.created_at, d.updated_at, d.version, c.user_id AS owner_user_id
		FROM drops d JOIN creators c ON c.id = d.creator_id WHERE d.id = $1`, dropID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, domain.Errorf(domain.NotFound, "drop not found")
	}
	if err != nil {
		return nil, 0, mapError(err, "read owner of drop #%d", dropID)
	}
	return &row.Drop, row.OwnerUserID, nil
}

// NewDrop is a drop to schedule, already checked by the drops service.
type NewDrop struct {
	ProductID    int64
	CreatorID    int64
	Title        string
	StartsAt     time.Time
	EndsAt       time.Time
	Stock        int
	PerUserLimit int
	// ActorID is the user scheduling it, for the audit log.
	ActorID int64
}

// CreateDrop writes a SCHEDULED drop, its inventory (all of it available),
// its DropScheduled event and its audit row in one transaction.
func (db *DB) CreateDrop(ctx context.Context, in NewDrop) (*domain.Drop, error) {
	now := db.now()
	var d domain.Drop
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &d, `INSERT INTO drops
			(product_id, creator_id, title, status, starts_at, ends_at, per_user_limit, created_at, updated_at)
			VALUES ($1, $2, $3, 'SCHEDULED', $4, $5, $6, $7, $7) RETURNING `+dropColumns,
			in.ProductID, in.CreatorID, in.Title, in.StartsAt.UTC(), in.EndsAt.UTC(), in.PerUserLimit, now)
		if err != nil {
			return mapError(err, "create drop of product #%d", in.ProductID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO inventory (drop_id, total, available, reserved, sold)
			VALUES ($1, $2, $2, 0, 0)`, d.ID, in.Stock); err != nil {
			return mapError(err, "create inventory of drop #%d", d.ID)
		}
		if err := db.dropEvent(ctx, tx, domain.EventDropScheduled, &d, now); err != nil {
			return err
		}
		return writeAudit(ctx, tx, auditBy(ctx, in.ActorID, "drop.schedule", "drop", d.ID,
			map[string]any{"drop": d, "stock": in.Stock}))
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// DropTransition is one move of a drop's status machine.
type DropTransition struct {
	DropID int64
	// From are the statuses the move is allowed from; any other is a CONFLICT.
	From []domain.DropStatus
	To   domain.DropStatus
	// Event is the event type written with the move (DropStarted, DropEnded, DropCancelled).
	Event string
	// Action names the move in the audit log (drop.start, drop.end, drop.cancel).
	Action string
	// Refusal explains a CONFLICT, followed by the drop's actual status.
	Refusal string
	// ActorID is the user asking, 0 for the system.
	ActorID int64
}

// TransitionDrop applies t with a conditional update, so of two concurrent
// moves only one happens, and writes its event and audit row in the same
// transaction. A move to LIVE starts the sale now: a start time still ahead
// is brought forward, a drop whose end time has passed cannot start, and a
// drop with nothing available goes straight to SOLD_OUT.
func (db *DB) TransitionDrop(ctx context.Context, t DropTransition) (*domain.Drop, error) {
	now := db.now()
	var d domain.Drop
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		q := `UPDATE drops SET status = $3, updated_at = $4, version = version + 1
			WHERE id = $1 AND status = ANY($2) RETURNING ` + dropColumns
		if t.To == domain.DropLive {
			q = `UPDATE drops SET
				status = CASE WHEN (SELECT available FROM inventory WHERE drop_id = $1) > 0 THEN $3 ELSE 'SOLD_OUT' END,
				starts_at = LEAST(starts_at, $4), updated_at = $4, version = version + 1
				WHERE id = $1 AND status = ANY($2) AND ends_at > $4 RETURNING ` + dropColumns
		}
		err := tx.GetContext(ctx, &d, q, t.DropID, pq.Array(statusStrings(t.From)), string(t.To), now)
		if errors.Is(err, sql.ErrNoRows) {
			return db.transitionRefused(ctx, tx, t, now)
		}
		if err != nil {
			return mapError(err, "%s drop #%d", t.Action, t.DropID)
		}
		evs, err := startEvents(ctx, tx, t.Event, &d, now)
		if err != nil {
			return err
		}
		if err := insertOutbox(ctx, tx, db.Topic, evs...); err != nil {
			return err
		}
		return writeAudit(ctx, tx, auditBy(ctx, t.ActorID, t.Action, "drop", d.ID, d))
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// transitionRefused explains why a conditional transition matched no row.
func (db *DB) transitionRefused(ctx context.Context, tx *sqlx.Tx, t DropTransition, now time.Time) error {
	var cur struct {
		Status domain.DropStatus `db:"status"`
		EndsAt time.Time         `db:"ends_at"`
	}
	err := tx.GetContext(ctx, &cur, `SELECT status, ends_at FROM drops WHERE id = $1`, t.DropID)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.NotFound, "drop not found")
	}
	if err != nil {
		return mapError(err, "read status of drop #%d", t.DropID)
	}
	for _, s := range t.From {
		if s == cur.Status && t.To == domain.DropLive && !cur.EndsAt.After(now) {
			return domain.Errorf(domain.Conflict, "the drop's end time has passed; it can no longer start")
		}
	}
	return domain.Errorf(domain.Conflict, "%s; this drop is %s", t.Refusal, cur.Status)
}

// startEvents returns the lifecycle event typ of d, followed, for a drop
// that went on sale with nothing available (straight to SOLD_OUT), by SoldOut.
func startEvents(ctx context.Context, tx *sqlx.Tx, typ string, d *domain.Drop, now time.Time) ([]domain.Event, error) {
	ev, err := newDropEvent(typ, d, now)
	if err != nil {
		return nil, err
	}
	if typ != domain.EventDropStarted || d.Status != domain.DropSoldOut {
		return []domain.Event{ev}, nil
	}
	var s domain.Stock
	if err := tx.GetContext(ctx, &s, `SELECT `+stockColumns+` FROM inventory WHERE drop_id = $1`, d.ID); err != nil {
		return nil, mapError(err, "read stock of drop #%d", d.ID)
	}
	soldOut, err := NewEvent(domain.EventSoldOut, dropKey(d.ID), stockPayload(d, s), now)
	if err != nil {
		return nil, err
	}
	return []domain.Event{ev, soldOut}, nil
}

// dropEvent writes a drop lifecycle event of d.
func (db *DB) dropEvent(ctx context.Context, tx *sqlx.Tx, typ string, d *domain.Drop, at time.Time) error {
	ev, err := newDropEvent(typ, d, at)
	if err != nil {
		return err
	}
	return insertOutbox(ctx, tx, db.Topic, ev)
}

// newDropEvent returns the lifecycle event typ of d.
func newDropEvent(typ string, d *domain.Drop, at time.Time) (domain.Event, error) {
	return NewEvent(typ, dropKey(d.ID), domain.DropPayload{
		DropID: d.ID, CreatorID: d.CreatorID, ProductID: d.ProductID,
		Status: d.Status, StartsAt: d.StartsAt, EndsAt: d.EndsAt, Version: d.Version,
	}, at)
}

func statusStrings(ss []domain.DropStatus) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// StartDueDrops starts, in one transaction, up to limit SCHEDULED drops whose
// start time has come (and whose end time has not), each with its DropStarted
// event. Rows another scheduler holds are skipped (FOR UPDATE SKIP LOCKED) and
// the update is conditional on the status, so concurrent schedulers start each
// drop once.
func (db *DB) StartDueDrops(ctx context.Context, limit int) ([]domain.Drop, error) {
	return db.dueDrops(ctx, limit, `SELECT id FROM drops
		WHERE status = 'SCHEDULED' AND starts_at <= $1 AND ends_at > $1
		ORDER BY starts_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
		`UPDATE drops SET status = CASE WHEN i.available > 0 THEN 'LIVE' ELSE 'SOLD_OUT' END, updated_at = $2,
			version = drops.version + 1
		FROM inventory i WHERE drops.id = ANY($1) AND i.drop_id = drops.id AND drops.status = 'SCHEDULED'
		RETURNING drops.id, drops.product_id, drops.creator_id, drops.title, drops.status, drops.starts_at,
			drops.ends_at, drops.per_user_limit, drops.created_at, drops.updated_at, drops.version`, // inventory has a version too
		domain.EventDropStarted, "drop.start")
}

// EndDueDrops ends, in one transaction, up to limit drops whose end time has
// passed: LIVE and SOLD_OUT ones, and SCHEDULED ones whose whole window went by
// without a start. Each gets its DropEnded event, once, as in StartDueDrops.
func (db *DB) EndDueDrops(ctx context.Context, limit int) ([]domain.Drop, error) {
	return db.dueDrops(ctx, limit, `SELECT id FROM drops
		WHERE status IN ('LIVE', 'SOLD_OUT', 'SCHEDULED') AND ends_at <= $1
		ORDER BY ends_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
		`UPDATE drops SET status = 'ENDED', updated_at = $2, version = version + 1
		WHERE id = ANY($1) AND status IN ('LIVE', 'SOLD_OUT', 'SCHEDULED')
		RETURNING `+dropColumns,
		domain.EventDropEnded, "drop.end")
}

// dueDrops claims the drops pick selects and moves them with move, writing
// event and an audit row for each.
func (db *DB) dueDrops(ctx context.Context, limit int, pick, move, event, action string) ([]domain.Drop, error) {
	now := db.now()
	var moved []domain.Drop
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, pick, now, limit); err != nil {
			return mapError(err, "claim drops due for %s", action)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := tx.SelectContext(ctx, &moved, move, pq.Array(ids), now); err != nil {
			return mapError(err, "%s %d due drops", action, len(ids))
		}
		evs := make([]domain.Event, 0, len(moved))
		for i := range moved {
			d := &moved[i]
			dEvs, err := startEvents(ctx, tx, event, d, now)
			if err != nil {
				return err
			}
			evs = append(evs, dEvs...)
			if err := writeAudit(ctx, tx, auditBy(ctx, 0, action, "drop", d.ID, d)); err != nil {
				return err
			}
		}
		return insertOutbox(ctx, tx, db.Topic, evs...)
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// DropsByIDs returns the drops with the given ids, in no particular order;
// ids that match nothing are left out.
func (db *DB) DropsByIDs(ctx context.Context, ids []int64) ([]domain.Drop, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Drop
	err := db.SelectContext(ctx, &out, `SELECT `+dropColumns+` FROM drops WHERE id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d drops by id", len(ids))
}

// DropStatesByIDs returns the drops with the given ids with their stock, in
// one statement (one snapshot), in no particular order; ids that match
// nothing are left out.
func (db *DB) DropStatesByIDs(ctx context.Context, ids []int64) ([]domain.DropState, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []stockRow
	err := db.SelectContext(ctx, &rows, `SELECT i.drop_id, i.total, i.available, i.reserved, i.sold, i.version,
			d.id, d.product_id, d.creator_id, d.title, d.status, d.starts_at, d.ends_at, d.per_user_limit,
			d.created_at, d.updated_at, d.version AS drop_version
		FROM drops d JOIN inventory i ON i.drop_id = d.id WHERE d.id = ANY($1)`, pq.Array(ids))
	if err != nil {
		return nil, mapError(err, "read %d drops with their stock", len(ids))
	}
	out := make([]domain.DropState, len(rows))
	for i, r := range rows {
		out[i] = r.state()
	}
	return out, nil
}

// byStart is the order of every drop list but the live one: start time, then id.
var byStart = keyset{At: "starts_at", ID: "id"}

func dropCursor(d domain.Drop) Cursor { return Cursor{At: d.StartsAt, ID: d.ID} }

// Drops returns a page of all drops, or of those of one status, by start time
// (earliest first).
func (db *DB) Drops(ctx context.Context, status *domain.DropStatus, p PageArgs) (Page[domain.Drop], error) {
	filter, args := "TRUE", []any{}
	if status != nil {
		filter, args = "status = $1", []any{string(*status)}
	}
	return db.dropPage(ctx, filter, args, byStart, dropCursor, p, "list drops")
}

// LiveDrops returns a page of the drops selling now (LIVE, and SOLD_OUT ones
// whose stock may still come back), soonest ending first.
func (db *DB) LiveDrops(ctx context.Context, p PageArgs) (Page[domain.Drop], error) {
	return db.dropPage(ctx, "status IN ('LIVE', 'SOLD_OUT')", nil, keyset{At: "ends_at", ID: "id"},
		func(d domain.Drop) Cursor { return Cursor{At: d.EndsAt, ID: d.ID} }, p, "list live drops")
}

// DropsByCreator returns a page of a creator's drops, or of those of one
// status, by start time.
func (db *DB) DropsByCreator(ctx context.Context, creatorID int64, status *domain.DropStatus, p PageArgs) (Page[domain.Drop], error) {
	pages, err := db.DropsByCreators(ctx, []int64{creatorID}, status, p)
	return pages[creatorID], err
}

// DropsByCreators returns the page p of each creator's drops, or of those of
// one status, by start time, in one statement.
func (db *DB) DropsByCreators(ctx context.Context, creatorIDs []int64, status *domain.DropStatus, p PageArgs) (map[int64]Page[domain.Drop], error) {
	sel, args := `SELECT `+dropColumns+` FROM drops WHERE creator_id = parent.id`, []any{}
	if status != nil {
		sel, args = sel+` AND status = $2`, []any{string(*status)}
	}
	body, cargs := byStart.lateral(sel, p, len(args)+2)
	return pagesOf(ctx, db, creatorIDs, body, append(args, cargs...), byStart, p,
		func(d domain.Drop) int64 { return d.CreatorID }, dropCursor, "list drops of creators")
}

// DropsByProduct returns a page of a product's drops by start time.
func (db *DB) DropsByProduct(ctx context.Context, productID int64, p PageArgs) (Page[domain.Drop], error) {
	pages, err := db.DropsByProducts(ctx, []int64{productID}, p)
	return pages[productID], err
}

// DropsByProducts returns the page p of each product's drops by start time,
// in one statement.
func (db *DB) DropsByProducts(ctx context.Context, productIDs []int64, p PageArgs) (map[int64]Page[domain.Drop], error) {
	body, args := byStart.lateral(`SELECT `+dropColumns+` FROM drops WHERE product_id = parent.id`, p, 2)
	return pagesOf(ctx, db, productIDs, body, args, byStart, p,
		func(d domain.Drop) int64 { return d.ProductID }, dropCursor, "list drops of products")
}

// dropPage reads one keyset page of the drops matching filter (whose
// parameters are args, numbered from $1).
func (db *DB) dropPage(ctx context.Context, filter string, args []any, k keyset, key func(domain.Drop) Cursor,
	p PageArgs, attempt string) (Page[domain.Drop], error) {
	cond, order, limit, cargs := k.clause(p, len(args)+1)
	var rows []domain.Drop
	err := db.SelectContext(ctx, &rows, `SELECT `+dropColumns+` FROM drops WHERE `+filter+` AND `+cond+
		` ORDER BY `+order+` LIMIT `+strconv.Itoa(limit), append(args, cargs...)...)
	if err != nil {
		return Page[domain.Drop]{}, mapError(err, "%s", attempt)
	}
	return page(rows, p, key), nil
}

// GateStock is a drop's available stock as the admission gate should count it.
type GateStock struct {
	DropID    int64             `db:"drop_id"`
	Status    domain.DropStatus `db:"status"`
	Available int               `db:"available"`
}

// gateStocks selects the GateStock of every drop that can still sell.
const gateStocks = `SELECT i.drop_id, d.status, i.available FROM inventory i
	JOIN drops d ON d.id = i.drop_id WHERE d.status IN ('SCHEDULED', 'LIVE', 'SOLD_OUT')`

// GateStocks returns, in drop id order after afterID, up to limit drops that
// can still sell (SCHEDULED, LIVE, SOLD_OUT) with their available stock.
func (db *DB) GateStocks(ctx context.Context, afterID int64, limit int) ([]GateStock, error) {
	var out []GateStock
	err := db.SelectContext(ctx, &out, gateStocks+` AND i.drop_id > $1 ORDER BY i.drop_id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read gate stocks after drop #%d: %w", afterID, err)
	}
	return out, nil
}

// GateStockOf returns the drop's available stock as GateStocks does, or nil
// when the drop cannot sell (or does not exist).
func (db *DB) GateStockOf(ctx context.Context, dropID int64) (*GateStock, error) {
	var out GateStock
	err := db.GetContext(ctx, &out, gateStocks+` AND i.drop_id = $1`, dropID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read gate stock of drop #%d: %w", dropID, err)
	}
	return &out, nil
}
