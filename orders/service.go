// Package orders holds the rules of selling: who may order what and when,
// the admission gate in front of PostgreSQL, payment, cancellation, the
// expiry of unpaid reservations and the reconciliation of the gate with the
// database. Read this package to know why a buyer got SOLD_OUT.
package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/batch"
	"livedrops/payments"
	"livedrops/store"
)

// Bounds of an order's input, checked before anything else is asked.
const (
	// MaxQuantity is the largest per-user limit a drop may have, so no order
	// can ask for more.
	MaxQuantity = 1000
	// MaxKeyLength bounds an idempotency key.
	MaxKeyLength = 100
)

// Service places, pays and cancels orders.
type Service struct {
	db       *store.DB
	batches  *batch.Runner[int64, pending, store.PlaceResult]
	gate     *Gate
	provider payments.Provider
	limit    *rateLimit
	ttl      time.Duration
	log      *slog.Logger
}

// New returns the orders service. gate may be nil (PostgreSQL alone); rdb
// (nil: no rate limit) holds the per-buyer rate limit of
// cfg.OrderRatePerMinute; reservations last cfg.ReservationTTL.
func New(db *store.DB, gate *Gate, provider payments.Provider, rdb redis.UniversalClient, cfg *config.Config) *Service {
	l := newLinkUnlessShared(gate, rdb)
	return &Service{
		db:       db,
		batches:  newBatcher(db),
		gate:     gate,
		provider: provider,
		limit:    newRateLimit(l, cfg.RedisPrefix, cfg.OrderRatePerMinute),
		ttl:      cfg.ReservationTTL,
		log:      slog.Default(),
	}
}

// newLinkUnlessShared returns the gate's link, so the gate and the rate limit
// share one fast-failing client and one cooldown, or a link of rdb's own.
func newLinkUnlessShared(gate *Gate, rdb redis.UniversalClient) *link {
	if gate != nil && gate.link != nil {
		return gate.link
	}
	return newLink(rdb)
}

// Gate returns the service's admission gate (nil when there is none).
func (s *Service) Gate() *Gate { return s.gate }

