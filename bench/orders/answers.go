package main

import (
	"strconv"

	"livedrops/bench/internal/measure"
	"livedrops/domain"
)

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
