// Package shop is what the benchmarks do through the public GraphQL API, as
// any client would: provision a seller with a product, start live drops, and
// place orders whose answers are timed and classified.
package shop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
	"livedrops/domain"
)

// Seller is a creator with one product, provisioned through the API.
type Seller struct {
	Token      string
	ProductGID string
	PriceCents int64
	Currency   string
}

// NewSeller signs handle up with a random password (only its token is used),
// makes it a creator and creates the product every drop of the benchmark
// sells.
func NewSeller(ctx context.Context, c *gql.Client, handle string) (*Seller, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("make the seller's password: %w", err)
	}
	password := hex.EncodeToString(secret)
	var up struct {
		SignUp struct{ Token string } `json:"signUp"`
	}
	err := c.Do(ctx, "", `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`,
		map[string]any{"input": map[string]any{"handle": handle, "password": password, "displayName": "Bench seller"}}, &up)
	if err != nil {
		return nil, fmt.Errorf("sign the seller %s up: %w", handle, err)
	}
	s := &Seller{Token: up.SignUp.Token, PriceCents: 2500, Currency: "EUR"}
	err = c.Do(ctx, s.Token, `mutation($input: BecomeCreatorInput!) { becomeCreator(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"displayName": "Bench seller", "bio": "Sells to the benchmarks."}}, nil)
	if err != nil {
		return nil, fmt.Errorf("make the seller a creator: %w", err)
	}
	var p struct {
		CreateProduct struct{ ID string } `json:"createProduct"`
	}
	err = c.Do(ctx, s.Token, `mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"title": "Stampede tee", "description": "One size.",
			"priceCents": s.PriceCents, "currency": s.Currency}}, &p)
	if err != nil {
		return nil, fmt.Errorf("create the product: %w", err)
	}
	s.ProductGID = p.CreateProduct.ID
	return s, nil
}

// LiveDrop schedules a drop of the seller's product and starts it now, and
// returns its global and numeric ids.
func (s *Seller) LiveDrop(ctx context.Context, c *gql.Client, title string, stock, perUserLimit int) (string, int64, error) {
	now := time.Now().UTC()
	var sched struct {
		ScheduleDrop struct{ ID string } `json:"scheduleDrop"`
	}
	err := c.Do(ctx, s.Token, `mutation($input: ScheduleDropInput!) { scheduleDrop(input: $input) { id } }`,
		map[string]any{"input": map[string]any{
			"productId": s.ProductGID, "title": title,
			"startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(3 * time.Hour).Format(time.RFC3339),
			"stock": stock, "perUserLimit": perUserLimit,
		}}, &sched)
	if err != nil {
		return "", 0, fmt.Errorf("schedule drop %q: %w", title, err)
	}
	var start struct {
		StartDrop struct{ Status string } `json:"startDrop"`
	}
	err = c.Do(ctx, s.Token, `mutation($id: ID!) { startDrop(id: $id) { status } }`,
		map[string]any{"id": sched.ScheduleDrop.ID}, &start)
	if err != nil {
		return "", 0, fmt.Errorf("start drop %q: %w", title, err)
	}
	if start.StartDrop.Status != string(domain.DropLive) {
		return "", 0, fmt.Errorf("start drop %q: it is %s, not LIVE", title, start.StartDrop.Status)
	}
	id, err := domain.ParseID(sched.ScheduleDrop.ID, domain.TypeDrop)
	if err != nil {
		return "", 0, fmt.Errorf("drop id %q: %w", sched.ScheduleDrop.ID, err)
	}
	return sched.ScheduleDrop.ID, id, nil
}

const placeOrderMutation = `mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { id status }
}`

type placeOrderVars struct {
	Input placeOrderInput `json:"input"`
}

type placeOrderInput struct {
	DropID   string `json:"dropId"`
	Quantity int    `json:"quantity"`
	Key      string `json:"idempotencyKey"`
}

// PlaceOrder sends the buyer's order of one unit with the idempotency key and
// classifies the answer: Ordered (a PENDING_PAYMENT order), SoldOut, or
// Failed with the error code (or the transport failure). buyer is the
// buyer's index, recorded in the answer with retry.
func PlaceOrder(ctx context.Context, c gql.Doer, b sandbox.Buyer, buyer int, dropGID, key string, retry bool) measure.Answer {
	var out struct {
		PlaceOrder struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"placeOrder"`
	}
	a := measure.Answer{Buyer: buyer, Retry: retry, Sent: time.Now()}
	err := c.Do(ctx, b.Token, placeOrderMutation, placeOrderVars{Input: placeOrderInput{DropID: dropGID, Quantity: 1, Key: key}}, &out)
	a.Done = time.Now()
	switch code := gql.CodeOf(err); {
	case err == nil && out.PlaceOrder.ID == "":
		a.Outcome, a.Code = measure.Failed, "answer without an order id"
	case err == nil && out.PlaceOrder.Status != string(domain.OrderPendingPayment):
		a.Outcome, a.Code = measure.Failed, "order answered "+out.PlaceOrder.Status
	case err == nil:
		a.Outcome, a.OrderID = measure.Ordered, out.PlaceOrder.ID
	case code == domain.SoldOut:
		a.Outcome = measure.SoldOut
	case code != "":
		a.Outcome, a.Code = measure.Failed, code
	default:
		a.Outcome, a.Code = measure.Failed, "transport: "+err.Error()
	}
	return a
}
