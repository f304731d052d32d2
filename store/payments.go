package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const paymentColumns = `id, order_id, provider, provider_ref, status, amount_cents, created_at, updated_at`

// PaymentResult is the provider's word on a payment of an order, from its
// synchronous answer or from a webhook.
type PaymentResult struct {
	OrderID     int64
	Provider    string
	ProviderRef string
	Status      domain.PaymentStatus
	// EventID is the webhook event's id; a repeated id changes nothing. Empty
	// for the provider's synchronous answer.
	EventID string
	// ActorID is the user paying, 0 for the provider's webhook.
	ActorID int64
}

// PaymentApplied is what ApplyPayment did.
type PaymentApplied struct {
	// Duplicate is true when the webhook event was seen before: nothing changed.
	Duplicate bool
	// Order and Payment as they are now (nil when Duplicate).
	Order   *domain.Order
	Payment *domain.Payment
	// Changed is true when this result moved the order (confirmed or cancelled it).
	Changed bool
	// Stock is the drop's inventory after a change; Returned is set when a
	// decline gave the order's stock back.
	Stock    *domain.Stock
	Returned *StockReturn
}

// ApplyPayment records r and applies it to its order in one transaction: a
// success confirms a PENDING_PAYMENT order (reserved → sold, OrderConfirmed),
// a decline cancels it and returns its stock (OrderCancelled). The payment row
// is keyed by the provider's reference and only a PENDING one is updated, so a
// result delivered twice (a retried pay, a webhook after the synchronous
// answer) changes the order once. An order no longer pending is left as it is;
// Changed says so (a success then needs a refund). A pending order past its
// expiry that no sweeper has reached yet is still confirmed: the charge went
// through and its units are still reserved. The amount recorded is the
// order's total: it is what was charged.
func (db *DB) ApplyPayment(ctx context.Context, r PaymentResult) (*PaymentApplied, error) {
	now := db.now()
	var out PaymentApplied
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		out = PaymentApplied{}
		if r.EventID != "" {
			res, err := tx.ExecContext(ctx, `INSERT INTO payment_events (event_id, received_at) VALUES ($1, $2)
				ON CONFLICT (event_id) DO NOTHING`, r.EventID, now)
			if err != nil {
				return mapError(err, "record payment event %q", r.EventID)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return mapError(err, "record payment event %q", r.EventID)
			}
			if n == 0 {
				out.Duplicate = true
				return nil
			}
		}
		var o domain.Order
		err := tx.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE id = $1 FOR UPDATE`, r.OrderID)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.NotFound, "order not found")
		}
		if err != nil {
			return mapError(err, "lock order #%d", r.OrderID)
		}
		var p domain.Payment
		err = tx.GetContext(ctx, &p, `INSERT INTO payments
				(order_id, provider, provider_ref, status, amount_cents, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)
			ON CONFLICT (provider_ref) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
				WHERE payments.status = 'PENDING' AND payments.order_id = EXCLUDED.order_id
			RETURNING `+paymentColumns,
			r.OrderID, r.Provider, r.ProviderRef, string(r.Status), o.TotalCents, now)
		fresh := err == nil
		if errors.Is(err, sql.ErrNoRows) {
			// The reference is known and final already: this result was applied before.
			err = tx.GetContext(ctx, &p, `SELECT `+paymentColumns+` FROM payments WHERE provider_ref = $1`, r.ProviderRef)
		}
		if err != nil {
			return mapError(err, "record payment %q of order #%d", r.ProviderRef, r.OrderID)
		}
		if p.OrderID != r.OrderID {
			return domain.InvalidInput("orderId", "payment %q belongs to another order", r.ProviderRef)
		}
		out.Order, out.Payment = &o, &p
		if fresh {
			if err := writeAudit(ctx, tx, auditBy(ctx, r.ActorID, "payment.record", "payment", p.ID, p)); err != nil {
				return err
			}
		}
		if !fresh || o.Status != domain.OrderPendingPayment {
			return nil
		}
		switch p.Status {
		case domain.PaymentStatusSucceeded:
			return db.confirmOrder(ctx, tx, &o, r.ActorID, &out)
		case domain.PaymentStatusDeclined:
			return db.declineOrder(ctx, tx, &o, r.ActorID, &out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// confirmOrder marks the locked order o paid and sells its reserved units.
func (db *DB) confirmOrder(ctx context.Context, tx *sqlx.Tx, o *domain.Order, actorID int64, out *PaymentApplied) error {
	now := db.now()
	if err := tx.GetContext(ctx, o, `UPDATE orders SET status = 'CONFIRMED', updated_at = $2
		WHERE id = $1 RETURNING `+orderColumns, o.ID, now); err != nil {
		return mapError(err, "confirm order #%d", o.ID)
	}
	m := sell(o.Quantity)
	d, after, ok, err := moveStock(ctx, tx, o.DropID, m, noStockCap)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("store: sell stock of a confirmed order: no inventory row")
	}
	evs, err := orderEvent(domain.EventOrderConfirmed, o, now)
	if err != nil {
		return err
	}
	if err := db.writeStockEvents(ctx, tx, evs, d, m, after, now); err != nil {
		return err
	}
	out.Changed, out.Stock = true, &after
	return writeAudit(ctx, tx, auditBy(ctx, actorID, "order.confirm", "order", o.ID, o))
}

// declineOrder cancels the locked order o after a declined payment and
// returns its stock.
func (db *DB) declineOrder(ctx context.Context, tx *sqlx.Tx, o *domain.Order, actorID int64, out *PaymentApplied) error {
	now := db.now()
	if err := tx.GetContext(ctx, o, `UPDATE orders SET status = 'CANCELLED', updated_at = $2
		WHERE id = $1 RETURNING `+orderColumns, o.ID, now); err != nil {
		return mapError(err, "cancel declined order #%d", o.ID)
	}
	ret, err := db.releaseOrders(ctx, tx, domain.EventOrderCancelled, []domain.Order{*o}, actorID, "order.decline", now)
	if err != nil {
		return err
	}
	out.Changed, out.Stock, out.Returned = true, &ret.Stock, ret
	return nil
}

// PaymentsByOrderIDs returns the latest payment attempt of each of the given
// orders, in no particular order; orders without one are left out.
func (db *DB) PaymentsByOrderIDs(ctx context.Context, orderIDs []int64) ([]domain.Payment, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	var out []domain.Payment
	err := db.SelectContext(ctx, &out, `SELECT DISTINCT ON (order_id) `+paymentColumns+` FROM payments
		WHERE order_id = ANY($1) ORDER BY order_id, id DESC`, pq.Array(orderIDs))
	return out, mapError(err, "read payments of %d orders", len(orderIDs))
}
