package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
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
	// RequestID names the request in the order's audit row.
	RequestID string
}

// OrderSale is what an order's admission is judged on, read inside the
// order's transaction: the drop, its price and what the buyer already holds.
type OrderSale struct {
	Drop       domain.Drop
	PriceCents int64
	Currency   string
	// Held is the units of the buyer's pending and confirmed orders in the
	// drop, those granted earlier in the same batch included.
	Held int
	// Available is the drop's available stock at the order's turn.
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

// PlaceResult is what became of one order of a batch: Placed, or Err.
type PlaceResult struct {
	*Placed
	Err error
	// Available is what the drop had left at the order's turn, -1 when its
	// sale was never judged (an error before, or an existing order).
	Available int
}

// PlaceOrder places one order: PlaceOrders with a batch of one.
func (db *DB) PlaceOrder(ctx context.Context, in NewOrder, admit func(OrderSale) error) (*Placed, error) {
	if in.RequestID == "" {
		in.RequestID = domain.RequestID(ctx)
	}
	res, err := db.PlaceOrders(ctx, in.DropID, []NewOrder{in}, func(_ int, s OrderSale) error { return admit(s) })
	if err != nil {
		return nil, err
	}
	return res[0].Placed, res[0].Err
}

// MaxBatch bounds the orders of one PlaceOrders call.
const MaxBatch = 1000

// PlaceOrders places a batch of orders of one drop in one transaction, so a
// stampede on a drop takes its inventory row's lock once for many sales. Each
// order gets its own answer; the error is for the batch as a whole (nothing
// was placed). In this sequence:
//
//  1. transaction-level advisory locks on each (drop, buyer), taken in key
//     order, serialise one buyer's orders in one drop, so the per-user limit
//     is exact;
//  2. an order already holding (buyer, key) is returned as it is
//     (Existing), and so is a twin of an order earlier in the batch;
//  3. the drop, its price and what each buyer holds are read;
//  4. the inventory row is locked; then, in batch order, admit judges each
//     sale (drop status and window, per-user limit, with what the batch
//     granted so far) and may refuse it with its error, and an order that
//     does not fit in what is left is SOLD_OUT;
//  5. the granted orders are inserted only if the drop is still LIVE (an end
//     or cancel that committed meanwhile is seen here, after the inventory
//     lock); one whose key a concurrent order took is that order (Existing);
//  6. their units move from available to reserved in one update (the
//     inventory_balance CHECK backs it) and OrderPlaced, the stock events and
//     the audit rows are written.
//
// Only steps 4 to 6 hold the hot inventory row's lock, and the judging in
// between is plain Go.
func (db *DB) PlaceOrders(ctx context.Context, dropID int64, batch []NewOrder, admit func(i int, sale OrderSale) error) ([]PlaceResult, error) {
	if len(batch) == 0 || len(batch) > MaxBatch {
		return nil, fmt.Errorf("store: a batch holds 1 to %d orders, not %d", MaxBatch, len(batch))
	}
	now := db.now()
	first := firstOfKeys(batch)
	var (
		res   []PlaceResult
		raced []int // orders whose key a concurrent order took
	)
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		res, raced = make([]PlaceResult, len(batch)), nil
		for i := range res {
			res[i].Available = -1
		}
		if err := lockBuyers(ctx, tx, dropID, batch); err != nil {
			return err
		}
		existing, err := ordersByKeys(ctx, tx, batch)
		if err != nil {
			return err
		}
		var fresh []int // the orders to judge: each key's first, in batch order
		for i, in := range batch {
			if o, ok := existing[orderKey{in.BuyerID, in.IdempotencyKey}]; ok {
				res[i].Placed = &Placed{Order: o, Existing: true}
			} else if first[i] == i {
				fresh = append(fresh, i)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		sale, held, err := batchSale(ctx, tx, dropID, batch, fresh)
		if err != nil {
			return err
		}

		left, err := lockStock(ctx, tx, dropID)
		if err != nil {
			return err
		}
		var granted []int
		for _, i := range fresh {
			in := batch[i]
			s := *sale
			s.Held, s.Available = held[in.BuyerID], left
			res[i].Available = left
			if err := admit(i, s); err != nil {
				res[i].Err = err
				continue
			}
			if in.Quantity > left {
				res[i].Err = domain.Errorf(domain.SoldOut, "not enough stock left")
				continue
			}
			left -= in.Quantity
			held[in.BuyerID] += in.Quantity
			granted = append(granted, i)
		}
		if len(granted) == 0 {
			return nil
		}
		placed, err := insertOrders(ctx, tx, dropID, batch, granted, sale, now)
		if err != nil {
			return err
		}
		if len(placed) == 0 {
			live, err := dropIsLive(ctx, tx, dropID)
			if err != nil {
				return err
			}
			if !live { // nothing was inserted: the drop ended or was cancelled meanwhile
				for _, i := range granted {
					res[i].Err = domain.Errorf(domain.DropNotLive, "the drop is not live")
				}
				return nil
			}
		}
		raced, err = db.recordSales(ctx, tx, dropID, batch, granted, placed, res, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A concurrent order took the key (the same buyer's order in another
	// drop, which another lock serialises): that order is the answer.
	for _, i := range raced {
		o, err := db.OrderByKey(ctx, batch[i].BuyerID, batch[i].IdempotencyKey)
		switch {
		case err != nil:
			res[i] = PlaceResult{Err: err, Available: -1}
		case o == nil:
			res[i] = PlaceResult{Err: errors.New("store: order holding a taken idempotency key vanished"), Available: -1}
		default:
			res[i] = PlaceResult{Placed: &Placed{Order: o, Existing: true}, Available: -1}
		}
	}
	// A twin (an order repeating an earlier one's buyer and key) gets that
	// order's answer: its order, as an existing one, or its error.
	for i, j := range first {
		if j == i || res[i].Placed != nil { // a first, or an order that existed before the batch
			continue
		}
		res[i] = res[j]
		if res[j].Placed != nil {
			res[i].Placed = &Placed{Order: res[j].Order, Existing: true}
		}
	}
	return res, nil
}

// firstOfKeys returns, for each order of the batch, the index of the batch's
// first order with its buyer and key: its own index unless it is a twin.
func firstOfKeys(batch []NewOrder) []int {
	firstAt := make(map[orderKey]int, len(batch))
	first := make([]int, len(batch))
	for i, in := range batch {
		k := orderKey{in.BuyerID, in.IdempotencyKey}
		j, ok := firstAt[k]
		if !ok {
			j = i
			firstAt[k] = i
		}
		first[i] = j
	}
	return first
}

// orderKey is an order's idempotency: its buyer and key.
type orderKey struct {
	buyer int64
	key   string
}

// lockBuyers takes the advisory lock of each buyer of the batch in the drop,
// in key order, so two batches sharing buyers cannot deadlock.
func lockBuyers(ctx context.Context, tx *sqlx.Tx, dropID int64, batch []NewOrder) error {
	keys := make([]int64, 0, len(batch))
	for _, in := range batch {
		keys = append(keys, buyerLockKey(dropID, in.BuyerID))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	_, err := tx.ExecContext(ctx, `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`, pq.Array(keys))
	return mapError(err, "lock orders of %d buyers in drop #%d", len(keys), dropID)
}

// buyerLockKey is the advisory lock key of one buyer in one drop. Two pairs
// sharing a key only wait for each other, which is harmless.
func buyerLockKey(dropID, buyerID int64) int64 {
	h := fnv.New64a()
	h.Write([]byte("order:" + strconv.FormatInt(dropID, 10) + ":" + strconv.FormatInt(buyerID, 10)))
	return int64(h.Sum64())
}

// ordersByKeys returns the orders already holding the batch's (buyer, key) pairs.
func ordersByKeys(ctx context.Context, tx *sqlx.Tx, batch []NewOrder) (map[orderKey]*domain.Order, error) {
	buyers := make([]int64, len(batch))
	keys := make([]string, len(batch))
	for i, in := range batch {
		buyers[i], keys[i] = in.BuyerID, in.IdempotencyKey
	}
	var rows []domain.Order
	err := tx.SelectContext(ctx, &rows, `SELECT `+orderColumns+` FROM orders
		WHERE (buyer_id, idempotency_key) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))`,
		pq.Array(buyers), pq.Array(keys))
	if err != nil {
		return nil, mapError(err, "read %d orders by idempotency key", len(batch))
	}
	return byKey(rows), nil
}

func byKey(rows []domain.Order) map[orderKey]*domain.Order {
	out := make(map[orderKey]*domain.Order, len(rows))
	for i := range rows {
		out[orderKey{rows[i].BuyerID, rows[i].IdempotencyKey}] = &rows[i]
	}
	return out
}

// batchSale reads the drop and its price, and the units each buyer of the
// orders to judge holds in it.
func batchSale(ctx context.Context, tx *sqlx.Tx, dropID int64, batch []NewOrder, judged []int) (*OrderSale, map[int64]int, error) {
	var row struct {
		domain.Drop
		PriceCents int64  `db:"price_cents"`
		Currency   string `db:"currency"`
	}
	err := tx.GetContext(ctx, &row, `SELECT d.id, d.product_id, d.creator_id, d.title, d.status,
			d.starts_at, d.ends_at, d.per_user_limit, d.created_at, d.updated_at, d.version, p.price_cents, p.currency
		FROM drops d JOIN products p ON p.id = d.product_id WHERE d.id = $1`, dropID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, domain.Errorf(domain.NotFound, "drop not found")
	}
	if err != nil {
		return nil, nil, mapError(err, "read sale of drop #%d", dropID)
	}
	buyers := make([]int64, 0, len(judged))
	for _, i := range judged {
		buyers = append(buyers, batch[i].BuyerID)
	}
	var holdings []struct {
		BuyerID int64 `db:"buyer_id"`
		Held    int   `db:"held"`
	}
	err = tx.SelectContext(ctx, &holdings, `SELECT buyer_id, SUM(quantity) AS held FROM orders
		WHERE drop_id = $1 AND buyer_id = ANY($2) AND status IN ('PENDING_PAYMENT', 'CONFIRMED')
		GROUP BY buyer_id`, dropID, pq.Array(buyers))
	if err != nil {
		return nil, nil, mapError(err, "read holdings of %d buyers in drop #%d", len(buyers), dropID)
	}
	held := make(map[int64]int, len(buyers))
	for _, h := range holdings {
		held[h.BuyerID] = h.Held
	}
	return &OrderSale{Drop: row.Drop, PriceCents: row.PriceCents, Currency: row.Currency}, held, nil
}

// lockStock locks the drop's inventory row, the lock every sale of the drop
// queues on, and returns what is available.
func lockStock(ctx context.Context, tx *sqlx.Tx, dropID int64) (int, error) {
	var left int
	err := tx.GetContext(ctx, &left, `SELECT available FROM inventory WHERE drop_id = $1 FOR UPDATE`, dropID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, domain.Errorf(domain.NotFound, "drop not found")
	}
	return left, mapError(err, "lock inventory of drop #%d", dropID)
}

// insertOrders inserts the granted orders of the batch if the drop is LIVE,
// leaving out any whose key a concurrent order took, and returns the
// inserted orders by key.
func insertOrders(ctx context.Context, tx *sqlx.Tx, dropID int64, batch []NewOrder, granted []int,
	sale *OrderSale, now time.Time) (map[orderKey]*domain.Order, error) {
	n := len(granted)
	buyers, quantities, totals := make([]int64, n), make([]int64, n), make([]int64, n)
	keys, hashes, expiries := make([]string, n), make([]string, n), make([]string, n)
	for j, i := range granted {
		in := batch[i]
		buyers[j], quantities[j], totals[j] = in.BuyerID, int64(in.Quantity), sale.PriceCents*int64(in.Quantity)
		keys[j], hashes[j], expiries[j] = in.IdempotencyKey, in.RequestHash, now.Add(in.TTL).Format(time.RFC3339Nano)
	}
	var rows []domain.Order
	err := tx.SelectContext(ctx, &rows, `INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency,
			status, idempotency_key, request_hash, created_at, updated_at, expires_at)
		SELECT $1, o.buyer, o.quantity, o.total, $2, 'PENDING_PAYMENT', o.key, o.hash, $3, $3, o.expires
		FROM unnest($4::bigint[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::timestamptz[])
			WITH ORDINALITY AS o(buyer, quantity, total, key, hash, expires, n)
		WHERE EXISTS (SELECT 1 FROM drops WHERE id = $1 AND status = 'LIVE')
		ORDER BY o.n
		ON CONFLICT ON CONSTRAINT orders_buyer_idempotency_key DO NOTHING
		RETURNING `+orderColumns,
		dropID, sale.Currency, now, pq.Array(buyers), pq.Array(quantities), pq.Array(totals),
		pq.Array(keys), pq.Array(hashes), pq.Array(expiries))
	if err != nil {
		return nil, mapError(err, "insert %d orders in drop #%d", n, dropID)
	}
	return byKey(rows), nil
}

// dropIsLive reads whether the drop is LIVE now.
func dropIsLive(ctx context.Context, tx *sqlx.Tx, dropID int64) (bool, error) {
	var live bool
	err := tx.GetContext(ctx, &live, `SELECT status = 'LIVE' FROM drops WHERE id = $1`, dropID)
	return live, mapError(err, "read status of drop #%d", dropID)
}

// recordSales takes the units of the placed orders from available to
// reserved, writes their events, the stock events and their audit rows, and
// fills in their results. It returns the granted orders that were not
// inserted: a concurrent order took their key.
func (db *DB) recordSales(ctx context.Context, tx *sqlx.Tx, dropID int64, batch []NewOrder, granted []int,
	placed map[orderKey]*domain.Order, res []PlaceResult, now time.Time) (raced []int, err error) {
	q := 0
	for _, o := range placed {
		q += o.Quantity
	}
	if q == 0 {
		return granted, nil
	}
	m := take(q)
	d, after, ok, err := moveStock(ctx, tx, dropID, m, noStockCap)
	if err != nil {
		return nil, err
	}
	if !ok { // the lock is held and the units were counted under it: a broken invariant
		return nil, fmt.Errorf("store: take %d units of drop #%d: not there under the lock", q, dropID)
	}
	var (
		evs    []domain.Event
		audits []Audit
	)
	for _, i := range granted {
		in := batch[i]
		o, ok := placed[orderKey{in.BuyerID, in.IdempotencyKey}]
		if !ok {
			raced = append(raced, i)
			continue
		}
		ev, err := orderEvent(domain.EventOrderPlaced, o, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev...)
		audits = append(audits, Audit{Actor: "user:" + strconv.FormatInt(in.BuyerID, 10), Action: "order.place",
			Entity: "order", EntityID: o.ID, Data: o, RequestID: in.RequestID})
		res[i].Placed = &Placed{Order: o, Drop: d, Stock: after}
	}
	if err := db.writeStockEvents(ctx, tx, evs, d, m, after, now); err != nil {
		return nil, err
	}
	return raced, writeAudits(ctx, tx, audits)
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

// HeldKey is an idempotency key that holds an order, with the order's place
// in its drop's keyset (created_at, id).
type HeldKey struct {
	BuyerID   int64     `db:"buyer_id"`
	Key       string    `db:"idempotency_key"`
	CreatedAt time.Time `db:"created_at"`
	OrderID   int64     `db:"id"`
}

// HeldKeys returns up to limit keys of the drop's orders, whatever their
// status, in keyset order after the key after (nil: from the first).
func (db *DB) HeldKeys(ctx context.Context, dropID int64, after *HeldKey, limit int) ([]HeldKey, error) {
	var at time.Time
	var id int64
	if after != nil {
		at, id = after.CreatedAt, after.OrderID
	}
	var out []HeldKey
	err := db.SelectContext(ctx, &out, `SELECT buyer_id, idempotency_key, created_at, id FROM orders
		WHERE drop_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`, dropID, at, id, limit)
	return out, mapError(err, "read idempotency keys of drop #%d", dropID)
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

// OrderWithSeller is an order with the user id of the creator selling it:
// with its buyer, the two people who may see it.
type OrderWithSeller struct {
	domain.Order
	SellerUserID int64 `db:"seller_user_id"`
}

// OrderParties returns the order and the user id of the creator selling it.
// NOT_FOUND when there is no such order.
func (db *DB) OrderParties(ctx context.Context, orderID int64) (*domain.Order, int64, error) {
	found, err := db.OrdersWithSellers(ctx, []int64{orderID})
	if err != nil {
		return nil, 0, err
	}
	if len(found) == 0 {
		return nil, 0, domain.Errorf(domain.NotFound, "order not found")
	}
	return &found[0].Order, found[0].SellerUserID, nil
}

// OrdersWithSellers returns the orders with the given ids and their sellers,
// in no particular order; ids that match nothing are left out.
func (db *DB) OrdersWithSellers(ctx context.Context, ids []int64) ([]OrderWithSeller, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []OrderWithSeller
	err := db.SelectContext(ctx, &out, `SELECT o.id, o.drop_id, o.buyer_id, o.quantity, o.total_cents, o.currency,
			o.status, o.idempotency_key, o.request_hash, o.created_at, o.updated_at, o.expires_at,
			c.user_id AS seller_user_id
		FROM orders o JOIN drops d ON d.id = o.drop_id JOIN creators c ON c.id = d.creator_id
		WHERE o.id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d orders with their sellers", len(ids))
}

// OrdersOfBuyer returns a page of the buyer's orders, newest first.
func (db *DB) OrdersOfBuyer(ctx context.Context, buyerID int64, p PageArgs) (Page[domain.Order], error) {
	pages, err := db.OrdersOfBuyers(ctx, []int64{buyerID}, p)
	return pages[buyerID], err
}

// ordersNewestFirst is the order of a buyer's orders.
var ordersNewestFirst = keyset{At: "created_at", ID: "id", Desc: true}

// OrdersOfBuyers returns the page p of each buyer's orders, newest first, in
// one statement. Callers make sure the viewer may see them.
func (db *DB) OrdersOfBuyers(ctx context.Context, buyerIDs []int64, p PageArgs) (map[int64]Page[domain.Order], error) {
	body, args := ordersNewestFirst.lateral(`SELECT `+orderColumns+` FROM orders WHERE buyer_id = parent.id`, p, 2)
	return pagesOf(ctx, db, buyerIDs, body, args, ordersNewestFirst, p,
		func(o domain.Order) int64 { return o.BuyerID },
		func(o domain.Order) Cursor { return Cursor{At: o.CreatedAt, ID: o.ID} }, "list orders of buyers")
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
	audits := make([]Audit, len(orders))
	for i := range orders {
		audits[i] = auditBy(ctx, actorID, action, "order", orders[i].ID, orders[i])
	}
	if err := writeAudits(ctx, tx, audits); err != nil {
		return nil, err
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