// PlaceOrder reserves quantity units of the drop for the buyer. The steps, in
// order, and what each may answer:
//
//  1. input: quantity 1..MaxQuantity, key 1..MaxKeyLength printable ASCII (BAD_USER_INPUT);
//  2. the gate: SOLD_OUT without touching PostgreSQL when its counter is short
//     and it does not know the key (a key it knows goes on to PostgreSQL,
//     and the gate knows every key PostgreSQL holds while it has a counter);
//  3. the buyer's rate limit (RATE_LIMITED, with retryAfter seconds), which
//     gives the gate back what it took;
//  4. one PostgreSQL transaction (store.PlaceOrders), shared with the drop's
//     other orders of the moment (batch.go): the key's original order if
//     the key was used (IDEMPOTENCY_KEY_REUSED if for another request),
//     NOT_FOUND, DROP_NOT_LIVE (before start, after end, not LIVE),
//     SOLD_OUT, BAD_USER_INPUT (more than the drop's per-user limit at once),
//     LIMIT_EXCEEDED (more than it with what the buyer holds);
//  5. whatever the gate took for an order that was not placed goes back; a
//     key the gate could not be told of (Redis unreachable) is told after.
func (s *Service) PlaceOrder(ctx context.Context, buyerID, dropID int64, quantity int, idempotencyKey string) (o *domain.Order, err error) {
	defer func() { countOutcome(err) }()
	if err := checkPlace(quantity, idempotencyKey); err != nil {
		return nil, err
	}
	hash := requestHash(dropID, quantity)
	admission := s.gate.Admit(ctx, dropID, buyerID, idempotencyKey, quantity)
	if admission == SoldOut {
		return nil, domain.Errorf(domain.SoldOut, "sold out")
	}
	// The limit guards what costs: an order going on to PostgreSQL. A SOLD_OUT
	// from the gate costs one Redis call, as asking the limit would.
	if err := s.limit.allow(ctx, buyerID); err != nil {
		s.undoAdmission(ctx, admission, dropID, buyerID, idempotencyKey, quantity)
		return nil, err
	}

	now := s.db.Now()
	res, err := s.batches.Do(dropID, pending{
		in: store.NewOrder{
			DropID: dropID, BuyerID: buyerID, Quantity: quantity,
			IdempotencyKey: idempotencyKey, RequestHash: hash, TTL: s.ttl, RequestID: domain.RequestID(ctx),
		},
		admit: func(sale store.OrderSale) error { return judge(sale, quantity, now) },
	})
	available := -1 // what PostgreSQL had left when the order was judged
	if err == nil {
		err, available = res.Err, res.Available
	}
	placed := res.Placed

	unsure := admission == Unsure
	switch {
	case domain.ErrorCode(err) == domain.SoldOut && available >= 0 && (admission == Admitted || unsure):
		s.gate.SoldOut(ctx, dropID, buyerID, idempotencyKey, quantity, available)
	case err != nil:
		s.undoAdmission(ctx, admission, dropID, buyerID, idempotencyKey, quantity)
	case err == nil && placed.Existing && (unsure || (admission == Admitted && placed.Order.RequestHash != hash)):
		s.gate.Release(ctx, dropID, quantity) // the key names another request: nothing of this drop was sold
	}
	// An admitted request that finds its own key's order for this very request
	// keeps the units it took: that order was placed by a twin the gate let
	// through as Seen, which took none. The gate counts each key once,
	// whoever of the twins places its order.
	if err != nil {
		return nil, err
	}
	if admission == Blind || unsure {
		s.gate.Remember(ctx, dropID, buyerID, idempotencyKey) // so the gate never answers this key SOLD_OUT
	}
	if placed.Existing {
		if placed.Order.RequestHash != hash {
			return nil, domain.Errorf(domain.IdempotencyKeyReused,
				"this idempotency key was already used for a different order; use a new key")
		}
		return placed.Order, nil
	}
	ObserveStock(placed.Drop, placed.Stock)
	return placed.Order, nil
}

// undoAdmission gives the gate back what it did for an order that was not
// placed: the units it may have taken, and the buyer's key, so a retry is
// judged afresh. A Seen key belongs to an earlier request and stays.
func (s *Service) undoAdmission(ctx context.Context, a Admission, dropID, buyerID int64, key string, quantity int) {
	switch a {
	case Admitted, Unsure:
		s.gate.Refund(ctx, dropID, buyerID, key, quantity)
	case Bypass:
		s.gate.Refund(ctx, dropID, buyerID, key, 0) // the script remembered the key, and took nothing
	}
	// Blind: Redis was not asked, so there is nothing to undo.
}

// judge is the rule of admission, applied inside the order's transaction to
// the drop as PostgreSQL has it.
func judge(sale store.OrderSale, quantity int, now time.Time) error {
	d := sale.Drop
	switch {
	case d.Status != domain.DropLive && d.Status != domain.DropSoldOut:
		return domain.Errorf(domain.DropNotLive, "the drop is %s, not live", d.Status)
	case now.Before(d.StartsAt):
		return domain.Errorf(domain.DropNotLive, "the drop has not started")
	case !now.Before(d.EndsAt):
		return domain.Errorf(domain.DropNotLive, "the drop has ended")
	case d.Status == domain.DropSoldOut:
		return domain.Errorf(domain.SoldOut, "sold out")
	case quantity > d.PerUserLimit:
		return domain.InvalidInput("quantity", "one buyer may order at most %d units of this drop", d.PerUserLimit)
	case sale.Held+quantity > d.PerUserLimit:
		return domain.Errorf(domain.LimitExceeded,
			"one buyer may hold at most %d units of this drop and you hold %d", d.PerUserLimit, sale.Held)
	}
	return nil
}

