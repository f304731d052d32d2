// Package testschema is a small GraphQL schema, run by gqlgen's real generated
// executor, that drives the httpapi tests: errors of every kind, panics, costly
// and deep selections, a custom scalar and a subscription.
package testschema

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"livedrops/domain"
)

// Resolver resolves the test schema and counts every resolver call, so tests
// can prove a refused request never reached execution.
type Resolver struct {
	calls atomic.Int64
}

// New returns the executable schema and its resolver. Items cost first × their
// selection, as the real schema prices connections.
func New() (graphql.ExecutableSchema, *Resolver) {
	r := &Resolver{}
	cfg := Config{Resolvers: r}
	cfg.Complexity.Query.Items = func(child, first int, _ *time.Time) int { return first * child }
	return NewExecutableSchema(cfg), r
}

// Calls is how many resolvers have run.
func (r *Resolver) Calls() int64 { return r.calls.Load() }

func (r *Resolver) Query() QueryResolver               { return queryResolver{r} }
func (r *Resolver) Mutation() MutationResolver         { return mutationResolver{r} }
func (r *Resolver) Subscription() SubscriptionResolver { return subscriptionResolver{r} }

type queryResolver struct{ *Resolver }

func (q queryResolver) Hello(ctx context.Context, name *string) (string, error) {
	q.calls.Add(1)
	if name == nil {
		return "hello, world", nil
	}
	return "hello, " + *name, nil
}

func (q queryResolver) Fail(ctx context.Context, kind FailKind) (*string, error) {
	q.calls.Add(1)
	switch kind {
	case FailKindNotFound:
		return nil, domain.InvalidInput("id", "no drop with that id")
	case FailKindRateLimited:
		return nil, fmt.Errorf("place order: %w", &domain.Error{
			Code: domain.RateLimited, Message: "too many orders, slow down",
			Extensions: map[string]any{"retryAfter": 3},
		})
	case FailKindPlain:
		return nil, errors.New("pq: connection refused to 10.0.0.7:5432")
	case FailKindPanic:
		panic("resolver exploded")
	}
	return nil, nil
}

func (q queryResolver) Items(ctx context.Context, first int, after *time.Time) ([]*Item, error) {
	q.calls.Add(1)
	items := make([]*Item, 0, first)
	for i := range first {
		items = append(items, &Item{ID: fmt.Sprint(i + 1), Name: fmt.Sprintf("item %d", i+1)})
	}
	return items, nil
}

func (q queryResolver) Nested(ctx context.Context) (*Nested, error) {
	q.calls.Add(1)
	var n *Nested
	for level := 30; level >= 1; level-- {
		n = &Nested{Level: level, Child: n}
	}
	return n, nil
}

func (q queryResolver) Calls(ctx context.Context) (int, error) {
	return int(q.calls.Load()), nil
}

func (q queryResolver) RequestID(ctx context.Context) (string, error) {
	q.calls.Add(1)
	return domain.RequestID(ctx), nil
}

func (q queryResolver) Viewer(ctx context.Context) (*string, error) {
	q.calls.Add(1)
	if v := domain.ViewerFrom(ctx); v != nil {
		return &v.Handle, nil
	}
	return nil, nil
}

func (q queryResolver) Slow(ctx context.Context, ms int) (int, error) {
	q.calls.Add(1)
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

type mutationResolver struct{ *Resolver }

func (m mutationResolver) Bump(ctx context.Context) (int, error) {
	return int(m.calls.Add(1)), nil
}

type subscriptionResolver struct{ *Resolver }

// Ticks sends 1..count and ends; a gone subscriber stops it at once.
func (s subscriptionResolver) Ticks(ctx context.Context, count int) (<-chan int, error) {
	s.calls.Add(1)
	if count < 0 {
		return nil, domain.InvalidInput("count", "count must not be negative")
	}
	ch := make(chan int)
	go func() {
		defer close(ch)
		for i := 1; i <= count; i++ {
			select {
			case ch <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Hold sends 1 and keeps the subscription open until its context ends,
// with no goroutine of its own (like the live hub's subscriptions), so tests
// can count the transport's.
func (s subscriptionResolver) Hold(ctx context.Context) (<-chan int, error) {
	s.calls.Add(1)
	ch := make(chan int, 1)
	ch <- 1
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}
