package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"livedrops/bench/internal/measure"
)

func TestCheckRetries(t *testing.T) {
	now := time.Now()
	a := func(buyer int, o measure.Outcome, id string, retry bool) measure.Answer {
		return measure.Answer{Buyer: buyer, Outcome: o, OrderID: id, Retry: retry, Sent: now, Done: now}
	}
	c := checkRetries([]measure.Answer{
		a(0, measure.Ordered, "x", false), a(0, measure.Ordered, "x", true), // same order: fine
		a(1, measure.Ordered, "y", false), a(1, measure.Ordered, "z", true), // two orders: a duplicate
		a(2, measure.Ordered, "w", false), a(2, measure.SoldOut, "", true), // told sold out beside its order
		a(3, measure.SoldOut, "", false), a(3, measure.SoldOut, "", true),
		a(4, measure.Ordered, "v", false), // no retry
	})
	want := retryCheck{Pairs: 4, DifferentOrders: 1, SoldOutBesideOrder: 1}
	if c != want {
		t.Errorf("checkRetries = %+v, want %+v", c, want)
	}
}

func TestLastLineFormat(t *testing.T) {
	got := lastLine(1234.4, 3000.6, 0.411, 7.25, 0, 2)
	want := "orders: accepted_per_s=1234 raw_ceiling_per_s=3001 ratio=0.41 soldout_p99_ms=7.2 oversold=0 duplicates=2"
	if got != want {
		t.Errorf("lastLine = %q, want %q", got, want)
	}
	re := regexp.MustCompile(`^orders: accepted_per_s=\d+ raw_ceiling_per_s=\d+ ratio=[\d.]+ soldout_p99_ms=[\d.]+ oversold=\d+ duplicates=\d+$`)
	if !re.MatchString(got) {
		t.Errorf("lastLine %q does not parse", got)
	}
}

func TestRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\n"
	if got := redisCPU(info); got != 3750*time.Millisecond {
		t.Errorf("redisCPU = %v, want 3.75s", got)
	}
}

func TestCountersDelta(t *testing.T) {
	before := parseCounters(strings.NewReader(`# HELP livedrops_gate_total x
# TYPE livedrops_gate_total counter
livedrops_gate_total{result="admitted"} 10
livedrops_gate_total{result="sold_out"} 5
livedrops_orders_total{outcome="accepted"} 10
go_goroutines 42
`))
	after := parseCounters(strings.NewReader(`livedrops_gate_total{result="admitted"} 510
livedrops_gate_total{result="sold_out"} 5
livedrops_gate_total{result="bypass"} 3
livedrops_orders_total{outcome="accepted"} 510
livedrops_orders_total{outcome="SOLD_OUT"} 1.5e+03
go_goroutines 50
`))
	want := "gate admitted=500 bypass=3; placeOrder SOLD_OUT=1500 accepted=500"
	if got := after.delta(before); got != want {
		t.Errorf("delta = %q, want %q", got, want)
	}
	if got := counters(nil).delta(before); got != "" {
		t.Errorf("delta without a scrape = %q", got)
	}
}
