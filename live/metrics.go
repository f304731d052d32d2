package live

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"livedrops/domain"
)

var (
	subscribers = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "livedrops_live_subscribers",
		Help: "Live subscriptions open on this instance, by kind (drop, creators, user, order).",
	}, []string{"kind"})
	eventsRouted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_live_events_total",
		Help: "Events the live hub routed, by type.",
	}, []string{"type"})
	duplicateEvents = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_live_duplicate_events_total",
		Help: "Events the live hub ignored because it had seen their id already.",
	})
	updatesConflated = promauto.NewCounter(prometheus.CounterOpts{
		Name: "livedrops_live_updates_conflated_total",
		Help: "Stock updates a subscriber never got because a newer one replaced them.",
	})
	slowConsumers = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_live_slow_consumers_total",
		Help: "Subscriptions ended because their subscriber fell too far behind, by kind.",
	}, []string{"kind"})
)

// knownEvents bounds the label values of eventsRouted.
var knownEvents = map[string]bool{
	domain.EventDropScheduled: true, domain.EventDropStarted: true, domain.EventStockChanged: true,
	domain.EventStockLow: true, domain.EventSoldOut: true, domain.EventDropEnded: true,
	domain.EventDropCancelled: true, domain.EventOrderPlaced: true, domain.EventOrderConfirmed: true,
	domain.EventOrderCancelled: true, domain.EventOrderExpired: true, domain.EventNotificationCreated: true,
	domain.EventProductUpdated: true, EventNotificationsCreated: true,
}

func eventLabel(typ string) string {
	if knownEvents[typ] {
		return typ
	}
	return "other"
}
