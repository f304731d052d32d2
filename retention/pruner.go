// Package retention deletes what has outlived its use: published outbox
// events, consumed-event and payment-event ids past their redelivery window,
// old audit rows and dead letters, each after its own retention.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/store"
)

var prunedRows = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "livedrops_pruned_rows_total",
	Help: "Rows deleted by retention, by table.",
}, []string{"table"})

// Rule keeps a family of rows for Keep; 0 keeps them forever.
type Rule struct {
	Family store.Pruned
	Keep   time.Duration
}

// Pruner deletes rows past their retention every Interval, Batch rows per
// statement, pausing between statements as long as the last one took, so
// it never holds a table or a connection for long and takes at most half of
// one connection's time. One instance prunes at a time (a session advisory
// lock); the others find it taken and skip their turn.
type Pruner struct {
	db    *store.DB
	rules []Rule
	log   *slog.Logger
	// Interval is the pause between passes; Batch the rows per statement.
	Interval time.Duration
	Batch    int
	// MinPause is the least pause between two statements of a pass.
	MinPause time.Duration
}

// NewPruner returns a pruner applying rules to db.
func NewPruner(db *store.DB, rules []Rule, log *slog.Logger) *Pruner {
	if log == nil {
		log = slog.Default()
	}
	return &Pruner{db: db, rules: rules, log: log, Interval: 10 * time.Minute, Batch: 5000, MinPause: 10 * time.Millisecond}
}

// Run prunes at once, then every Interval, until ctx ends.
func (p *Pruner) Run(ctx context.Context) error {
	if p.Interval <= 0 || p.Batch <= 0 {
		return fmt.Errorf("retention: interval and batch must be positive (%v, %d)", p.Interval, p.Batch)
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if pruned, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "retention: prune", "err", err)
		} else if len(pruned) > 0 {
			p.log.InfoContext(ctx, "retention: pruned", "rows", pruned)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Prune runs one pass: for each rule, batch after batch until what is left
// is younger than its retention. It returns the rows deleted by table; nil
// when another instance holds the prune lock.
func (p *Pruner) Prune(ctx context.Context) (map[store.Pruned]int64, error) {
	pruning, err := p.db.StartPruning(ctx)
	if err != nil || pruning == nil {
		return nil, err
	}
	defer func() {
		if err := pruning.Close(); err != nil {
			p.log.Warn("retention: release the prune lock", "err", err)
		}
	}()
	pruned := map[store.Pruned]int64{}
	var errs []error
	for _, r := range p.rules {
		if r.Keep <= 0 {
			continue
		}
		// One cut-off per pass: rows that age meanwhile wait for the next.
		before := pruning.Now().Add(-r.Keep)
		for {
			start := time.Now()
			n, err := pruning.Prune(ctx, r.Family, before, p.Batch)
			if n > 0 {
				pruned[r.Family] += n
				prunedRows.WithLabelValues(string(r.Family)).Add(float64(n))
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			if n < int64(p.Batch) {
				break
			}
			select {
			case <-ctx.Done():
				return pruned, ctx.Err()
			case <-time.After(max(time.Since(start), p.MinPause)):
			}
		}
	}
	return pruned, errors.Join(errs...)
}
