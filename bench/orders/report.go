package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"livedrops/bench/internal/ledger"
	"livedrops/bench/internal/measure"
)

// roundFigures is one round measured and checked.
type roundFigures struct {
	measure.Round
	DropID int64
	// Demand is how many units were asked for by distinct buyers (or raw attempts).
	Demand int
	Ledger *ledger.Ledger
	// Phantoms are orders answered to a client that PostgreSQL does not hold.
	Phantoms int
	// Unanswered are orders PostgreSQL holds that no answer carried.
	Unanswered int
	Retries    retryCheck
	CPU        cpuUse
	CPUOK      bool
	// ServerCounters is what the server's own counters say of the round.
	ServerCounters string
	// Drain is how long after the last answer the outbox took to empty.
	Drain   time.Duration
	Drained bool
	// AgedWritten rows past their retention were written before the round
	// (-prune); AgedLeft of them were still there after its last answer.
	AgedWritten, AgedLeft int
}

// Oversold is the units sold beyond stock.
func (f roundFigures) Oversold() int { return f.Ledger.Oversold() }

// Duplicates counts second orders: those PostgreSQL holds for a buyer and key
// that already had one, or retries answered with another order than the
// first answer's, whichever finds more (each is one second order seen from
// its side, so they are not added up).
func (f roundFigures) Duplicates() int { return max(f.Ledger.Duplicates(), f.Retries.DifferentOrders) }

// Problems lists what makes the round's figures untrustworthy.
func (f roundFigures) Problems() []string {
	var p []string
	if n := f.FailedCount(); n > 0 {
		p = append(p, fmt.Sprintf("%d answers neither an order nor SOLD_OUT: %s", n, measure.Causes(f.Failures, 5)))
	}
	if !f.Ledger.Balanced() {
		p = append(p, "inventory does not balance")
	}
	if f.Ledger.Available > 0 && f.Demand >= f.Ledger.Total {
		p = append(p, fmt.Sprintf("%d units still available although every buyer was answered: SOLD_OUT was answered too early", f.Ledger.Available))
	}
	if f.Phantoms > 0 {
		p = append(p, fmt.Sprintf("%d orders answered to buyers are not in PostgreSQL", f.Phantoms))
	}
	if f.Unanswered > 0 {
		p = append(p, fmt.Sprintf("%d orders in PostgreSQL were never answered to their buyer", f.Unanswered))
	}
	return p
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", measure.Millis(d)) }

func percentiles(s measure.Summary) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%s/%s/%s ms (max %s, n=%d)", ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max), s.Count)
}

func (b *bench) printRound(kind string, r int, f roundFigures) {
	l := f.Ledger
	b.printf("round %d %-8s accepted %d in %.2fs = %.0f/s | answers %d in %.2fs = %.0f/s\n",
		r, kind, f.Accepted, f.AcceptedWindow.Seconds(), f.AcceptedPerSecond(),
		f.Answers, f.AnswerWindow.Seconds(), f.AnswersPerSecond())
	b.printf("                 latency accepted p50/p95/p99 %s | SOLD_OUT p50/p95/p99 %s\n",
		percentiles(f.OrderedLatency), percentiles(f.SoldOutLatency))
	balance := "balances"
	if !l.Balanced() {
		balance = "DOES NOT BALANCE"
	}
	b.printf("                 drop #%d: oversold %d, duplicates %d; stock available %d + reserved %d + sold %d = total %d %s; %d orders in PostgreSQL\n",
		f.DropID, f.Oversold(), f.Duplicates(), l.Available, l.Reserved, l.Sold, l.Total, balance, l.Orders)
	if f.Retries.Pairs > 0 {
		b.printf("                 retries: %d buyers sent twice; %d answered another order, %d answered SOLD_OUT beside their order\n",
			f.Retries.Pairs, f.Retries.DifferentOrders, f.Retries.SoldOutBesideOrder)
	}
	var extra []string
	if f.CPUOK {
		extra = append(extra, f.CPU.String())
	}
	if f.Drain > 0 || f.Drained {
		if f.Drained {
			extra = append(extra, fmt.Sprintf("outbox published %.1fs after the last answer", f.Drain.Seconds()))
		} else {
			extra = append(extra, fmt.Sprintf("outbox NOT published %.0fs after the last answer", f.Drain.Seconds()))
		}
	}
	if len(extra) > 0 {
		b.printf("                 %s\n", strings.Join(extra, "; "))
	}
	if f.AgedWritten > 0 {
		b.printf("                 pruning: %d of %d aged rows deleted by the last answer\n", f.AgedWritten-f.AgedLeft, f.AgedWritten)
	}
	if f.ServerCounters != "" {
		b.printf("                 server counters: %s\n", f.ServerCounters)
	}
	for _, p := range f.Problems() {
		b.printf("                 PROBLEM: %s\n", p)
	}
}

