// Package drops runs a drop's life: scheduling, starting, ending, cancelling
// and restocking, by its owner or by the Scheduler when the time comes.
//
// The status machine:
//
//	SCHEDULED → LIVE       start (the owner, or the scheduler at startsAt)
//	LIVE      → SOLD_OUT   automatically, when available stock reaches 0
//	SOLD_OUT  → LIVE       automatically, when stock comes back (a cancel, an
//	                       expiry, a declined payment, a restock) while the
//	                       window is open
//	LIVE, SOLD_OUT → ENDED the owner, or the scheduler at endsAt (also a
//	                       SCHEDULED drop whose whole window passed unstarted)
//	SCHEDULED, LIVE, SOLD_OUT → CANCELLED  the owner
//
// Any other move is a CONFLICT. Each move is a conditional update that writes
// its event and audit row in the same transaction, so it happens once.
package drops

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"livedrops/domain"
	"livedrops/orders"
	"livedrops/store"
)

// Bounds of a drop.
const (
	MaxStock        = 1_000_000
	MaxPerUserLimit = orders.MaxQuantity
	MaxTitleLength  = 200
)

// Service changes drops on behalf of their owners (and of internal callers).
type Service struct {
	db   *store.DB
	gate *orders.Gate
	log  *slog.Logger
}

// New returns the drops service; gate (nil: none) gets each drop's counter
// loaded at start and removed at the end.
func New(db *store.DB, gate *orders.Gate) *Service {
	return &Service{db: db, gate: gate, log: slog.Default()}
}

// ScheduleInput is a drop to schedule. An empty Title takes the product's.
type ScheduleInput struct {
	ProductID    int64
	Title        string
	StartsAt     time.Time
	EndsAt       time.Time
	Stock        int
	PerUserLimit int
}

// Schedule announces a drop of one of the user's products: SCHEDULED, with
// all its stock available, and a DropScheduled event.
func (s *Service) Schedule(ctx context.Context, userID int64, in ScheduleInput) (*domain.Drop, error) {
	in.Title = strings.TrimSpace(in.Title)
	now := s.db.Now()
	switch {
	case utf8.RuneCountInString(in.Title) > MaxTitleLength:
		return nil, domain.InvalidInput("title", "the title must be at most %d characters", MaxTitleLength)
	case in.StartsAt.IsZero():
		return nil, domain.InvalidInput("startsAt", "a start time is required")
	case !in.StartsAt.Before(in.EndsAt):
		return nil, domain.InvalidInput("endsAt", "the drop must end after it starts")
	case !in.EndsAt.After(now):
		return nil, domain.InvalidInput("endsAt", "the end time must be in the future")
	case in.Stock < 1 || in.Stock > MaxStock:
		return nil, domain.InvalidInput("stock", "stock must be between 1 and %d", MaxStock)
	case in.PerUserLimit < 1 || in.PerUserLimit > MaxPerUserLimit:
		return nil, domain.InvalidInput("perUserLimit", "the per-user limit must be between 1 and %d", MaxPerUserLimit)
	}
	ps, err := s.db.ProductSale(ctx, in.ProductID)
	if err != nil {
		return nil, err
	}
	if ps.OwnerUserID != userID {
		return nil, domain.Errorf(domain.Forbidden, "only the product's creator can schedule a drop of it")
	}
	if in.Title == "" {
		in.Title = ps.Title
	}
	d, err := s.db.CreateDrop(ctx, store.NewDrop{
		ProductID: ps.ProductID, CreatorID: ps.CreatorID, Title: in.Title,
		StartsAt: in.StartsAt, EndsAt: in.EndsAt, Stock: in.Stock, PerUserLimit: in.PerUserLimit, ActorID: userID,
	})
	if err != nil {
		return nil, err
	}
	s.loadGate(ctx, d.ID, in.Stock)
	return d, nil
}

// Start puts the user's SCHEDULED drop on sale now.
func (s *Service) Start(ctx context.Context, userID, dropID int64) (*domain.Drop, error) {
	d, err := s.transition(ctx, userID, store.DropTransition{
		DropID: dropID, From: []domain.DropStatus{domain.DropScheduled}, To: domain.DropLive,
		Event: domain.EventDropStarted, Action: "drop.start", Refusal: "only a scheduled drop can start",
	})
	if err != nil {
		return nil, err
	}
	s.started(ctx, []domain.Drop{*d})
	return d, nil
}

// End stops the user's LIVE or SOLD_OUT drop now.
func (s *Service) End(ctx context.Context, userID, dropID int64) (*domain.Drop, error) {
	d, err := s.transition(ctx, userID, store.DropTransition{
		DropID: dropID, From: []domain.DropStatus{domain.DropLive, domain.DropSoldOut}, To: domain.DropEnded,
		Event: domain.EventDropEnded, Action: "drop.end", Refusal: "only a live or sold-out drop can end",
	})
	if err != nil {
		return nil, err
	}
	s.stopped(ctx, d.ID)
	return d, nil
}

