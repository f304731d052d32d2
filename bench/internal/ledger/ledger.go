// Package ledger reads what PostgreSQL holds for a drop after a benchmark
// round and judges it: no unit sold beyond stock, no second order for one
// buyer's key, inventory that balances. It reads the tables directly, so the
// verdict does not depend on the code under test.
package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// Ledger is a drop's inventory row and a digest of its orders.
type Ledger struct {
	DropID                           int64
	Total, Available, Reserved, Sold int
	// Orders and Units count every order of the drop and their quantities.
	Orders, Units int
	// HeldUnits are the units of orders still holding stock (pending or confirmed).
	HeldUnits int
	// DuplicateKeys counts orders beyond the first for one (buyer, key).
	DuplicateKeys int
	// ExtraOrders counts orders beyond the first for one buyer. The
	// benchmark's buyers each use one key per drop, so any is a duplicate.
	ExtraOrders int
	// OrderIDs are every order's id.
	OrderIDs map[int64]bool
}

// Read reads the drop's ledger in one snapshot (REPEATABLE READ), so the
// inventory row and the orders agree in time.
func Read(ctx context.Context, db *sql.DB, dropID int64) (*Ledger, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("ledger: begin snapshot of drop #%d: %w", dropID, err)
	}
	defer tx.Rollback() // read-only: nothing to commit
	l := &Ledger{DropID: dropID, OrderIDs: map[int64]bool{}}
	err = tx.QueryRowContext(ctx, `SELECT total, available, reserved, sold FROM inventory WHERE drop_id = $1`, dropID).
		Scan(&l.Total, &l.Available, &l.Reserved, &l.Sold)
	if err != nil {
		return nil, fmt.Errorf("ledger: read inventory of drop #%d: %w", dropID, err)
	}
	err = tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(sum(quantity), 0),
			COALESCE(sum(quantity) FILTER (WHERE status IN ('PENDING_PAYMENT', 'CONFIRMED')), 0)
		FROM orders WHERE drop_id = $1`, dropID).Scan(&l.Orders, &l.Units, &l.HeldUnits)
	if err != nil {
		return nil, fmt.Errorf("ledger: sum orders of drop #%d: %w", dropID, err)
	}
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(sum(n - 1), 0) FROM (
			SELECT count(*) AS n FROM orders WHERE drop_id = $1 GROUP BY buyer_id, idempotency_key) AS k`, dropID).
		Scan(&l.DuplicateKeys)
	if err != nil {
		return nil, fmt.Errorf("ledger: count duplicate keys in drop #%d: %w", dropID, err)
	}
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(sum(n - 1), 0) FROM (
			SELECT count(*) AS n FROM orders WHERE drop_id = $1 GROUP BY buyer_id) AS b`, dropID).
		Scan(&l.ExtraOrders)
	if err != nil {
		return nil, fmt.Errorf("ledger: count buyers' extra orders in drop #%d: %w", dropID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM orders WHERE drop_id = $1`, dropID)
	if err != nil {
		return nil, fmt.Errorf("ledger: list orders of drop #%d: %w", dropID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("ledger: read order id: %w", err)
		}
		l.OrderIDs[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: list orders of drop #%d: %w", dropID, err)
	}
	return l, nil
}

// Balanced reports whether available + reserved + sold = total with nothing negative.
func (l *Ledger) Balanced() bool {
	return l.Available >= 0 && l.Reserved >= 0 && l.Sold >= 0 && l.Available+l.Reserved+l.Sold == l.Total
}

// Oversold is how many units went beyond the drop's stock: ordered beyond
// total, or held by orders beyond what the inventory row says it gave out.
func (l *Ledger) Oversold() int {
	return max(0, l.Units-l.Total, l.Orders-l.Total, l.HeldUnits-(l.Reserved+l.Sold))
}

// Duplicates is the number of orders that should not exist: a second order
// for one (buyer, key), or for one buyer.
func (l *Ledger) Duplicates() int { return max(l.DuplicateKeys, l.ExtraOrders) }
