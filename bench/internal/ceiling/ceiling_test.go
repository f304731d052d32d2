package ceiling_test

import (
	"context"
	"testing"

	"livedrops/bench/internal/benchtest"
	"livedrops/bench/internal/ceiling"
	"livedrops/bench/internal/ledger"
	"livedrops/bench/internal/measure"
)

// Many connections racing for a small stock sell exactly the stock, answer
// every other attempt SOLD_OUT, and leave a ledger that balances.
func TestRunSellsExactlyTheStock(t *testing.T) {
	url, db := benchtest.Database(t)
	const stock, attempts = 150, 600
	dropID := benchtest.LiveDrop(t, db, "ceiling_creator", stock)
	buyers := benchtest.Buyers(t, db.DB.DB, attempts)

	pool, err := ceiling.Open(context.Background(), url, 16)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	answers, err := pool.Run(context.Background(), ceiling.Config{
		DropID: dropID, Buyers: buyers, Attempts: attempts,
		KeyPrefix: "raw-1-", PriceCents: 1500, Currency: "EUR",
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(answers) != attempts {
		t.Fatalf("got %d answers, want %d", len(answers), attempts)
	}
	r := measure.Tally(answers)
	if r.Accepted != stock || r.SoldOutLatency.Count != attempts-stock || len(r.Failures) != 0 {
		t.Errorf("accepted %d, sold out %d, failures %v; want %d, %d, none",
			r.Accepted, r.SoldOutLatency.Count, r.Failures, stock, attempts-stock)
	}
	if r.AcceptedPerSecond() <= 0 || r.OrderedLatency.P99 <= 0 {
		t.Errorf("no rate or latency measured: %+v", r)
	}
	for _, a := range answers {
		if a.Done.Before(a.Sent) {
			t.Fatalf("answer done before sent: %+v", a)
		}
	}

	l, err := ledger.Read(context.Background(), db.DB.DB, dropID)
	if err != nil {
		t.Fatalf("ledger.Read: %v", err)
	}
	if !l.Balanced() || l.Available != 0 || l.Reserved != stock || l.Orders != stock || l.Oversold() != 0 || l.Duplicates() != 0 {
		t.Errorf("ledger after the run = %+v", l)
	}
	for _, a := range answers {
		if a.Outcome == measure.Ordered && !l.OrderIDs[mustID(t, a.OrderID)] {
			t.Errorf("answered order %s is not in PostgreSQL", a.OrderID)
		}
	}
}

func TestRefusesEmptyConfig(t *testing.T) {
	if _, err := ceiling.Open(context.Background(), "postgres://unused", 0); err == nil {
		t.Error("Open with no connections succeeded")
	}
	url, _ := benchtest.Database(t)
	pool, err := ceiling.Open(context.Background(), url, 2)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	if _, err := pool.Run(context.Background(), ceiling.Config{}); err == nil {
		t.Error("Run with no attempts or buyers succeeded")
	}
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	var id int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("order id %q is not a number", s)
		}
		id = id*10 + int64(c-'0')
	}
	return id
}