// medians are the figures the summary and the last line report.
type medians struct {
	accepted, answers, raw, rawAnswers float64
	soldOutP99, acceptedP99, rawP99    float64
	oversold, duplicates               int
}

func (b *bench) medians() medians {
	pick := func(fs []roundFigures, fn func(roundFigures) float64) float64 {
		xs := make([]float64, len(fs))
		for i, f := range fs {
			xs[i] = fn(f)
		}
		return measure.Median(xs)
	}
	m := medians{
		accepted:    pick(b.graphql, func(f roundFigures) float64 { return f.AcceptedPerSecond() }),
		answers:     pick(b.graphql, func(f roundFigures) float64 { return f.AnswersPerSecond() }),
		soldOutP99:  pick(b.graphql, func(f roundFigures) float64 { return measure.Millis(f.SoldOutLatency.P99) }),
		acceptedP99: pick(b.graphql, func(f roundFigures) float64 { return measure.Millis(f.OrderedLatency.P99) }),
		raw:         pick(b.raw, func(f roundFigures) float64 { return f.AcceptedPerSecond() }),
		rawAnswers:  pick(b.raw, func(f roundFigures) float64 { return f.AnswersPerSecond() }),
		rawP99:      pick(b.raw, func(f roundFigures) float64 { return measure.Millis(f.OrderedLatency.P99) }),
	}
	for _, f := range append(append([]roundFigures(nil), b.graphql...), b.raw...) {
		m.oversold += f.Oversold()
		m.duplicates += f.Duplicates()
	}
	return m
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func (b *bench) summary() {
	m := b.medians()
	ratio := 0.0
	if m.raw > 0 {
		ratio = m.accepted / m.raw
	}
	b.printf("median of %d rounds\n", len(b.graphql))
	b.printf("  graphql  accepted %.0f/s, answers %.0f/s, accepted p99 %.1f ms, SOLD_OUT p99 %.1f ms\n",
		m.accepted, m.answers, m.acceptedP99, m.soldOutP99)
	b.printf("  raw sql  accepted %.0f/s, attempts %.0f/s, accepted p99 %.1f ms\n", m.raw, m.rawAnswers, m.rawP99)
	b.printf("targets\n")
	b.printf("  accepted orders/s through GraphQL >= %.1f x raw ceiling: %.0f vs %.0f (ratio %.2f)  %s\n",
		targetRatio, m.accepted, targetRatio*m.raw, ratio, passFail(ratio >= targetRatio))
	b.printf("  SOLD_OUT p99 < %.0f ms: %.1f ms  %s\n", targetSoldOutP99Ms, m.soldOutP99, passFail(m.soldOutP99 < targetSoldOutP99Ms))
	b.printf("  oversold = 0 (all rounds): %d  %s\n", m.oversold, passFail(m.oversold == 0))
	b.printf("  duplicates = 0 (all rounds): %d  %s\n", m.duplicates, passFail(m.duplicates == 0))
	b.printf("%s\n", lastLine(m.accepted, m.raw, ratio, m.soldOutP99, m.oversold, m.duplicates))
}

// lastLine is the machine-readable summary, always the output's last line.
func lastLine(accepted, raw, ratio, soldOutP99 float64, oversold, duplicates int) string {
	return fmt.Sprintf("orders: accepted_per_s=%.0f raw_ceiling_per_s=%.0f ratio=%.2f soldout_p99_ms=%.1f oversold=%d duplicates=%d",
		accepted, raw, ratio, soldOutP99, oversold, duplicates)
}

// verdict is the exit code once every round ran: 1 when anything was
// oversold or ordered twice or a round's figures cannot be trusted.
func (b *bench) verdict() int {
	m := b.medians()
	var why []string
	if m.oversold > 0 {
		why = append(why, fmt.Sprintf("%d units oversold", m.oversold))
	}
	if m.duplicates > 0 {
		why = append(why, fmt.Sprintf("%d duplicate orders", m.duplicates))
	}
	for i, f := range b.graphql {
		for _, p := range f.Problems() {
			why = append(why, fmt.Sprintf("graphql round %d: %s", i+1, p))
		}
	}
	for i, f := range b.raw {
		for _, p := range f.Problems() {
			why = append(why, fmt.Sprintf("raw round %d: %s", i+1, p))
		}
	}
	if len(why) == 0 {
		return 0
	}
	fmt.Fprintln(os.Stderr, "bench-orders: failed:", strings.Join(why, "; "))
	return 1
}
