package orders_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"livedrops/domain"
	"livedrops/drops"
)

// metric returns the value of the series of name whose label has value, and
// whether that series exists, from the default registry.
func metric(t *testing.T, name, label, value string) (float64, bool) {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue(), true
					}
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	s := newSelling(t)
	ctx := context.Background()
	d := s.liveDrop(t, 1, 1)
	a, b := s.User(t, "a"), s.User(t, "b")
	accepted, _ := metric(t, "livedrops_orders_total", "outcome", "accepted")
	soldOut, _ := metric(t, "livedrops_orders_total", "outcome", domain.SoldOut)
	gateSoldOut, _ := metric(t, "livedrops_gate_total", "result", "sold_out")

	s.place(t, a.ID, d.ID, 1, "k")
	_, err := s.svc.PlaceOrder(ctx, b.ID, d.ID, 1, "k")
	wantCode(t, err, domain.SoldOut)

	if v, _ := metric(t, "livedrops_orders_total", "outcome", "accepted"); v != accepted+1 {
		t.Fatalf("accepted %v, want %v", v, accepted+1)
	}
	if v, _ := metric(t, "livedrops_orders_total", "outcome", domain.SoldOut); v != soldOut+1 {
		t.Fatalf("SOLD_OUT %v, want %v", v, soldOut+1)
	}
	if v, _ := metric(t, "livedrops_gate_total", "result", "sold_out"); v != gateSoldOut+1 {
		t.Fatalf("gate sold_out %v, want %v", v, gateSoldOut+1)
	}
	drop := strconv.FormatInt(d.ID, 10)
	if v, ok := metric(t, "livedrops_drop_stock_available", "drop", drop); !ok || v != 0 {
		t.Fatalf("stock gauge %v %v, want 0", v, ok)
	}
	if _, err := drops.New(s.DB, s.gate).End(ctx, s.Seller.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, "livedrops_drop_stock_available", "drop", drop); ok {
		t.Fatal("the stock series of an ended drop is still there")
	}
}
