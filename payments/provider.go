// Package payments talks to the payment provider: the Provider interface the
// orders service charges through, a simulated provider for development and
// tests, and the signed webhook through which a provider reports results.
package payments

import (
	"context"
	"strconv"

	"livedrops/domain"
)

// Provider charges orders. Charge must be idempotent per order, as real
// providers are with an idempotency key: charging an order again answers with
// the first charge's reference, never charges twice.
type Provider interface {
	// Name is stored with each payment.
	Name() string
	// Charge asks for amountCents of currency for the order with the buyer's
	// payment method. A method the provider does not know is BAD_USER_INPUT;
	// a status of PENDING means the result will come by webhook.
	Charge(ctx context.Context, orderID int64, amountCents int64, currency, method string) (ref string, status domain.PaymentStatus, err error)
}

// Test payment methods the simulated provider knows.
const (
	MethodSucceeds = "pm_card_visa"
	MethodDeclines = "pm_card_declined"
)

// Simulated is a provider that needs no network: pm_card_visa succeeds,
// pm_card_declined is declined, any other method is refused. Its reference
// is derived from the order, so charging an order twice is one charge.
type Simulated struct{}

// NewSimulated returns the simulated provider.
func NewSimulated() *Simulated { return &Simulated{} }

// Name implements Provider.
func (*Simulated) Name() string { return "simulated" }

// Charge implements Provider.
func (*Simulated) Charge(ctx context.Context, orderID int64, amountCents int64, currency, method string) (string, domain.PaymentStatus, error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	ref := SimulatedRef(orderID)
	switch method {
	case MethodSucceeds:
		return ref, domain.PaymentStatusSucceeded, nil
	case MethodDeclines:
		return ref, domain.PaymentStatusDeclined, nil
	}
	return "", "", domain.InvalidInput("paymentMethod", "unknown payment method; use %s or %s", MethodSucceeds, MethodDeclines)
}

// SimulatedRef is the simulated provider's reference for the order's charge.
func SimulatedRef(orderID int64) string { return "sim_ch_" + strconv.FormatInt(orderID, 10) }
