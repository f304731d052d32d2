package drops

import (
	"context"
	"log/slog"
	"time"

	"livedrops/store"
)

// Scheduler starts drops whose start time has come and ends those whose end
// time has passed, by the store's clock. Every instance may run one: drops
// are claimed with FOR UPDATE SKIP LOCKED and moved by conditional updates,
// so each start and end, and its event, happens once.
type Scheduler struct {
	db  *store.DB
	svc *Service
	log *slog.Logger
	// Interval is the pause between ticks; Batch the drops per transaction.
	Interval time.Duration
	Batch    int
}

// NewScheduler returns a scheduler moving drops of db, loading and removing
// gate counters through svc.
func NewScheduler(db *store.DB, svc *Service, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{db: db, svc: svc, log: log, Interval: time.Second, Batch: 100}
}

// Run ticks every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		started, ended, err := s.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "drops: scheduler tick", "err", err)
		}
		if started+ended > 0 {
			s.log.InfoContext(ctx, "drops: scheduler moved drops", "started", started, "ended", ended)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Tick starts every drop due to start and ends every drop due to end, and
// returns how many of each this scheduler moved.
func (s *Scheduler) Tick(ctx context.Context) (started, ended int, err error) {
	for {
		ds, err := s.db.StartDueDrops(ctx, s.Batch)
		if err != nil {
			return started, ended, err
		}
		if len(ds) > 0 {
			s.svc.started(ctx, ds)
		}
		started += len(ds)
		if len(ds) < s.Batch {
			break
		}
	}
	for {
		ds, err := s.db.EndDueDrops(ctx, s.Batch)
		if err != nil {
			return started, ended, err
		}
		for _, d := range ds {
			s.svc.stopped(ctx, d.ID)
		}
		ended += len(ds)
		if len(ds) < s.Batch {
			return started, ended, nil
		}
	}
}
