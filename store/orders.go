package store

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const orderColumns = `id, drop_id, buyer_id, quantity, total_cents, currency, status, idempotency_key,
	request_hash, created_at, updated_at, expires_at`

// NewOrder is an order to place, already checked by the orders service.
type NewOrder struct {
	DropID         int64
	BuyerID        int64
	Quantity       int
	IdempotencyKey string
	RequestHash    string
	// TTL is how long the reservation holds before the sweeper expires it.
	TTL time.Duration
}

// OrderSale is what an order's admission is judged on, read inside the
// order's transaction: the drop, its price and what the buyer already holds.
type OrderSale struct {
	Drop       domain.Drop
	PriceCents int64
	Currency   string
	// Held is the units of the buyer's pending and confirmed orders in the drop.
	Held int
	// Available is the drop's available stock as read before the sale took
	// the inventory lock: while a drop sells it only falls, so it bounds what
	// is left from above.
	Available int
}

// Placed is what PlaceOrder did.
type Placed struct {
	Order *domain.Order
	// Existing is true when the buyer's idempotency key already named an
	// order: nothing was placed and Order is that order, unchanged.
	Existing bool
	// Drop and Stock are the drop and its inventory after a new order.
	Drop  *domain.Drop
	Stock domain.Stock
}

// errKeyRace is a concurrent insert of the same (buyer, idempotency key).
var errKeyRace = errors.New("store: idempotency key taken by a concurrent order")

// PlaceOrder places an order in one transaction, in this sequence:
//
//  1. a transaction-level advisory lock on (drop, buyer) serialises one
//     buyer's orders in one drop, so the per-user limit is exact;
//  2. an order already holding (buyer, key) is returned as it is (Existing);
//  3. admit judges the sale (drop status and window, per-user limit) and may
//     refuse it with its error;
//  4. a conditional UPDATE takes the units from available to reserved, or
//     nothing is left (SOLD_OUT) — the inventory_balance CHECK backs it;
//  5. the order is inserted only if the drop is still LIVE (an end or cancel
//     that committed meanwhile is seen here, after the inventory lock);
//  6. OrderPlaced, the stock events and the audit row are written.
//
// Steps 1-3 run before the hot inventory row is locked, to keep that lock short.
func (db *DB) PlaceOrder(ctx context.Context, in NewOrder, admit func(OrderSale) error) (*Placed, error) {
	now := db.now()
	var placed Placed
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, buyerLockKey(in.DropID, in.BuyerID)); err != nil {
			return mapError(err, "lock orders of buyer #%d in drop #%d", in.BuyerID, in.DropID)
		}
		existing, err := orderByKey(ctx, tx, in.BuyerID, in.IdempotencyKey)
		if err != nil {
			return err
		}
		if existing != nil {
			placed = Placed{Order: existing, Existing: true}
			return nil
		}
		sale, err := orderSale(ctx, tx, in.DropID, in.BuyerID)
		if err != nil {
			return err
		}
		if err := admit(*sale); err != nil {
			return err
		}

		m := take(in.Quantity)
		d, after, ok, err := moveStock(ctx, tx, in.DropID, m, noStockCap)
		if err != nil {
			return err
		}
		if !ok {
			return domain.Errorf(domain.SoldOut, "not enough stock left")
		}
		var o domain.Order
		err = tx.GetContext(ctx, &o, `INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency,
				status, idempotency_key, request_hash, created_at, updated_at, expires_at)
			SELECT $1, $2, $3, $4, $5, 'PENDING_PAYMENT', $6, $7, $8, $8, $9
			FROM drops WHERE id = $1 AND status = 'LIVE'
			RETURNING `+orderColumns,
			in.DropID, in.BuyerID, in.Quantity, sale.PriceCents*int64(in.Quantity), sale.Currency,
			in.IdempotencyKey, in.RequestHash, now, now.Add(in.TTL))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return domain.Errorf(domain.DropNotLive, "the drop is not live")
		case isUniqueViolation(err, "orders_buyer_idempotency_key"):
			return errKeyRace
		case err != nil:
			return mapError(err, "insert order of buyer #%d in drop #%d", in.BuyerID, in.DropID)
		}
		evs, err := orderEvent(domain.EventOrderPlaced, &o, now)
		if err != nil {
			return err
		}
		if err := db.writeStockEvents(ctx, tx, evs, d, m, after, now); err != nil {
			return err
		}
		if err := writeAudit(ctx, tx, auditBy(ctx, in.BuyerID, "order.place", "order", o.ID, o)); err != nil {
			return err
		}
		placed = Placed{Order: &o, Drop: d, Stock: after}
		return nil
	})
	if errors.Is(err, errKeyRace) {
		// The twin that won committed its order; this one is that request again.
		o, err := db.OrderByKey(ctx, in.BuyerID, in.IdempotencyKey)
		if err != nil {
			return nil, err
		}
		if o == nil {
			return nil, errors.New("store: order holding a taken idempotency key vanished")
		}
		return &Placed{Order: o, Existing: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &placed, nil
}

// buyerLockKey is the advisory lock key of one buyer in one drop. Two pairs
// sharing a key only wait for each other, which is harmless.
func buyerLockKey(dropID, buyerID int64) int64 {
	h := fnv.New64a()
	h.Write([]byte("order:" + strconv.FormatInt(dropID, 10) + ":" + strconv.FormatInt(buyerID, 10)))
	return int64(h.Sum64())
}

// orderSale reads the drop, its price and the buyer's holding in it.
func orderSale(ctx context.Context, tx *sqlx.Tx, dropID, buyerID int64) (*OrderSale, error) {
	var row struct {
		domain.Drop
		PriceCents int64  `db:"price_cents"`
		Currency   string `db:"currency"`
		Held       int    `db:"held"`
		Available  int    `db:"available"`
	}
	err := tx.GetContext(ctx, &row, `SELECT d.id, d.product_id, d.creator_id, d.title, d.status,
			d.starts_at, d.ends_at, d.per_user_limit, d.created_at, d.updated_at, p.price_cents, p.currency,
			(SELECT COALESCE(SUM(o.quantity), 0) FROM orders o
			 WHERE o.drop_id = d.id AND o.buyer_id = $2 AND o.status IN ('PENDING_PAYMENT', 'CONFIRMED')) AS held,
			i.available
		FROM drops d JOIN products p ON p.id = d.product_id JOIN inventory i ON i.drop_id = d.id
		WHERE d.id = $1`, dropID, buyerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.NotFound, "drop not found")
	}
	if err != nil {
		return nil, mapError(err, "read sale of drop #%d for buyer #%d", dropID, buyerID)
	}
	return &OrderSale{Drop: row.Drop, PriceCents: row.PriceCents, Currency: row.Currency, Held: row.Held,
		Available: row.Available}, nil
}

