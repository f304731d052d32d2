package orders

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
)

var (
	stockAvailable = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "livedrops_drop_stock_available",
		Help: "Units available in each selling drop, as PostgreSQL last reported them.",
	}, []string{"drop"})
	orderOutcomes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_orders_total",
		Help: "placeOrder outcomes: accepted, or the error code returned.",
	}, []string{"outcome"})
	gateResults = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_gate_total",
		Help: "Admission gate answers: admitted, sold_out, or bypass (PostgreSQL decides alone).",
	}, []string{"result"})
	gateRestores = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_gate_restored_total",
		Help: "Gate counters found missing (Redis lost them) and restored from PostgreSQL with their drop's idempotency keys.",
	})
	redisErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_gate_redis_errors_total",
		Help: "Failed Redis calls of the admission gate and the order rate limit, by what was being done.",
	}, []string{"during"})
)

// ObserveStock records the drop's available stock while it sells (LIVE or
// SOLD_OUT) and removes its series once it cannot, so ended drops do not
// pile up as series.
func ObserveStock(d *domain.Drop, s domain.Stock) {
	switch d.Status {
	case domain.DropLive, domain.DropSoldOut:
		stockAvailable.WithLabelValues(strconv.FormatInt(d.ID, 10)).Set(float64(s.Available))
	default:
		ForgetStock(d.ID)
	}
}

// ForgetStock removes the drop's stock series.
func ForgetStock(dropID int64) {
	stockAvailable.DeleteLabelValues(strconv.FormatInt(dropID, 10))
}

// countOutcome counts one placeOrder answer.
func countOutcome(err error) {
	if err == nil {
		orderOutcomes.WithLabelValues("accepted").Inc()
		return
	}
	orderOutcomes.WithLabelValues(domain.ErrorCode(err)).Inc()
}
