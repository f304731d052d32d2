package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"

	"livedrops/bench/internal/gql"
	"livedrops/bench/internal/measure"
	"livedrops/bench/internal/sandbox"
	"livedrops/bench/internal/shop"
	"livedrops/domain"
)

// retryKind is how a buyer's request is repeated.
type retryKind int

const (
	once  retryKind = iota
	twin            // a second identical request sent concurrently
	after           // a second identical request sent right after the first answer
)

// job is one request to send; a buyer with a twin has two jobs, side by side
// in the queue, so two workers take them at the same moment.
type job struct {
	buyer int
	kind  retryKind
	// second marks the twin's copy: the retry of the pair.
	second bool
}

// plan lays out a round: every buyer once, in random order; retryPercent of
// them repeat their request with the same key, half as a concurrent twin and
// half right after their first answer.
func plan(buyers, retryPercent int, rng *rand.Rand) []job {
	retries := buyers * retryPercent / 100
	kinds := make([]retryKind, buyers)
	for i, b := range rng.Perm(buyers)[:retries] {
		if i < retries/2 {
			kinds[b] = twin
		} else {
			kinds[b] = after
		}
	}
	jobs := make([]job, 0, buyers+retries)
	for _, b := range rng.Perm(buyers) {
		jobs = append(jobs, job{buyer: b, kind: kinds[b]})
		if kinds[b] == twin {
			jobs = append(jobs, job{buyer: b, kind: twin, second: true})
		}
	}
	return jobs
}

// stampede sends the planned jobs for one drop from conns workers and
// returns every answer.
func stampede(ctx context.Context, client *gql.Client, buyers []sandbox.Buyer, dropGID, keyPrefix string,
	jobs []job, conns int) []measure.Answer {
	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	results := make([][]measure.Answer, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if ctx.Err() != nil {
					return
				}
				b := buyers[j.buyer]
				key := keyPrefix + b.Handle
				results[w] = append(results[w], shop.PlaceOrder(ctx, client, b, j.buyer, dropGID, key, j.second))
				if j.kind == after {
					results[w] = append(results[w], shop.PlaceOrder(ctx, client, b, j.buyer, dropGID, key, true))
				}
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

// retryCheck compares each retried buyer's two answers.
type retryCheck struct {
	// Pairs is the number of buyers who sent their request twice.
	Pairs int
	// DifferentOrders counts pairs answered with two different orders: a
	// duplicate the client saw.
	DifferentOrders int
	// SoldOutBesideOrder counts pairs where one answer carried the order and
	// the other said SOLD_OUT: no duplicate, but the retry was not told of
	// the order its key holds.
	SoldOutBesideOrder int
}

func checkRetries(answers []measure.Answer) retryCheck {
	byBuyer := map[int][]measure.Answer{}
	for _, a := range answers {
		byBuyer[a.Buyer] = append(byBuyer[a.Buyer], a)
	}
	var c retryCheck
	for _, as := range byBuyer {
		if len(as) < 2 {
			continue
		}
		c.Pairs++
		ids := map[string]bool{}
		soldOut := false
		for _, a := range as {
			switch a.Outcome {
			case measure.Ordered:
				ids[a.OrderID] = true
			case measure.SoldOut:
				soldOut = true
			}
		}
		if len(ids) > 1 {
			c.DifferentOrders += len(ids) - 1
		}
		if len(ids) > 0 && soldOut {
			c.SoldOutBesideOrder++
		}
	}
	return c
}

// orderKeys decodes the id of every order the answers carried; ids that do
// not decode are returned apart.
func orderKeys(answers []measure.Answer, decode func(string) (int64, error)) (ids map[int64]bool, undecodable []string) {
	ids = map[int64]bool{}
	for _, a := range answers {
		if a.Outcome != measure.Ordered {
			continue
		}
		if id, err := decode(a.OrderID); err == nil {
			ids[id] = true
		} else {
			undecodable = append(undecodable, a.OrderID)
		}
	}
	return ids, undecodable
}

// orderGID decodes an Order's global id.
func orderGID(gid string) (int64, error) { return domain.ParseID(gid, domain.TypeOrder) }

// rawID decodes the ceiling's plain numeric order id.
func rawID(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
