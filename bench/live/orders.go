package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
	"livedrops/domain"
)

// seller is the creator whose drop the subscribers watch, provisioned
// through the public API like the orders benchmark's.
type seller struct {
	Token      string
	ProductGID string
}

func provisionSeller(ctx context.Context, c *gql.Client, password string) (*seller, error) {
	var up struct {
		SignUp struct{ Token string } `json:"signUp"`
	}
	err := c.Do(ctx, "", `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`,
		map[string]any{"input": map[string]any{"handle": "live_seller", "password": password, "displayName": "Live seller"}}, &up)
	if err != nil {
		return nil, fmt.Errorf("sign the seller up: %w", err)
	}
	s := &seller{Token: up.SignUp.Token}
	err = c.Do(ctx, s.Token, `mutation($input: BecomeCreatorInput!) { becomeCreator(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"displayName": "Live seller", "bio": "Sells to the live benchmark."}}, nil)
	if err != nil {
		return nil, fmt.Errorf("make the seller a creator: %w", err)
	}
	var p struct {
		CreateProduct struct{ ID string } `json:"createProduct"`
	}
	err = c.Do(ctx, s.Token, `mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"title": "Live tee", "description": "One size.",
			"priceCents": 2500, "currency": "EUR"}}, &p)
	if err != nil {
		return nil, fmt.Errorf("create the product: %w", err)
	}
	s.ProductGID = p.CreateProduct.ID
	return s, nil
}

// liveDrop schedules a drop of stock units (one per buyer) and starts it,
// through the API; it returns the drop's global and numeric ids.
func (s *seller) liveDrop(ctx context.Context, c *gql.Client, stock int) (string, int64, error) {
	now := time.Now().UTC()
	var sched struct {
		ScheduleDrop struct{ ID string } `json:"scheduleDrop"`
	}
	err := c.Do(ctx, s.Token, `mutation($input: ScheduleDropInput!) { scheduleDrop(input: $input) { id } }`,
		map[string]any{"input": map[string]any{
			"productId": s.ProductGID, "title": "Live drop",
			"startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(3 * time.Hour).Format(time.RFC3339),
			"stock": stock, "perUserLimit": 1,
		}}, &sched)
	if err != nil {
		return "", 0, fmt.Errorf("schedule the drop: %w", err)
	}
	var start struct {
		StartDrop struct{ Status string } `json:"startDrop"`
	}
	err = c.Do(ctx, s.Token, `mutation($id: ID!) { startDrop(id: $id) { status } }`,
		map[string]any{"id": sched.ScheduleDrop.ID}, &start)
	if err != nil {
		return "", 0, fmt.Errorf("start the drop: %w", err)
	}
	if start.StartDrop.Status != string(domain.DropLive) {
		return "", 0, fmt.Errorf("start the drop: it is %s, not LIVE", start.StartDrop.Status)
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

// stampede sends every buyer's one order at the drop from conns workers,
// all at once, and returns every answer.
func stampede(ctx context.Context, client *gql.Client, buyers []sandbox.Buyer, dropGID string, conns int) []measure.Answer {
	queue := make(chan int, len(buyers))
	for i := range buyers {
		queue <- i
	}
	close(queue)
	results := make([][]measure.Answer, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				if ctx.Err() != nil {
					return
				}
				results[w] = append(results[w], placeOrder(ctx, client, buyers[i], i, dropGID))
			}
		}()
	}
	wg.Wait()
	var all []measure.Answer
	for _, r := range results {
		all = append(all, r...)
	}
	return all
}

// placeOrder sends one order of one unit and classifies its answer.
func placeOrder(ctx context.Context, client *gql.Client, b sandbox.Buyer, buyer int, dropGID string) measure.Answer {
	var out struct {
		PlaceOrder struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"placeOrder"`
	}
	a := measure.Answer{Buyer: buyer, Sent: time.Now()}
	err := client.Do(ctx, b.Token, placeOrderMutation, map[string]any{
		"input": map[string]any{"dropId": dropGID, "quantity": 1, "idempotencyKey": "live-" + b.Handle},
	}, &out)
	a.Done = time.Now()
	switch code := gql.CodeOf(err); {
	case err == nil && out.PlaceOrder.ID != "":
		a.Outcome, a.OrderID = measure.Ordered, out.PlaceOrder.ID
	case err == nil:
		a.Outcome, a.Code = measure.Failed, "answer without an order id"
	case code == domain.SoldOut:
		a.Outcome = measure.SoldOut
	case code != "":
		a.Outcome, a.Code = measure.Failed, code
	default:
		a.Outcome, a.Code = measure.Failed, "transport: "+err.Error()
	}
	return a
}
