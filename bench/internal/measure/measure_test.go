package measure

import (
	"math/rand/v2"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p95 of 1..100", hundred, 95, ms(95)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the max", hundred, 100, ms(100)},
		{"p0 is the min", hundred, 0, ms(1)},
		{"p50 of four takes the second", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p99 of ten is the max", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsAndReports(t *testing.T) {
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = ms(i + 1)
	}
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	s := Summarize(ds)
	want := Summary{Count: 1000, P50: ms(500), P95: ms(950), P99: ms(990), Max: ms(1000)}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) is not zero")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.xs...)
		if got := Median(tt.xs); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.xs[i] {
				t.Errorf("Median reordered its input: %v", tt.xs)
			}
		}
	}
}

func TestTally(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	answers := []Answer{
		{Sent: at(0), Done: at(10), Outcome: Ordered, OrderID: "a", Buyer: 0},
		// A concurrent retry answered first: "b" counts from its earliest answer.
		{Sent: at(1), Done: at(30), Outcome: Ordered, OrderID: "b", Buyer: 1},
		{Sent: at(2), Done: at(20), Outcome: Ordered, OrderID: "b", Buyer: 1, Retry: true},
		// A retry replaying "a" late must not stretch the accepted window.
		{Sent: at(40), Done: at(90), Outcome: Ordered, OrderID: "a", Buyer: 0, Retry: true},
		{Sent: at(5), Done: at(8), Outcome: SoldOut, Buyer: 2},
		{Sent: at(6), Done: at(100), Outcome: SoldOut, Buyer: 3},
		{Sent: at(7), Done: at(50), Outcome: Failed, Code: "INTERNAL", Buyer: 4},
	}
	r := Tally(answers)
	if r.Accepted != 2 || r.Answers != 7 {
		t.Errorf("Accepted, Answers = %d, %d; want 2, 7", r.Accepted, r.Answers)
	}
	if r.AcceptedWindow != ms(20) {
		t.Errorf("AcceptedWindow = %v, want 20ms (to b's first answer)", r.AcceptedWindow)
	}
	if r.AnswerWindow != ms(100) {
		t.Errorf("AnswerWindow = %v, want 100ms", r.AnswerWindow)
	}
	if got := r.AcceptedPerSecond(); got != 100 {
		t.Errorf("AcceptedPerSecond = %v, want 100", got)
	}
	if got := r.AnswersPerSecond(); got != 70 {
		t.Errorf("AnswersPerSecond = %v, want 70", got)
	}
	if r.OrderedLatency.Count != 4 || r.OrderedLatency.Max != ms(50) || r.OrderedLatency.P50 != ms(18) {
		t.Errorf("OrderedLatency = %+v", r.OrderedLatency)
	}
	if r.SoldOutLatency.Count != 2 || r.SoldOutLatency.P50 != ms(3) || r.SoldOutLatency.P99 != ms(94) {
		t.Errorf("SoldOutLatency = %+v", r.SoldOutLatency)
	}
	if r.Failures["INTERNAL"] != 1 || r.FailedCount() != 1 {
		t.Errorf("Failures = %v", r.Failures)
	}
	if z := Tally(nil); z.Answers != 0 || z.AcceptedPerSecond() != 0 {
		t.Errorf("Tally(nil) = %+v", z)
	}
}

func TestCauses(t *testing.T) {
	m := map[string]int{"INTERNAL": 1, "SQLSTATE 40001": 3, "b": 2, "a": 2}
	if got, want := Causes(m, 3), "3x SQLSTATE 40001, 2x a, 2x b, and 1 more kinds"; got != want {
		t.Errorf("Causes = %q, want %q", got, want)
	}
	if got := Causes(nil, 3); got != "" {
		t.Errorf("Causes(nil) = %q", got)
	}
}
