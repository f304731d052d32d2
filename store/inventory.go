package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

const stockColumns = `drop_id, total, available, reserved, sold, version`

// StocksByDropIDs returns the inventory of the given drops, in no particular
// order; ids that match nothing are left out.
func (db *DB) StocksByDropIDs(ctx context.Context, ids []int64) ([]domain.Stock, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Stock
	err := db.SelectContext(ctx, &out, `SELECT `+stockColumns+` FROM inventory WHERE drop_id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read stock of %d drops", len(ids))
}

// stockMove is a change of one drop's inventory: how many units each column
// gains (negative: loses). Every move keeps available+reserved+sold = total.
type stockMove struct {
	Total, Available, Reserved, Sold int
}

// The moves of the selling rules.
func take(q int) stockMove    { return stockMove{Available: -q, Reserved: q} } // an order reserves
func release(q int) stockMove { return stockMove{Available: q, Reserved: -q} } // an unpaid order gives back
func sell(q int) stockMove    { return stockMove{Reserved: -q, Sold: q} }      // a payment confirms
func adjust(d int) stockMove  { return stockMove{Total: d, Available: d} }     // restock or shrink

// stockRow is an inventory row read with its drop in one statement; both
// rows have a version, so the drop's is read as drop_version.
type stockRow struct {
	domain.Stock
	domain.Drop
	DropVersion int64 `db:"drop_version"`
}

func (r stockRow) state() domain.DropState {
	d := r.Drop
	d.Version = r.DropVersion
	return domain.DropState{Drop: d, Stock: r.Stock}
}

// moveStock applies m to the drop's inventory if what remains available stays
// at or above zero and the total at or below maxTotal, and returns the drop
// and the stock after the move; ok is false when nothing matched (no such
// drop, or not enough available). The row lock it takes is the one every sale
// of the drop queues on, so callers do as little as possible after it.
func moveStock(ctx context.Context, tx *sqlx.Tx, dropID int64, m stockMove, maxTotal int) (*domain.Drop, domain.Stock, bool, error) {
	var row stockRow
	err := tx.GetContext(ctx, &row, `UPDATE inventory i SET
			total = i.total + $2, available = i.available + $3, reserved = i.reserved + $4, sold = i.sold + $5,
			version = i.version + 1
		FROM drops d
		WHERE i.drop_id = $1 AND d.id = i.drop_id AND i.available + $3 >= 0 AND i.total + $2 <= $6
		RETURNING i.drop_id, i.total, i.available, i.reserved, i.sold, i.version, d.id, d.product_id, d.creator_id, d.title,
			d.status, d.starts_at, d.ends_at, d.per_user_limit, d.created_at, d.updated_at, d.version AS drop_version`,
		dropID, m.Total, m.Available, m.Reserved, m.Sold, maxTotal)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Stock{}, false, nil
	}
	if err != nil {
		return nil, domain.Stock{}, false, mapError(err, "move stock of drop #%d by %+v", dropID, m)
	}
	st := row.state()
	return &st.Drop, st.Stock, true, nil
}

// noStockCap is the maxTotal of moves that do not grow the total.
const noStockCap = 1 << 30

func stockPayload(d *domain.Drop, s domain.Stock) domain.StockPayload {
	return domain.StockPayload{DropID: d.ID, CreatorID: d.CreatorID, Total: s.Total,
		Available: s.Available, Reserved: s.Reserved, Sold: s.Sold, Version: s.Version, Status: d.Status, DropVersion: d.Version}
}

// stockMoved returns the events of a move m that left the drop d at after, and
// flips d's status with it: a LIVE drop whose last unit went is SOLD_OUT (with
// a SoldOut event); a SOLD_OUT drop that gets stock back while its window is
// open is LIVE again. StockLow is written when available first falls to 10 %
// of the total or below, even straight to zero (a batch of orders may jump
// over the low band), before SoldOut.
func stockMoved(ctx context.Context, tx *sqlx.Tx, d *domain.Drop, m stockMove, after domain.Stock, now time.Time) ([]domain.Event, error) {
	before := domain.Stock{DropID: after.DropID, Total: after.Total - m.Total, Available: after.Available - m.Available}
	// Flip first, so every event carries the status the move left the drop in.
	soldOut := false
	switch {
	case before.Available > 0 && after.Available == 0:
		flipped, err := flipStatus(ctx, tx, d, domain.DropLive, domain.DropSoldOut, now)
		if err != nil {
			return nil, err
		}
		soldOut = flipped
	case before.Available == 0 && after.Available > 0:
		if _, err := flipStatus(ctx, tx, d, domain.DropSoldOut, domain.DropLive, now); err != nil {
			return nil, err
		}
	}
	types := []string{domain.EventStockChanged}
	if !isLow(before) && isLow(after) {
		types = append(types, domain.EventStockLow)
	}
	if soldOut {
		types = append(types, domain.EventSoldOut)
	}
	payload := stockPayload(d, after)
	evs := make([]domain.Event, 0, len(types))
	for _, typ := range types {
		ev, err := NewEvent(typ, dropKey(d.ID), payload, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// writeStockEvents writes evs (the order events of a sale, if any) followed
// by the stock events of the move m that left d at after.
func (db *DB) writeStockEvents(ctx context.Context, tx *sqlx.Tx, evs []domain.Event, d *domain.Drop, m stockMove,
	after domain.Stock, now time.Time) error {
	stockEvs, err := stockMoved(ctx, tx, d, m, after, now)
	if err != nil {
		return err
	}
	return insertOutbox(ctx, tx, db.Topic, append(evs, stockEvs...)...)
}

// isLow reports whether s has 10 % of its total or less available.
func isLow(s domain.Stock) bool { return s.Available*10 <= s.Total }

// flipStatus moves d from one status to another if it is still in from (and,
// going back to LIVE, its window is still open), updating d.
func flipStatus(ctx context.Context, tx *sqlx.Tx, d *domain.Drop, from, to domain.DropStatus, now time.Time) (bool, error) {
	var version int64
	err := tx.QueryRowxContext(ctx, `UPDATE drops SET status = $3, updated_at = $4, version = version + 1
		WHERE id = $1 AND status = $2 AND ($3 <> 'LIVE' OR ends_at > $4) RETURNING version`,
		d.ID, string(from), string(to), now).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, mapError(err, "set drop #%d %s", d.ID, to)
	}
	d.Status, d.UpdatedAt, d.Version = to, now, version
	return true, nil
}

// AdjustStock adds delta units (negative: removes them) to the drop's total
// and available stock. Only a drop that can still sell (SCHEDULED, LIVE,
// SOLD_OUT) is adjusted; units already reserved or sold are never removed;
// the total stays at or below maxTotal. The move, its events (and the status
// flip it causes) and its audit row are one transaction.
func (db *DB) AdjustStock(ctx context.Context, dropID int64, delta, maxTotal int, actorID int64) (*domain.Drop, domain.Stock, error) {
	now := db.now()
	var (
		d     *domain.Drop
		after domain.Stock
	)
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		m := adjust(delta)
		var ok bool
		var err error
		d, after, ok, err = moveStock(ctx, tx, dropID, m, maxTotal)
		if err != nil {
			return err
		}
		if !ok {
			return adjustRefused(ctx, tx, dropID, delta, maxTotal)
		}
		switch d.Status {
		case domain.DropEnded, domain.DropCancelled:
			return domain.Errorf(domain.Conflict, "the drop is %s; its stock can no longer change", d.Status)
		}
		if err := db.writeStockEvents(ctx, tx, nil, d, m, after, now); err != nil {
			return err
		}
		return writeAudit(ctx, tx, auditBy(ctx, actorID, "inventory.adjust", "drop", dropID,
			map[string]any{"delta": delta, "stock": after}))
	})
	if err != nil {
		return nil, domain.Stock{}, err
	}
	return d, after, nil
}

// adjustRefused explains why an adjustment matched no inventory row.
func adjustRefused(ctx context.Context, tx *sqlx.Tx, dropID int64, delta, maxTotal int) error {
	var s domain.Stock
	err := tx.GetContext(ctx, &s, `SELECT `+stockColumns+` FROM inventory WHERE drop_id = $1`, dropID)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.NotFound, "drop not found")
	}
	if err != nil {
		return mapError(err, "read stock of drop #%d", dropID)
	}
	if s.Total+delta > maxTotal {
		return domain.InvalidInput("quantity", "a drop holds at most %d units; it has %d", maxTotal, s.Total)
	}
	return domain.Errorf(domain.Conflict, "only %d units are available to remove", s.Available)
}