// orderEvent returns the order event of type typ for o.
func orderEvent(typ string, o *domain.Order, at time.Time) ([]domain.Event, error) {
	ev, err := NewEvent(typ, dropKey(o.DropID), domain.OrderPayload{
		OrderID: o.ID, DropID: o.DropID, BuyerID: o.BuyerID, Quantity: o.Quantity, Status: o.Status,
	}, at)
	if err != nil {
		return nil, err
	}
	return []domain.Event{ev}, nil
}

func orderByKey(ctx context.Context, q sqlx.QueryerContext, buyerID int64, key string) (*domain.Order, error) {
	var o domain.Order
	err := sqlx.GetContext(ctx, q, &o, `SELECT `+orderColumns+` FROM orders
		WHERE buyer_id = $1 AND idempotency_key = $2`, buyerID, key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapError(err, "read order of buyer #%d by idempotency key", buyerID)
	}
	return &o, nil
}

// OrderByKey returns the buyer's order placed with the idempotency key, or nil.
func (db *DB) OrderByKey(ctx context.Context, buyerID int64, key string) (*domain.Order, error) {
	return orderByKey(ctx, db, buyerID, key)
}

// OrdersByIDs returns the orders with the given ids, in no particular order;
// ids that match nothing are left out.
func (db *DB) OrdersByIDs(ctx context.Context, ids []int64) ([]domain.Order, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Order
	err := db.SelectContext(ctx, &out, `SELECT `+orderColumns+` FROM orders WHERE id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d orders by id", len(ids))
}

// OrderParties returns the order and the user id of the creator selling it:
// the two people who may see it. NOT_FOUND when there is no such order.
func (db *DB) OrderParties(ctx context.Context, orderID int64) (*domain.Order, int64, error) {
	var row struct {
		domain.Order
		SellerUserID int64 `db:"seller_user_id"`
	}
	err := db.GetContext(ctx, &row, `SELECT o.id, o.drop_id, o.buyer_id, o.quantity, o.total_cents, o.currency,
			o.status, o.idempotency_key, o.request_hash, o.created_at, o.updated_at, o.expires_at,
			c.user_id AS seller_user_id
		FROM orders o JOIN drops d ON d.id = o.drop_id JOIN creators c ON c.id = d.creator_id
		WHERE o.id = $1`, orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, domain.Errorf(domain.NotFound, "order not found")
	}
	if err != nil {
		return nil, 0, mapError(err, "read order #%d", orderID)
	}
	return &row.Order, row.SellerUserID, nil
}

// OrdersOfBuyer returns a page of the buyer's orders, newest first.
func (db *DB) OrdersOfBuyer(ctx context.Context, buyerID int64, p PageArgs) (Page[domain.Order], error) {
	cond, order, limit, args := keyset{At: "created_at", ID: "id", Desc: true}.clause(p, 2)
	var rows []domain.Order
	err := db.SelectContext(ctx, &rows, `SELECT `+orderColumns+` FROM orders
		WHERE buyer_id = $1 AND `+cond+` ORDER BY `+order+` LIMIT `+strconv.Itoa(limit),
		append([]any{buyerID}, args...)...)
	if err != nil {
		return Page[domain.Order]{}, mapError(err, "list orders of buyer #%d", buyerID)
	}
	return page(rows, p, func(o domain.Order) Cursor { return Cursor{At: o.CreatedAt, ID: o.ID} }), nil
}

// StockReturn is stock an order gave back to its drop: the admission gate
// must get Quantity back too.
type StockReturn struct {
	Drop     domain.Drop
	Quantity int
	// Stock is the drop's inventory after the return.
	Stock domain.Stock
}

// CancelOrder cancels a PENDING_PAYMENT order and returns its stock, once: the
// status change is conditional, so of two concurrent cancels one returns the
// stock and the other finds the order CANCELLED and returns it unchanged (with
// a nil StockReturn). Any other status is a CONFLICT.
func (db *DB) CancelOrder(ctx context.Context, orderID, actorID int64) (*domain.Order, *StockReturn, error) {
	now := db.now()
	var (
		o   domain.Order
		ret *StockReturn
	)
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &o, `UPDATE orders SET status = 'CANCELLED', updated_at = $2
			WHERE id = $1 AND status = 'PENDING_PAYMENT' RETURNING `+orderColumns, orderID, now)
		if errors.Is(err, sql.ErrNoRows) {
			return cancelRefused(ctx, tx, orderID, &o)
		}
		if err != nil {
			return mapError(err, "cancel order #%d", orderID)
		}
		ret, err = db.releaseOrders(ctx, tx, domain.EventOrderCancelled, []domain.Order{o}, actorID, "order.cancel", now)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &o, ret, nil
}

// cancelRefused reads the order a cancel did not match: an order already
// cancelled is the answer (cancelling is idempotent), anything else refuses.
func cancelRefused(ctx context.Context, tx *sqlx.Tx, orderID int64, o *domain.Order) error {
	err := tx.GetContext(ctx, o, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.NotFound, "order not found")
	}
	if err != nil {
		return mapError(err, "read order #%d", orderID)
	}
	if o.Status == domain.OrderCancelled {
		return nil
	}
	return domain.Errorf(domain.Conflict, "only an order awaiting payment can be cancelled; this order is %s", o.Status)
}

// releaseOrders gives the stock of orders that just left PENDING_PAYMENT (all
// of one drop) back to available, writing event for each order, the stock
// events and an audit row for each order.
func (db *DB) releaseOrders(ctx context.Context, tx *sqlx.Tx, event string, orders []domain.Order,
	actorID int64, action string, now time.Time) (*StockReturn, error) {
	dropID, q := orders[0].DropID, 0
	for _, o := range orders {
		q += o.Quantity
	}
	m := release(q)
	d, after, ok, err := moveStock(ctx, tx, dropID, m, noStockCap)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("store: release stock of drop #" + strconv.FormatInt(dropID, 10) + ": no inventory row")
	}
	var evs []domain.Event
	for i := range orders {
		ev, err := orderEvent(event, &orders[i], now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev...)
	}
	if err := db.writeStockEvents(ctx, tx, evs, d, m, after, now); err != nil {
		return nil, err
	}
	for i := range orders {
		if err := writeAudit(ctx, tx, auditBy(ctx, actorID, action, "order", orders[i].ID, orders[i])); err != nil {
			return nil, err
		}
	}
	return &StockReturn{Drop: *d, Quantity: q, Stock: after}, nil
}

// ExpireOrders expires up to limit PENDING_PAYMENT orders whose reservation
// ran out, in one transaction, and returns their stock once: rows another
// sweeper holds are skipped (FOR UPDATE SKIP LOCKED) and the status change is
// conditional. Drops' inventory rows are locked in drop id order, so two
// sweepers cannot deadlock.
func (db *DB) ExpireOrders(ctx context.Context, limit int) ([]domain.Order, []StockReturn, error) {
	now := db.now()
	var (
		expired []domain.Order
		returns []StockReturn
	)
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		err := tx.SelectContext(ctx, &ids, `SELECT id FROM orders
			WHERE status = 'PENDING_PAYMENT' AND expires_at <= $1
			ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
		if err != nil {
			return mapError(err, "claim expired orders")
		}
		if len(ids) == 0 {
			return nil
		}
		err = tx.SelectContext(ctx, &expired, `UPDATE orders SET status = 'EXPIRED', updated_at = $2
			WHERE id = ANY($1) AND status = 'PENDING_PAYMENT' RETURNING `+orderColumns, pq.Array(ids), now)
		if err != nil {
			return mapError(err, "expire %d orders", len(ids))
		}
		sort.Slice(expired, func(i, j int) bool {
			if expired[i].DropID != expired[j].DropID {
				return expired[i].DropID < expired[j].DropID
			}
			return expired[i].ID < expired[j].ID
		})
		for start := 0; start < len(expired); {
			end := start
			for end < len(expired) && expired[end].DropID == expired[start].DropID {
				end++
			}
			ret, err := db.releaseOrders(ctx, tx, domain.EventOrderExpired, expired[start:end], 0, "order.expire", now)
			if err != nil {
				return err
			}
			returns = append(returns, *ret)
			start = end
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return expired, returns, nil
}
