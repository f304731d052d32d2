package orders

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"livedrops/domain"
	"livedrops/store"
)

// Reconciler sets the gate's counters to PostgreSQL's available stock: at
// start, every Interval, and as soon as Redis answers again after an outage
// (orders placed meanwhile never touched the counters).
//
// It races with orders in flight, and that is safe. An order the gate has
// admitted but PostgreSQL not yet committed is counted twice for a moment
// (the counter is set too high): PostgreSQL still refuses what is not there.
// Stock returned between the read and the SET is missed until the next pass
// (the counter is too low by it): buyers may hear SOLD_OUT early for at most
// one Interval, never get more than there is.
type Reconciler struct {
	db   *store.DB
	gate *Gate
	log  *slog.Logger
	// Interval is the pause between passes; keep it well under the counters'
	// lifetime (counterTTL), which each pass renews.
	Interval time.Duration
}

// NewReconciler returns a reconciler of gate with db.
func NewReconciler(db *store.DB, gate *Gate, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{db: db, gate: gate, log: log, Interval: 30 * time.Second}
}

// Run reconciles at once, then every Interval and on Redis's recovery, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if _, err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "orders: reconcile gate counters", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-r.gate.Recovered():
		}
	}
}

// Reconcile sets the counter of every drop that can still sell and returns
// how many it set.
func (r *Reconciler) Reconcile(ctx context.Context) (int, error) {
	if r.gate == nil || r.gate.link == nil {
		return 0, nil
	}
	const batch = 500
	n := 0
	var after int64
	for {
		stocks, err := r.db.GateStocks(ctx, after, batch)
		if err != nil {
			return n, err
		}
		counts := make(map[int64]int, len(stocks))
		for _, s := range stocks {
			counts[s.DropID] = s.Available
			after = s.DropID
			ObserveStock(&domain.Drop{ID: s.DropID, Status: s.Status}, domain.Stock{DropID: s.DropID, Available: s.Available})
		}
		if err := r.gate.LoadMany(ctx, counts); err != nil {
			return n, fmt.Errorf("orders: set %d gate counters: %w", len(counts), err)
		}
		n += len(stocks)
		if len(stocks) < batch {
			return n, nil
		}
	}
}