// checkPlace validates placeOrder's input.
func checkPlace(quantity int, key string) error {
	if quantity < 1 || quantity > MaxQuantity {
		return domain.InvalidInput("quantity", "quantity must be between 1 and %d", MaxQuantity)
	}
	if len(key) < 1 || len(key) > MaxKeyLength {
		return domain.InvalidInput("idempotencyKey", "the idempotency key must be 1 to %d characters", MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return domain.InvalidInput("idempotencyKey", "the idempotency key must be printable ASCII")
		}
	}
	return nil
}

// requestHash identifies what an order asked for, so a key reused for
// another request is told apart from a retry.
func requestHash(dropID int64, quantity int) string {
	h := sha256.Sum256([]byte(strconv.FormatInt(dropID, 10) + "|" + strconv.Itoa(quantity)))
	return hex.EncodeToString(h[:])
}

// PayOrder charges the buyer's pending order through the provider and applies
// the answer: paid → CONFIRMED; declined → the order is cancelled, its stock
// returns, and the answer is PAYMENT_DECLINED. Paying a CONFIRMED order again
// returns it unchanged.
func (s *Service) PayOrder(ctx context.Context, buyerID, orderID int64, method string) (*domain.Order, error) {
	o, err := s.buyersOrder(ctx, buyerID, orderID)
	if err != nil {
		return nil, err
	}
	switch o.Status {
	case domain.OrderConfirmed:
		return o, nil
	case domain.OrderPendingPayment:
	default:
		return nil, domain.Errorf(domain.Conflict, "this order is %s; only an order awaiting payment can be paid", o.Status)
	}
	if !s.db.Now().Before(o.ExpiresAt) {
		return nil, domain.Errorf(domain.Conflict, "the reservation expired; place a new order")
	}
	if method == "" || len(method) > 100 {
		return nil, domain.InvalidInput("paymentMethod", "a payment method is required")
	}
	// An ended drop's reservations may still be paid; a cancelled drop's may not.
	ds, err := s.db.DropsByIDs(ctx, []int64{o.DropID})
	if err != nil {
		return nil, err
	}
	if len(ds) == 1 && ds[0].Status == domain.DropCancelled {
		return nil, domain.Errorf(domain.Conflict, "the drop was cancelled; this order can no longer be paid")
	}
	ref, status, err := s.provider.Charge(ctx, o.ID, o.TotalCents, o.Currency, method)
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("orders: charge order #%d: %w", o.ID, err)
	}
	applied, err := s.db.ApplyPayment(ctx, store.PaymentResult{
		OrderID: o.ID, Provider: s.provider.Name(), ProviderRef: ref, Status: status, ActorID: buyerID,
	})
	if err != nil {
		return nil, err
	}
	s.afterPayment(ctx, applied)
	switch {
	case applied.Payment.Status == domain.PaymentStatusDeclined:
		return nil, domain.Errorf(domain.PaymentDeclined, "the payment was declined; the order is cancelled")
	case applied.Order.Status == domain.OrderConfirmed:
		return applied.Order, nil
	case applied.Order.Status == domain.OrderPendingPayment && applied.Payment.Status == domain.PaymentStatusPending:
		return applied.Order, nil // the provider answers later, by webhook
	}
	return nil, domain.Errorf(domain.Conflict, "this order is %s; it can no longer be paid", applied.Order.Status)
}

// ApplyWebhook applies a provider's event (payments.Applier): a repeated event
// id changes nothing and reports duplicate.
func (s *Service) ApplyWebhook(ctx context.Context, ev payments.Event) (duplicate bool, err error) {
	status := domain.PaymentStatusDeclined
	if ev.Type == payments.EventSucceeded {
		status = domain.PaymentStatusSucceeded
	}
	name := "unknown"
	if s.provider != nil {
		name = s.provider.Name()
	}
	applied, err := s.db.ApplyPayment(ctx, store.PaymentResult{
		OrderID: ev.OrderID, Provider: name, ProviderRef: ev.ProviderRef, Status: status, EventID: ev.ID,
	})
	if err != nil {
		return false, err
	}
	if applied.Duplicate {
		return true, nil
	}
	s.afterPayment(ctx, applied)
	return false, nil
}

