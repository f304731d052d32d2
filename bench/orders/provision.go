package main

import (
	"context"
	"fmt"
	"time"

	"livedrops/bench/internal/gql"
	"livedrops/domain"
)

// seller is the creator the drops belong to, provisioned through the API.
type seller struct {
	Token      string
	ProductGID string
	PriceCents int64
	Currency   string
}

// provisionSeller signs a creator up, makes it a creator and creates the
// product every drop sells, all through the public API.
func provisionSeller(ctx context.Context, c *gql.Client, password string) (*seller, error) {
	var up struct {
		SignUp struct{ Token string } `json:"signUp"`
	}
	err := c.Do(ctx, "", `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`,
		map[string]any{"input": map[string]any{"handle": "bench_seller", "password": password, "displayName": "Bench seller"}}, &up)
	if err != nil {
		return nil, fmt.Errorf("sign the seller up: %w", err)
	}
	s := &seller{Token: up.SignUp.Token, PriceCents: 2500, Currency: "EUR"}
	err = c.Do(ctx, s.Token, `mutation($input: BecomeCreatorInput!) { becomeCreator(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"displayName": "Bench seller", "bio": "Sells to the benchmark."}}, nil)
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

// liveDrop schedules a drop of the seller's product and starts it now,
// through the API, and returns its global and numeric ids.
func (s *seller) liveDrop(ctx context.Context, c *gql.Client, title string, stock, perUserLimit int) (string, int64, error) {
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
