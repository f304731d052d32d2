package main

import (
	"context"
	"sync"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
	"livedrops/bench/internal/shop"
)

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
				b := buyers[i]
				results[w] = append(results[w], shop.PlaceOrder(ctx, client, b, i, dropGID, "live-"+b.Handle, false))
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
