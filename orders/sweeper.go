package orders

import (
	"context"
	"log/slog"
	"time"

	"livedrops/store"
)

// Sweeper expires unpaid reservations once their time is up and returns
// their stock. Any number of instances may sweep at once: each batch claims
// its orders with FOR UPDATE SKIP LOCKED and expires them conditionally, so an
// order's stock comes back once.
type Sweeper struct {
	db   *store.DB
	gate *Gate
	log  *slog.Logger
	// Interval is the pause between sweeps; Batch the orders per transaction.
	Interval time.Duration
	Batch    int
}

// NewSweeper returns a sweeper returning stock through svc's gate.
func NewSweeper(db *store.DB, svc *Service, log *slog.Logger) *Sweeper {
	if log == nil {
		log = slog.Default()
	}
	return &Sweeper{db: db, gate: svc.gate, log: log, Interval: time.Second, Batch: 200}
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "orders: sweep expired reservations", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "orders: expired reservations", "orders", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sweep expires every order due now (by the store's clock), batch by batch,
// and returns how many it expired.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		expired, returns, err := s.db.ExpireOrders(ctx, s.Batch)
		if err != nil {
			return total, err
		}
		for i := range returns {
			r := &returns[i]
			s.gate.Release(ctx, r.Drop.ID, r.Quantity)
			ObserveStock(&r.Drop, r.Stock)
		}
		total += len(expired)
		if len(expired) < s.Batch {
			return total, nil
		}
	}
}
