package ledger_test

import (
	"context"
	"testing"

	"livedrops/bench/internal/benchtest"
	"livedrops/bench/internal/ledger"
)

// The ledger catches what a broken seller would leave behind: orders beyond
// the units the inventory gave out, and a second order for one buyer.
func TestReadJudgesOrders(t *testing.T) {
	ctx := context.Background()
	_, db := benchtest.Database(t)
	dropID := benchtest.LiveDrop(t, db, "ledger_creator", 3)
	buyers := benchtest.Buyers(t, db.DB.DB, 3)
	sell := func(buyer int64, key string, takeStock bool) {
		t.Helper()
		if takeStock {
			if _, err := db.ExecContext(ctx, `UPDATE inventory SET available = available - 1, reserved = reserved + 1
				WHERE drop_id = $1`, dropID); err != nil {
				t.Fatalf("take stock: %v", err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency,
			idempotency_key, request_hash, expires_at) VALUES ($1, $2, 1, 1500, 'EUR', $3, $3, now())`,
			dropID, buyer, key); err != nil {
			t.Fatalf("insert order: %v", err)
		}
	}
	read := func() *ledger.Ledger {
		t.Helper()
		l, err := ledger.Read(ctx, db.DB.DB, dropID)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return l
	}

	sell(buyers[0], "k0", true)
	sell(buyers[1], "k1", true)
	l := read()
	if !l.Balanced() || l.Oversold() != 0 || l.Duplicates() != 0 || l.Orders != 2 || l.Available != 1 || len(l.OrderIDs) != 2 {
		t.Fatalf("clean ledger judged %+v", l)
	}

	// A second order for buyer 0 under another key, stock taken: a duplicate.
	sell(buyers[0], "k0-again", true)
	if l := read(); l.Duplicates() != 1 || l.ExtraOrders != 1 || l.DuplicateKeys != 0 || l.Oversold() != 0 {
		t.Errorf("second order of one buyer judged %+v", l)
	}

	// An order that took no stock: more held than the inventory gave out.
	sell(buyers[2], "k2", false)
	if l := read(); l.Oversold() != 1 || !l.Balanced() {
		t.Errorf("order without stock judged oversold=%d, %+v", l.Oversold(), l)
	}
	// And one more: beyond the total itself.
	sell(buyers[1], "k1-again", false)
	if l := read(); l.Oversold() != 2 || l.Units != 5 || l.Total != 3 {
		t.Errorf("orders beyond total judged oversold=%d, %+v", l.Oversold(), l)
	}
}

func TestBalanced(t *testing.T) {
	tests := []struct {
		l    ledger.Ledger
		want bool
	}{
		{ledger.Ledger{Total: 10, Available: 4, Reserved: 3, Sold: 3}, true},
		{ledger.Ledger{Total: 10, Available: 5, Reserved: 3, Sold: 3}, false},
		{ledger.Ledger{Total: 0, Available: -1, Reserved: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.l.Balanced(); got != tt.want {
			t.Errorf("%+v Balanced() = %v, want %v", tt.l, got, tt.want)
		}
	}
}
