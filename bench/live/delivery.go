package main

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"livedrops/bench/internal/measure"
	"livedrops/domain"
)

// commit is what is known of the transaction that left the drop with a
// given number of units available: the order that took the unit before.
type commit struct {
	// Written is the outbox row's created_at: the clock_timestamp() of the
	// events' insert, the last step of the transaction before its commit
	// (after it waited for the hot inventory row).
	Written time.Time
	// OrderID is the order the transaction placed, 0 when it could not be told.
	OrderID int64
	// Answered is when that order's HTTP answer reached the load generator,
	// after the commit; zero when unknown.
	Answered time.Time
}

// readCommits reads, for every StockChanged event of the drop, the units it
// left available and when its transaction wrote it, with the order placed in
// the same transaction: the OrderPlaced row written just before it in one
// statement (the inventory row lock keeps other sales from writing between
// them; the equal created_at, one clock reading per statement, confirms the
// pair).
// It fails when two events left the same count: the benchmark assumes only
// its orders of one unit move the stock.
func readCommits(ctx context.Context, db *sql.DB, dropID int64) (map[int32]commit, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT (s.payload->'payload'->>'available')::int, s.created_at,
		       COALESCE((o.payload->'payload'->>'orderId')::bigint, 0)
		FROM outbox s
		LEFT JOIN outbox o ON o.id = s.id - 1 AND o.type = 'OrderPlaced' AND o.created_at = s.created_at
		WHERE s.type = 'StockChanged' AND s.key = $1`, "drop:"+strconv.FormatInt(dropID, 10))
	if err != nil {
		return nil, fmt.Errorf("read the stock events of drop #%d: %w", dropID, err)
	}
	defer rows.Close()
	commits := map[int32]commit{}
	for rows.Next() {
		var (
			available int32
			c         commit
		)
		if err := rows.Scan(&available, &c.Written, &c.OrderID); err != nil {
			return nil, fmt.Errorf("read a stock event of drop #%d: %w", dropID, err)
		}
		if _, dup := commits[available]; dup {
			return nil, fmt.Errorf("two stock events of drop #%d left %d units available: something besides the benchmark's orders moved its stock", dropID, available)
		}
		commits[available] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the stock events of drop #%d: %w", dropID, err)
	}
	return commits, nil
}

// addAnswers fills in when each commit's order was first answered.
func addAnswers(commits map[int32]commit, answers []measure.Answer) {
	answered := map[int64]time.Time{}
	for _, a := range answers {
		if a.Outcome != measure.Ordered {
			continue
		}
		id, err := domain.ParseID(a.OrderID, domain.TypeOrder)
		if err != nil {
			continue
		}
		if at, ok := answered[id]; !ok || a.Done.Before(at) {
			answered[id] = a.Done
		}
	}
	for n, c := range commits {
		if at, ok := answered[c.OrderID]; ok && c.OrderID != 0 {
			c.Answered = at
			commits[n] = c
		}
	}
}

// delivery is what the subscribers received, judged against the commits.
type delivery struct {
	// Updates counts the messages after each subscription's first state.
	Updates int
	// FromCommit holds, for every new stock state a subscriber received, its
	// receipt time minus its transaction's events' insert (the latency from
	// the commit, which follows within a statement); FromAnswer the receipt
	// time minus the HTTP answer of its order (a lower bound: the answer left
	// after the commit).
	FromCommit, FromAnswer []time.Duration
	// Unmatched counts new stock states no stock event produced.
	Unmatched int
	// MovedBack counts states with more units available than the one
	// received before: stock only goes down in this benchmark.
	MovedBack int
}

// judgeDelivery computes the delivery figures of the subscribers' states.
// A subscription's first state is its snapshot, not an update, and is left
// out; so are states that only repeat the stock (a status change).
func judgeDelivery(perSubscriber [][]dropState, commits map[int32]commit) delivery {
	var d delivery
	for _, states := range perSubscriber {
		if len(states) == 0 {
			continue
		}
		prev := states[0]
		for _, st := range states[1:] {
			d.Updates++
			switch {
			case st.Available > prev.Available:
				d.MovedBack++
			case st.Available < prev.Available:
				c, ok := commits[st.Available]
				if !ok {
					d.Unmatched++
					break
				}
				d.FromCommit = append(d.FromCommit, time.Duration(st.At-c.Written.UnixNano()))
				if !c.Answered.IsZero() {
					d.FromAnswer = append(d.FromAnswer, time.Duration(st.At-c.Answered.UnixNano()))
				}
			}
			prev = st
		}
	}
	return d
}

// countStale counts the subscribers whose newest state (nil: none) is not
// the final one.
func countStale(lasts []*dropState, final dropState) int {
	n := 0
	for _, st := range lasts {
		if st == nil || !st.sameAs(final) {
			n++
		}
	}
	return n
}
