// Package measure turns the timed answers of a benchmark round into the
// figures it prints: exact latency percentiles, rates over the round's
// window and medians over rounds.
package measure

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Outcome is what one request was answered.
type Outcome int

const (
	// Ordered: the answer carried an order (a new one, or the original one
	// replayed for a retry).
	Ordered Outcome = iota
	// SoldOut: the answer was the SOLD_OUT refusal.
	SoldOut
	// Failed: any other answer (another error code, a transport failure).
	Failed
)

// Answer is one request and what it got back.
type Answer struct {
	Sent, Done time.Time
	Outcome    Outcome
	// OrderID names the order an Ordered answer carried.
	OrderID string
	// Code is the error code of a Failed answer (or a short cause for a
	// transport failure).
	Code string
	// Buyer is the index of the buyer that sent it.
	Buyer int
	// Retry is true for the second request of a buyer with the same key.
	Retry bool
}

// Summary is the latency distribution of a set of answers.
type Summary struct {
	Count         int
	P50, P95, P99 time.Duration
	Max           time.Duration
}

// Summarize returns the exact nearest-rank percentiles of ds; ds is sorted in place.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return Summary{
		Count: len(ds),
		P50:   Percentile(ds, 50),
		P95:   Percentile(ds, 95),
		P99:   Percentile(ds, 99),
		Max:   ds[len(ds)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile of sorted (ascending):
// the smallest value at least p% of the values are not above.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Round is the figures of one round, computed from every answer it got.
type Round struct {
	// Accepted is the number of distinct orders the answers carried.
	Accepted int
	// Answers is every answer, retries included.
	Answers int
	// AcceptedWindow runs from the first request sent to the moment the last
	// new order was first answered; AnswerWindow to the last answer.
	AcceptedWindow, AnswerWindow time.Duration
	// OrderedLatency covers every answer that carried an order (retries
	// replaying one included); SoldOutLatency every SOLD_OUT answer.
	OrderedLatency, SoldOutLatency Summary
	// Failures counts Failed answers by code.
	Failures map[string]int
}

// Tally computes a round's figures from its answers.
func Tally(answers []Answer) Round {
	r := Round{Answers: len(answers), Failures: map[string]int{}}
	if len(answers) == 0 {
		return r
	}
	start, end := answers[0].Sent, answers[0].Done
	firstSeen := map[string]time.Time{}
	var ordered, soldOut []time.Duration
	for _, a := range answers {
		if a.Sent.Before(start) {
			start = a.Sent
		}
		if a.Done.After(end) {
			end = a.Done
		}
		switch a.Outcome {
		case Ordered:
			ordered = append(ordered, a.Done.Sub(a.Sent))
			if at, ok := firstSeen[a.OrderID]; !ok || a.Done.Before(at) {
				firstSeen[a.OrderID] = a.Done
			}
		case SoldOut:
			soldOut = append(soldOut, a.Done.Sub(a.Sent))
		default:
			r.Failures[a.Code]++
		}
	}
	r.Accepted = len(firstSeen)
	lastNew := start
	for _, at := range firstSeen {
		if at.After(lastNew) {
			lastNew = at
		}
	}
	r.AcceptedWindow = lastNew.Sub(start)
	r.AnswerWindow = end.Sub(start)
	r.OrderedLatency = Summarize(ordered)
	r.SoldOutLatency = Summarize(soldOut)
	return r
}

// AcceptedPerSecond is distinct orders over the accepted window.
func (r Round) AcceptedPerSecond() float64 { return PerSecond(r.Accepted, r.AcceptedWindow) }

// AnswersPerSecond is every answer over the whole round.
func (r Round) AnswersPerSecond() float64 { return PerSecond(r.Answers, r.AnswerWindow) }

// FailedCount is the number of Failed answers.
func (r Round) FailedCount() int {
	n := 0
	for _, c := range r.Failures {
		n += c
	}
	return n
}

// PerSecond is n events over d, 0 for an empty window.
func PerSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none; xs is left untouched.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// Millis is d in milliseconds, fractional.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Causes lists failures counted by cause, the most frequent first, at most
// most of them: "3x SQLSTATE 40001, 1x INTERNAL".
func Causes(m map[string]int, most int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	parts := make([]string, 0, len(keys))
	for i, k := range keys {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more kinds", len(keys)-most))
			break
		}
		parts = append(parts, fmt.Sprintf("%dx %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}