// afterPayment follows an applied payment outside its transaction: returned
// stock goes back to the gate; a charge for an order that stopped waiting is
// logged for a refund.
func (s *Service) afterPayment(ctx context.Context, a *store.PaymentApplied) {
	if a.Returned != nil {
		s.gate.Release(ctx, a.Returned.Drop.ID, a.Returned.Quantity)
		ObserveStock(&a.Returned.Drop, a.Returned.Stock)
	}
	if !a.Changed && a.Payment.Status == domain.PaymentStatusSucceeded && a.Order.Status != domain.OrderConfirmed {
		s.log.WarnContext(ctx, "orders: payment succeeded for an order no longer awaiting it; refund due",
			"order", a.Order.ID, "status", a.Order.Status, "ref", a.Payment.ProviderRef)
	}
}

// CancelOrder cancels the buyer's pending order and returns its stock, once.
// Cancelling a cancelled order returns it unchanged; any other status is a
// CONFLICT.
func (s *Service) CancelOrder(ctx context.Context, buyerID, orderID int64) (*domain.Order, error) {
	if _, err := s.buyersOrder(ctx, buyerID, orderID); err != nil {
		return nil, err
	}
	o, ret, err := s.db.CancelOrder(ctx, orderID, buyerID)
	if err != nil {
		return nil, err
	}
	if ret != nil {
		s.gate.Release(ctx, ret.Drop.ID, ret.Quantity)
		ObserveStock(&ret.Drop, ret.Stock)
	}
	return o, nil
}

// buyersOrder returns the order if buyerID placed it (NOT_FOUND, FORBIDDEN otherwise).
func (s *Service) buyersOrder(ctx context.Context, buyerID, orderID int64) (*domain.Order, error) {
	os, err := s.db.OrdersByIDs(ctx, []int64{orderID})
	if err != nil {
		return nil, err
	}
	if len(os) == 0 {
		return nil, domain.Errorf(domain.NotFound, "order not found")
	}
	if os[0].BuyerID != buyerID {
		return nil, domain.Errorf(domain.Forbidden, "only the buyer can change this order")
	}
	return &os[0], nil
}

// OrderFor returns the order if the viewer may see it: its buyer, or the
// creator selling the drop (FORBIDDEN for anyone else).
func (s *Service) OrderFor(ctx context.Context, viewerUserID, orderID int64) (*domain.Order, error) {
	o, sellerUserID, err := s.db.OrderParties(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if !MaySee(viewerUserID, o.BuyerID, sellerUserID) {
		return nil, domain.Errorf(domain.Forbidden, "only the buyer and the seller can see this order")
	}
	return o, nil
}

// MaySee is who may see an order: its buyer and the creator selling it
// (sellerUserID is the creator's user); nobody signed out (viewerUserID 0).
func MaySee(viewerUserID, buyerID, sellerUserID int64) bool {
	return viewerUserID != 0 && (viewerUserID == buyerID || viewerUserID == sellerUserID)
}

// OrdersOfBuyer returns a page of the buyer's orders, newest first. The caller
// makes sure the viewer is that buyer.
func (s *Service) OrdersOfBuyer(ctx context.Context, buyerID int64, p store.PageArgs) (store.Page[domain.Order], error) {
	return s.db.OrdersOfBuyer(ctx, buyerID, p)
}

// OrdersByIDs returns the orders with the given ids (for loaders; the caller
// filters what the viewer may see).
func (s *Service) OrdersByIDs(ctx context.Context, ids []int64) ([]domain.Order, error) {
	return s.db.OrdersByIDs(ctx, ids)
}

// PaymentsByOrderIDs returns the latest payment attempt of each order.
func (s *Service) PaymentsByOrderIDs(ctx context.Context, orderIDs []int64) ([]domain.Payment, error) {
	return s.db.PaymentsByOrderIDs(ctx, orderIDs)
}