// Cancel calls off the user's drop that has not ended.
func (s *Service) Cancel(ctx context.Context, userID, dropID int64) (*domain.Drop, error) {
	d, err := s.transition(ctx, userID, store.DropTransition{
		DropID: dropID, From: []domain.DropStatus{domain.DropScheduled, domain.DropLive, domain.DropSoldOut},
		To: domain.DropCancelled, Event: domain.EventDropCancelled, Action: "drop.cancel",
		Refusal: "only a drop that has not ended can be cancelled",
	})
	if err != nil {
		return nil, err
	}
	s.stopped(ctx, d.ID)
	return d, nil
}

// transition checks that the user owns the drop and applies t.
func (s *Service) transition(ctx context.Context, userID int64, t store.DropTransition) (*domain.Drop, error) {
	if err := s.checkOwner(ctx, userID, t.DropID); err != nil {
		return nil, err
	}
	t.ActorID = userID
	return s.db.TransitionDrop(ctx, t)
}

// checkOwner returns NOT_FOUND or FORBIDDEN unless the user created the drop.
// A drop never changes hands, so checking before the change is enough.
func (s *Service) checkOwner(ctx context.Context, userID, dropID int64) error {
	_, owner, err := s.db.DropOwner(ctx, dropID)
	if err != nil {
		return err
	}
	if owner != userID {
		return domain.Errorf(domain.Forbidden, "only the drop's creator can change it")
	}
	return nil
}

// Restock adds quantity units to the user's drop; a SOLD_OUT drop whose
// window is open is LIVE again.
func (s *Service) Restock(ctx context.Context, userID, dropID int64, quantity int) (*domain.Drop, error) {
	if quantity < 1 || quantity > MaxStock {
		return nil, domain.InvalidInput("quantity", "quantity must be between 1 and %d", MaxStock)
	}
	if err := s.checkOwner(ctx, userID, dropID); err != nil {
		return nil, err
	}
	d, _, err := s.adjust(ctx, userID, dropID, quantity)
	return d, err
}

// Adjust adds delta units to the drop (negative: removes available ones) for
// an internal caller, under the same rules as Restock.
func (s *Service) Adjust(ctx context.Context, dropID int64, delta int) (*domain.Drop, domain.Stock, error) {
	if delta == 0 || delta > MaxStock || delta < -MaxStock {
		return nil, domain.Stock{}, domain.InvalidInput("delta", "delta must be non-zero and at most %d either way", MaxStock)
	}
	return s.adjust(ctx, 0, dropID, delta)
}

func (s *Service) adjust(ctx context.Context, actorID, dropID int64, delta int) (*domain.Drop, domain.Stock, error) {
	d, stock, err := s.db.AdjustStock(ctx, dropID, delta, MaxStock, actorID)
	if err != nil {
		return nil, domain.Stock{}, err
	}
	s.gate.Release(ctx, dropID, delta)
	orders.ObserveStock(d, stock)
	return d, stock, nil
}

// started loads the gate counters of drops that just went on sale.
func (s *Service) started(ctx context.Context, ds []domain.Drop) {
	ids := make([]int64, len(ds))
	status := make(map[int64]*domain.Drop, len(ds))
	for i := range ds {
		ids[i] = ds[i].ID
		status[ds[i].ID] = &ds[i]
	}
	stocks, err := s.db.StocksByDropIDs(ctx, ids)
	if err != nil {
		s.log.WarnContext(ctx, "drops: read stock of started drops; the reconciler will load their counters", "err", err)
		return
	}
	counts := make(map[int64]int, len(stocks))
	for _, st := range stocks {
		counts[st.DropID] = st.Available
		orders.ObserveStock(status[st.DropID], st)
	}
	if err := s.gate.LoadMany(ctx, counts); err != nil {
		s.log.WarnContext(ctx, "drops: load gate counters; the reconciler will", "drops", len(counts), "err", err)
	}
}

// loadGate sets one drop's counter, leaving a failure to the reconciler.
func (s *Service) loadGate(ctx context.Context, dropID int64, available int) {
	if err := s.gate.Load(ctx, dropID, available); err != nil {
		s.log.WarnContext(ctx, "drops: load gate counter; the reconciler will", "drop", dropID, "err", err)
	}
}

// stopped removes the counter and the stock series of a drop that can no longer sell.
func (s *Service) stopped(ctx context.Context, dropID int64) {
	s.gate.Forget(ctx, dropID)
	orders.ForgetStock(dropID)
}
