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
// (orders placed meanwhile never touched the counters). A missing counter
// (Redis lost it, or it expired) is restored with every key PostgreSQL holds
// for its drop, at once when an admission finds it missing (Gate.Missing).
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
	// lifetime (Gate.Retention), which each pass renews.
	Interval time.Duration
}

// NewReconciler returns a reconciler of gate with db.
func NewReconciler(db *store.DB, gate *Gate, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{db: db, gate: gate, log: log, Interval: 30 * time.Second}
}

// Run reconciles at once, then every Interval and on Redis's recovery, and
// restores each missing counter it is told of, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	pass, all := true, false
	for {
		if pass {
			if _, err := r.reconcile(ctx, all); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "orders: reconcile gate counters", "err", err)
			}
		}
		pass, all = true, false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-r.gate.Recovered():
			lost, err := r.gate.rememberWaiting(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "orders: remember keys of orders placed without Redis", "err", err)
			}
			all = lost
		case id := <-r.gate.Missing():
			if err := r.restore(ctx, id); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "orders: restore gate counter", "drop", id, "err", err)
			}
			pass = false
		}
	}
}

// Reconcile sets the counter of every drop that can still sell, restoring
// those that are missing, and returns how many it set.
func (r *Reconciler) Reconcile(ctx context.Context) (int, error) {
	return r.reconcile(ctx, false)
}

// reconcile is Reconcile; with all, every drop's known keys are written
// again, not only those of missing counters.
func (r *Reconciler) reconcile(ctx context.Context, all bool) (int, error) {
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
			if all {
				if err := r.rememberKeys(ctx, s.DropID); err != nil {
					return n, err
				}
			}
		}
		missing, err := r.gate.Renew(ctx, counts)
		if err != nil {
			return n, fmt.Errorf("orders: set %d gate counters: %w", len(counts), err)
		}
		for _, id := range missing {
			if err := r.restore(ctx, id); err != nil {
				return n, err
			}
		}
		n += len(stocks)
		if len(stocks) < batch {
			return n, nil
		}
	}
}

// restore gives the gate every key PostgreSQL holds for the drop, then
// creates its counter at what PostgreSQL has available, if the drop can
// still sell and the counter is still missing.
func (r *Reconciler) restore(ctx context.Context, dropID int64) error {
	if err := r.rememberKeys(ctx, dropID); err != nil {
		return err
	}
	s, err := r.db.GateStockOf(ctx, dropID)
	if err != nil || s == nil {
		return err
	}
	created, err := r.gate.Restore(ctx, dropID, s.Available)
	if err != nil {
		return fmt.Errorf("orders: restore gate counter of drop #%d: %w", dropID, err)
	}
	if created {
		gateRestores.Inc()
		r.log.InfoContext(ctx, "orders: gate counter restored from PostgreSQL", "drop", dropID, "available", s.Available)
	}
	return nil
}

// rememberKeys gives the gate every key PostgreSQL holds for the drop, a
// page at a time.
func (r *Reconciler) rememberKeys(ctx context.Context, dropID int64) error {
	const page = 5000
	var after *store.HeldKey
	for {
		keys, err := r.db.HeldKeys(ctx, dropID, after, page)
		if err != nil {
			return err
		}
		if err := r.gate.RememberHeld(ctx, dropID, keys); err != nil {
			return fmt.Errorf("orders: remember %d keys of drop #%d: %w", len(keys), dropID, err)
		}
		if len(keys) < page {
			return nil
		}
		after = &keys[len(keys)-1]
	}
}
