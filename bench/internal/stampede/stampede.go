// Package stampede sends many buyers' orders at one drop at once, from a
// fixed pool of workers, the way a drop's opening second looks to the server.
package stampede

import (
	"context"
	"math/rand/v2"
	"sync"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
	"livedrops/bench/internal/shop"
)

// Retry is how a buyer's request is repeated.
type Retry int

const (
	// Once sends the request once.
	Once Retry = iota
	// Twin sends a second identical request concurrently.
	Twin
	// After sends a second identical request right after the first answer.
	After
)

// Job is one request to send; a buyer with a twin has two jobs, side by side
// in the queue, so two workers take them at the same moment.
type Job struct {
	// Buyer is the buyer's index in the buyers Run is given.
	Buyer int
	Kind  Retry
	// Second marks the twin's copy: the retry of the pair.
	Second bool
}

// Each is every one of n buyers once, in order.
func Each(n int) []Job {
	jobs := make([]Job, n)
	for i := range jobs {
		jobs[i] = Job{Buyer: i}
	}
	return jobs
}

// Plan lays out a round: every buyer once, in random order; retryPercent of
// them repeat their request with the same key, half as a concurrent twin and
// half right after their first answer.
func Plan(buyers, retryPercent int, rng *rand.Rand) []Job {
	retries := buyers * retryPercent / 100
	kinds := make([]Retry, buyers)
	for i, b := range rng.Perm(buyers)[:retries] {
		if i < retries/2 {
			kinds[b] = Twin
		} else {
			kinds[b] = After
		}
	}
	jobs := make([]Job, 0, buyers+retries)
	for _, b := range rng.Perm(buyers) {
		jobs = append(jobs, Job{Buyer: b, Kind: kinds[b]})
		if kinds[b] == Twin {
			jobs = append(jobs, Job{Buyer: b, Kind: Twin, Second: true})
		}
	}
	return jobs
}

// Run sends the jobs' orders of one unit at the drop from one worker per
// connection, each buyer's idempotency key keyPrefix and its handle, and
// returns every answer. A cancelled ctx stops the workers before their next job.
func Run(ctx context.Context, conns []*gql.Conn, buyers []sandbox.Buyer, dropGID, keyPrefix string, jobs []Job) []measure.Answer {
	queue := make(chan Job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	results := make([][]measure.Answer, len(conns))
	var wg sync.WaitGroup
	for w, client := range conns {
		wg.Go(func() {
			for j := range queue {
				if ctx.Err() != nil {
					return
				}
				b := buyers[j.Buyer]
				key := keyPrefix + b.Handle
				results[w] = append(results[w], shop.PlaceOrder(ctx, client, b, j.Buyer, dropGID, key, j.Second))
				if j.Kind == After {
					results[w] = append(results[w], shop.PlaceOrder(ctx, client, b, j.Buyer, dropGID, key, true))
				}
			}
		})
	}
	wg.Wait()
	var all []measure.Answer
	for _, r := range results {
		all = append(all, r...)
	}
	return all
}
